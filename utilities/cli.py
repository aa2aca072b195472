"""The ``batchqa`` command line: one subcommand per job a person runs by hand."""

from __future__ import annotations

import importlib

import click

# Subcommands that live beside their utility, imported only when run (or listed by --help), so a core install
# without the [load] extra still serves, generates and validates, and says what to install for the rest.
LAZY_COMMANDS = {
    "validate": "utilities.check.validate_cli:validate_command",
    "gen": "utilities.gen.cli:gen",
    "bench": "utilities.perf.bench:bench_command",
    "download-bench": "utilities.perf.download_bench:download_bench_command",
    "qa": "utilities.qa.command:qa_command",
    "worker": "reference_backend.worker:worker_command",
    "chaos": "utilities.perf.chaos:chaos_command",
    "scale-workers": "utilities.perf.scale_workers:scale_command",
    "watch": "utilities.client.watch:watch_command",
    "ws-bench": "utilities.perf.ws_bench:ws_bench_command",
    "report": "utilities.reporting.allure_report:report_command",
    "load": "utilities.perf.load:load_command",
    "selfcheck": "utilities.selfcheck:selfcheck_command",
    "gate": "utilities.perf.gate:gate_command",
    "gate-audit": "utilities.perf.gate_audit:gate_audit_command",
    "trend": "utilities.perf.trend:trend_command",
    "scaling": "utilities.perf.scaling:scaling_command",
}


def _missing_extra(name: str, error: ModuleNotFoundError) -> click.Command:
    message = (
        f"batchqa {name} needs {error.name!r}, which this install lacks: "
        "pip install 'batchqa[load,distributed]' (or 'batchqa[load]' for the load kit alone)"
    )

    def refuse() -> None:
        raise click.ClickException(message)

    return click.Command(name, callback=refuse, help=f"(unavailable: needs {error.name!r}) {message}")


def _load(name: str) -> click.Command:
    module_name, attribute = LAZY_COMMANDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (error.name.startswith(("utilities", "reference_backend"))):
            raise
        return _missing_extra(name, error)
    return getattr(module, attribute)


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            self.add_command(_load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="batchqa", prog_name="batchqa")
def main() -> None:
    """batchqa: the QA kit for US-003 batch prompt processing."""


@main.command()
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1, or BATCHQA_HOST).")
@click.option("--port", type=int, default=None, help="Port to bind (default 8000, or BATCHQA_PORT; 0 = free).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="State directory.")
def serve(host: str | None, port: int | None, data_dir: str | None) -> None:
    """Start the bundled reference backend (embedded mode unless configured otherwise)."""
    from reference_backend.server import run

    run(host=host, port=port, data_dir=data_dir)


if __name__ == "__main__":
    main()
