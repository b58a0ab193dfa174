"""Where the shipped seed program lives: the checkout's seed/, or the copy inside the wheel."""

from __future__ import annotations

from pathlib import Path

from darwin_bot.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent


def seed_source() -> Path:
    for candidate in (_PACKAGE.parent / "seed", _PACKAGE / "_seed"):
        if (candidate / "train.py").is_file() and (candidate / "model.py").is_file():
            return candidate
    raise ConfigError("the seed program is missing from this install; reinstall darwin-bot")
