"""``darwin init``: write a commented darwin.toml."""

from __future__ import annotations

from pathlib import Path

import click

from darwin_bot.config import DEFAULT_TOML
from darwin_bot.errors import ConfigError


@click.command("init")
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("darwin.toml"),
    show_default=True,
    help="Where to write the file.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_command(path: Path, force: bool) -> None:
    """Write a commented darwin.toml with every key at its default."""
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; pass --force to overwrite it")
    path.write_text(DEFAULT_TOML, encoding="utf-8")
    click.echo(f"wrote {path}")
