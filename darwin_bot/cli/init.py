"""``darwin init``: write a commented darwin.toml (for the seed's contract, or nanoGPT's)."""

from __future__ import annotations

from pathlib import Path

import click

from darwin_bot.config import CONTRACT_PRESETS
from darwin_bot.errors import ConfigError


@click.command("init")
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("darwin.toml"),
    show_default=True,
    help="Where to write the file.",
)
@click.option(
    "--contract",
    type=click.Choice(list(CONTRACT_PRESETS)),
    default="darwin",
    show_default=True,
    help="The program's contract: darwin (seed/) or nanogpt (karpathy/nanoGPT as it is).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_command(path: Path, contract: str, force: bool) -> None:
    """Write a commented darwin.toml with every key at its default."""
    from darwin_bot.program.init_toml import toml_for

    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it")
    path.write_text(toml_for(contract), encoding="utf-8")
    click.echo(f"wrote {path}" + (f" (contract {contract}; check it with 'darwin check')"
                                  if contract != "darwin" else ""))  # fmt: skip
