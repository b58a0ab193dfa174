"""The corpus folder an evaluation reads: its files present and its meta.json sound."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from darwin_bot.errors import DataError


def read_meta(data_dir: Path) -> dict[str, Any]:
    """The corpus folder's meta.json, once its three files are there and its vocabulary fits."""
    for name in ("train.bin", "val.bin", "meta.json"):
        if not (data_dir / name).is_file():
            raise DataError(
                f"{data_dir / name} is missing; run 'darwin data prepare' (or pass --data DIR)"
            )
    try:
        meta = json.loads((data_dir / "meta.json").read_text(encoding="utf-8"))
        vocab = int(meta["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{data_dir / 'meta.json'} is not valid ({exc}); run 'darwin data prepare' again"
        ) from exc
    if not 1 < vocab <= 65536:
        raise DataError(f"{data_dir / 'meta.json'}: vocab_size {vocab} does not fit uint16 tokens")
    return meta
