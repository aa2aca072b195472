"""``batchqa watch BATCH_ID``: follow a batch live (socket, or ``--poll``) and print its cadence report."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from utilities.client.api import ApiFailure, BatchApi, Credentials
from utilities.client.progress_messages import Received
from utilities.client.recorders import PollingRecorder, WebSocketRecorder


def resolve_token(base_url: str, token: str | None, email: str | None, password: str | None) -> str:
    """The given token, or one from logging in with ``email`` and ``password``."""
    if token:
        return token
    if not (email and password):
        raise click.UsageError("give --token, or --email and --password")
    with BatchApi(base_url) as api:
        try:
            return api.login(Credentials(email=email, password=password))["access_token"]
        except ApiFailure as exc:
            raise click.ClickException(f"login failed: {exc.message}") from exc


class _Bar:
    """A rich progress bar fed by recorder callbacks (from the recorder's thread; rich locks)."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self.progress = progress
        self.task = task

    def __call__(self, received: Received) -> None:
        m = received.message
        eta = m.get("eta_seconds")
        description = f"{m.get('status', '?')} seq {m.get('seq')}" + (f" eta {eta:.0f}s" if eta else "")
        self.progress.update(self.task, total=m.get("total"), completed=m.get("processed", 0), description=description)


@click.command("watch")
@click.argument("batch_id")
@click.option("--base-url", envvar="BATCHQA_BASE_URL", default="http://127.0.0.1:8000", show_default=True)
@click.option("--token", envvar="BATCHQA_TOKEN", default=None, help="Bearer token (or use --email/--password).")
@click.option("--email", default=None)
@click.option("--password", envvar="BATCHQA_PASSWORD", default=None)
@click.option("--poll", is_flag=True, help="Poll the status endpoint instead of the progress socket.")
@click.option(
    "--interval", type=click.FloatRange(min=0.05), default=2.0, show_default=True, help="Seconds between polls."
)
@click.option("--timeout", type=click.FloatRange(min=0), default=3600.0, show_default=True, help="Give up after.")
@click.option("--max-gap", type=click.FloatRange(min=0), default=None, help="Report a gap longer than this (s).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of text.")
def watch_command(
    batch_id: str,
    base_url: str,
    token: str | None,
    email: str | None,
    password: str | None,
    poll: bool,
    interval: float,
    timeout: float,
    max_gap: float | None,
    as_json: bool,
) -> None:
    """Show a batch's live progress until it ends, then its cadence report; exit 1 if the report has problems."""
    token = resolve_token(base_url, token, email, password)
    recorder: WebSocketRecorder | PollingRecorder
    if poll:
        recorder = PollingRecorder(base_url, batch_id, token=token, interval_s=interval)
    else:
        recorder = WebSocketRecorder(base_url, batch_id, token=token)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        recorder.on_message = _Bar(progress, progress.add_task("connecting", total=None))
        recorder.start()
        try:
            if not recorder.join(timeout):
                click.echo(f"no terminal state after {timeout:g} s", err=True)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
        finally:
            recorder.stop()
    report = recorder.report(max_gap_s=max_gap)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else report.render())
    if report.problems():
        raise SystemExit(1)


if __name__ == "__main__":
    watch_command()
