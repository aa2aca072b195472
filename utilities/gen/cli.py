"""``batchqa gen``: a prompt file, a named invalid file, or the whole fixture set."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import cast

import click

from utilities.gen.content import ENCODINGS, FORMATS, MIXES, Encoding, Format, GenSpec, generate_rows, iter_rows
from utilities.gen.fixtures import DEFAULT_FIXTURES_DIR, release_mismatches, write_fixture_set
from utilities.gen.invalid import INVALID_VARIANTS
from utilities.gen.writers import render


def _names(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


_DELIMITER_NAMES = {",": ",", ";": ";", "tab": "\t"}


@click.command("gen")
@click.option("-n", "--rows", type=click.IntRange(min=0), default=10, show_default=True, help="Prompts to write.")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option("--encoding", type=click.Choice(ENCODINGS), default="utf-8", show_default=True)
@click.option("--delimiter", type=click.Choice(list(_DELIMITER_NAMES)), default=",", show_default=True)
@click.option("--line-ending", type=click.Choice(["crlf", "lf"]), default="crlf", show_default=True)
@click.option("--columns", default="category,tags", show_default=True, help="Extra columns after prompt ('' = none).")
@click.option("--mix", default="plain", show_default=True, help=f"Comma-separated, or 'all': {', '.join(MIXES)}.")
@click.option("--locale", "locales", multiple=True, help="Faker locale; repeat or comma-separate [default: en_US].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write; '-' or none: stdout (with --invalid: the variant's own filename).",
)
@click.option("--invalid", type=click.Choice(list(INVALID_VARIANTS)), help="Write this named invalid file instead.")
@click.option(
    "--fixtures",
    "fixtures_dir",
    type=click.Path(file_okay=False),
    is_flag=False,
    flag_value=str(DEFAULT_FIXTURES_DIR),
    help=f"Regenerate the canonical fixture set into DIR [default: {DEFAULT_FIXTURES_DIR}].",
)
@click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(file_okay=False),
    help="Write the hostile-upload corpus (utilities.gen.hostile_corpus, with --seed) and its MANIFEST.json into DIR.",
)
def gen(
    rows: int,
    fmt: str,
    encoding: str,
    delimiter: str,
    line_ending: str,
    columns: str,
    mix: str,
    locales: tuple[str, ...],
    seed: int,
    output: str | None,
    invalid: str | None,
    fixtures_dir: str | None,
    corpus_dir: str | None,
) -> None:
    """Generate a prompt file for batch uploads, a named invalid file, or the whole fixture set."""
    if sum(map(bool, (invalid, fixtures_dir, corpus_dir))) > 1:
        raise click.UsageError("--invalid, --fixtures and --corpus are separate jobs; pass one")
    if corpus_dir:
        # Imported here: the corpus builds on this package, and on the API client.
        from utilities.gen.hostile_corpus import write_corpus

        for path in write_corpus(Path(corpus_dir), seed=seed):
            click.echo(f"{path}  {path.stat().st_size:,} bytes", err=True)
        return
    if fixtures_dir:
        for problem in release_mismatches():
            click.echo(f"warning: {problem}; the files will differ from the committed ones", err=True)
        for path in write_fixture_set(Path(fixtures_dir)):
            click.echo(f"{path}  {path.stat().st_size:,} bytes", err=True)
        return
    if invalid:
        filename, data = INVALID_VARIANTS[invalid](seed)
        _write(data, output or filename, f"invalid variant {invalid}")
        return
    try:
        spec = GenSpec(
            rows=rows,
            extra_columns=_names(columns),
            fmt=cast(Format, fmt),
            encoding=cast(Encoding, encoding),
            delimiter=_DELIMITER_NAMES[delimiter],
            line_ending="\r\n" if line_ending == "crlf" else "\n",
            locales=tuple(name for value in locales for name in _names(value)) or ("en_US",),
            mix=MIXES if mix == "all" else _names(mix),
            seed=seed,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if spec.rows >= 1000:
        with click.progressbar(
            iter_rows(spec), length=spec.rows, label=f"Generating {spec.rows} rows", file=sys.stderr
        ) as progress:
            records = list(progress)
    else:
        records = generate_rows(spec)
    try:
        data = render(spec, records)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    _write(data, output or "-", f"{len(records)} prompts")


def _write(data: bytes, output: str, what: str) -> None:
    with click.open_file(output, "wb") as stream:
        stream.write(data)
    if output != "-":
        click.echo(
            f"wrote {output}: {what}, {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]}", err=True
        )
