"""An agent tree from the test programs: the honest bigram program, parts swapped for hostile ones.

Shared by the evaluator's tests (``conftest.make_tree``) and ``benchmarks/tamper.py``,
which loads this file by path; each writes its own ``darwin.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PROGRAMS = Path(__file__).resolve().parent / "programs"


def build_agent_tree(
    tree: Path, train: str | None = None, model: str | None = None, target: str | None = None
) -> Path:
    """Copy ``programs/honest`` to ``tree``; ``train``/``model`` name programs to swap in.

    A swapped-in train.py may run the honest one (kept as ``honest_train.py``);
    ``target`` is written to ``seed/target.txt`` for the programs that read one.
    """
    shutil.copytree(PROGRAMS / "honest", tree)
    seed = tree / "seed"
    if train is not None:
        (seed / "train.py").rename(seed / "honest_train.py")
        shutil.copyfile(PROGRAMS / train, seed / "train.py")
    if model is not None:
        shutil.copyfile(PROGRAMS / model, seed / "model.py")
    if target is not None:
        (seed / "target.txt").write_text(target)
    return tree
