"""Option decorators shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from darwin_bot import config as config_mod

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    """``--config FILE``: default ``darwin.toml`` in the current directory if present."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="darwin.toml to read (default: ./darwin.toml if it exists).",
    )(func)


def repo_option(help_text: str = "The repository (a git checkout).") -> Callable[[F], F]:
    """``--repo DIR`` (default: the current directory), passed to the command as ``root``."""
    return click.option(
        "--repo",
        "root",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=Path("."),
        show_default=True,
        help=help_text,
    )


def load_config(config_path: Path | None, root: Path | None = None) -> config_mod.Config:
    """The config named by --config, else ``<root>/darwin.toml`` when present, else defaults."""
    if config_path is not None:
        return config_mod.load(config_path)
    candidate = (root or Path.cwd()) / "darwin.toml"
    return config_mod.load(candidate if candidate.exists() else None)
