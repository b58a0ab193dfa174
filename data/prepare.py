"""Prepare the corpus without installing the CLI: ``python data/prepare.py [--synthetic] ...``.

A thin wrapper over ``darwin data prepare``; the logic lives in ``darwin_bot.program.corpus``.
"""

from __future__ import annotations

import sys

from darwin_bot.cli import main

if __name__ == "__main__":
    main(["data", "prepare", *sys.argv[1:]])
