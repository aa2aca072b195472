"""``batchqa validate INPUT DOWNLOAD``: check a results download against the uploaded file from the shell."""

from __future__ import annotations

from pathlib import Path

import click

from utilities.check.download_reader import (
    FORMATS,
    load_download,
)
from utilities.check.download_validator import validate
from utilities.check.input_reader import InputFormatError, read_input


@click.command("validate")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("download_path", metavar="DOWNLOAD", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Download format (default: guessed).")
@click.option("--allow-pending", is_flag=True, help="Accept pending/running rows (an unfinished batch).")
def validate_command(input_path: Path, download_path: Path, fmt: str | None, allow_pending: bool) -> None:
    """Check DOWNLOAD (csv, json or zip) against the INPUT file the user uploaded; exit 1 on any problem."""
    try:
        table = read_input(input_path)
    except InputFormatError as exc:
        raise click.BadParameter(str(exc), param_hint="INPUT") from exc
    report = validate(table, load_download(download_path, fmt), allow_pending=allow_pending)
    click.echo(report.summary())
    for problem in report.problems():
        click.echo(f"  - {problem}")
    if not report.ok:
        raise SystemExit(1)
