"""``darwin data prepare``: write the corpus the seed trains on and the evaluator scores on."""

from __future__ import annotations

from pathlib import Path

import click

from darwin_bot import data as data_mod


@click.group("data")
def data_command() -> None:
    """Prepare the corpus (any UTF-8 text, tiny Shakespeare, or synthetic)."""


@data_command.command("prepare")
@click.option(
    "--input",
    "input_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Any UTF-8 text file, prepared at character level (no download).",
)
@click.option(
    "--canonical",
    is_flag=True,
    help="Require the canonical tiny Shakespeare (sha256-checked); implied without --input.",
)
@click.option(
    "--synthetic",
    is_flag=True,
    help="Generate a seeded Markov corpus with a known entropy rate (offline).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder [default: data/shakespeare_char/ for tiny Shakespeare, data/<file>_char/ "
    "for another --input, data/synthetic/ with --synthetic].",
)
@click.option(
    "--url", default=data_mod.SHAKESPEARE_URL, show_default=True, help="Where to download from."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Synthetic corpus seed.")
@click.option(
    "--tokens",
    default=data_mod.DEFAULT_SYNTHETIC_TOKENS,
    show_default=True,
    type=click.IntRange(min=1000),
    help="Synthetic corpus size in tokens.",
)
def prepare_command(
    input_path: Path | None,
    canonical: bool,
    synthetic: bool,
    out: Path | None,
    url: str,
    seed: int,
    tokens: int,
) -> None:
    """Write train.bin, val.bin and meta.json; a second run changes nothing.

    Without --input, tiny Shakespeare is downloaded and checked against its sha256.
    With --input FILE any UTF-8 text is prepared: its own characters are the
    vocabulary, the last tenth is held out, and meta.json records the file's sha256.
    """
    if synthetic:
        if input_path is not None or canonical:
            raise click.UsageError("--synthetic excludes --input and --canonical")
        data_mod.prepare_synthetic(
            out or Path("data/synthetic"), seed=seed, tokens=tokens, echo=click.echo
        )
    elif input_path is None:
        data_mod.prepare_shakespeare(out or Path("data/shakespeare_char"), url=url, echo=click.echo)
    else:
        folder = out or data_mod.default_text_out(input_path)
        data_mod.prepare_text(folder, input_path, canonical=canonical, echo=click.echo)
        if folder != Path("data/shakespeare_char"):
            click.echo(f'to evolve on it: budget.data = "{folder}" in darwin.toml')
