"""The ``batchqa`` command line: one subcommand per job a person runs by hand."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


def _register_optional() -> None:
    """Subcommands that live beside their utility; each module exports one click command."""
    from utilities.check.download_validator import validate_command
    from utilities.gen import gen_command
    from utilities.perf.bench import bench_command
    from utilities.perf.download_bench import download_bench_command

    main.add_command(validate_command, "validate")
    main.add_command(gen_command, "gen")
    main.add_command(bench_command, "bench")
    main.add_command(download_bench_command, "download-bench")

    from reference_backend.worker import worker_command
    from utilities.client.watch import watch_command
    from utilities.perf.chaos import chaos_command, scale_command
    from utilities.perf.ws_bench import ws_bench_command
    from utilities.qa import qa_command

    main.add_command(qa_command, "qa")
    main.add_command(worker_command, "worker")
    main.add_command(chaos_command, "chaos")
    main.add_command(scale_command, "scale-workers")
    main.add_command(watch_command, "watch")
    main.add_command(ws_bench_command, "ws-bench")

    from utilities.reporting.allure_report import report_command

    main.add_command(report_command, "report")

    from utilities.perf.gate import gate_command
    from utilities.perf.gate_audit import gate_audit_command
    from utilities.perf.load import load_command
    from utilities.perf.scaling import scaling_command
    from utilities.perf.trend import trend_command

    main.add_command(load_command, "load")

    from utilities.selfcheck import selfcheck_command

    main.add_command(selfcheck_command, "selfcheck")
    main.add_command(gate_command, "gate")
    main.add_command(gate_audit_command, "gate-audit")
    main.add_command(trend_command, "trend")
    main.add_command(scaling_command, "scaling")


_register_optional()

if __name__ == "__main__":
    main()
