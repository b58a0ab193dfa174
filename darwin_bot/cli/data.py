"""``darwin data prepare``: write the corpus the seed trains on and the evaluator scores on."""

from __future__ import annotations

from pathlib import Path

import click

from darwin_bot.cli.options import config_option, load_config
from darwin_bot.program import (
    DEFAULT_SYNTHETIC_TOKENS,
    SHAKESPEARE_URL,
    check_data_dir,
    default_text_out,
    prepare_shakespeare,
    prepare_synthetic,
    prepare_text,
)


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
@click.option("--url", default=SHAKESPEARE_URL, show_default=True, help="Where to download from.")
@click.option("--seed", default=0, show_default=True, type=int, help="Synthetic corpus seed.")
@click.option(
    "--tokens",
    default=DEFAULT_SYNTHETIC_TOKENS,
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
        prepare_synthetic(out or Path("data/synthetic"), seed=seed, tokens=tokens, echo=click.echo)
    elif input_path is None:
        prepare_shakespeare(out or Path("data/shakespeare_char"), url=url, echo=click.echo)
    else:
        folder = out or default_text_out(input_path)
        prepare_text(folder, input_path, canonical=canonical, echo=click.echo)
        if folder != Path("data/shakespeare_char"):
            click.echo(f'to evolve on it: budget.data = "{folder}" in darwin.toml')


@data_command.command("ensure")
@config_option
def ensure_command(config_path: Path | None) -> None:
    """Make sure the corpus ``budget.data`` names is prepared; print its folder.

    A folder that already holds a prepared corpus (any, e.g. one committed with
    the repository) is left as it is; a missing or empty one gets tiny
    Shakespeare (downloaded); anything else is a DataError (exit 2). The folder, relative to the config's own folder, is printed and,
    in GitHub Actions, set as the step output ``data`` (the workflow's corpus
    job uploads it once per generation for every evaluation leg).
    """
    from darwin_bot.errors import DataError
    from darwin_bot.publish import in_actions, set_output

    root = config_path.resolve().parent if config_path is not None else Path.cwd()
    folder = (root / load_config(config_path, root).budget.data).resolve()
    try:
        check_data_dir(folder, need_val=True)
        click.echo(f"{folder} holds a prepared corpus; left as it is")
    except DataError as exc:
        if folder.is_dir() and any(folder.iterdir()):
            # Someone's corpus, incomplete: never overwrite it with another one.
            raise DataError(
                f"{exc}; or set budget.data to an empty folder for tiny Shakespeare"
            ) from exc
        prepare_shakespeare(folder, echo=click.echo)
    if in_actions():
        set_output("data", str(folder))
    click.echo(str(folder))
