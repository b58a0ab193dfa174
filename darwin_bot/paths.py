"""Where shipped files live: the source checkout's, or the copies inside the wheel.

The seed program (``seed/``, ``darwin_bot/_seed`` in the wheel) and the memory's JSON
Schemas (``memory/schemas``, ``darwin_bot/_schemas`` in the wheel).
"""

from __future__ import annotations

from pathlib import Path

from darwin_bot.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent


def seed_source() -> Path:
    for candidate in (_PACKAGE.parent / "seed", _PACKAGE / "_seed"):
        if (candidate / "train.py").is_file() and (candidate / "model.py").is_file():
            return candidate
    raise ConfigError("the seed program is missing from this install; reinstall darwin-bot")


def schema_source() -> Path:
    """The JSON Schema files of the memory's records: inside the installed package, else the checkout's."""
    shipped = _PACKAGE / "_schemas"
    return shipped if shipped.is_dir() else _PACKAGE.parent / "memory" / "schemas"
