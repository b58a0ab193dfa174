"""``darwin data prepare``: write the corpus the seed trains on and the evaluator scores on."""

from __future__ import annotations

from pathlib import Path

import click

from darwin_bot import data as data_mod


@click.group("data")
def data_command() -> None:
    """Prepare the corpus (tiny Shakespeare or synthetic)."""


@data_command.command("prepare")
@click.option(
    "--input",
    "input_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A local copy of tiny Shakespeare input.txt (no download).",
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
    help="Output folder [default: data/shakespeare_char/, or data/synthetic/ with --synthetic].",
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
    synthetic: bool,
    out: Path | None,
    url: str,
    seed: int,
    tokens: int,
) -> None:
    """Write train.bin, val.bin and meta.json; a second run changes nothing."""
    if synthetic:
        if input_path is not None:
            raise click.UsageError("--input and --synthetic exclude each other")
        data_mod.prepare_synthetic(
            out or Path("data/synthetic"), seed=seed, tokens=tokens, echo=click.echo
        )
    else:
        data_mod.prepare_shakespeare(
            out or Path("data/shakespeare_char"), input_path=input_path, url=url, echo=click.echo
        )
