"""Crossover: chunk-wise recombination of two parents' evolvable files.

For every Python file both parents have, each chunk (function, class, method,
config block) that differs between them is taken from the second parent with
probability 1/2; imports always come from the first parent, so a crossover
never adds an import that validation has not seen. At least one differing
chunk is taken from the second parent when any differ, so a crossover is
never a silent copy of its first parent.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from darwin_bot.mutation.chunks import chunk_source, find_chunk, replace_chunk


def _py_files(root: Path, evolvable: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for prefix in evolvable:
        base = root / prefix
        if base.is_file() and base.suffix == ".py":
            files.append(base)
        elif base.is_dir():
            files.extend(sorted(base.rglob("*.py")))
    return files


def recombine(first: Path, second: Path, evolvable: Sequence[str], rng: random.Random) -> str:
    """Rewrite ``first`` in place with chunks drawn from ``second``; return a one-line summary."""
    differing: list[tuple[Path, str, str]] = []  # (file in first, chunk name, second's text)
    for path in _py_files(first, evolvable):
        rel = path.relative_to(first).as_posix()
        other = second / rel
        if not other.is_file():
            continue
        mine = chunk_source(rel, path.read_text(encoding="utf-8"))
        theirs = chunk_source(rel, other.read_text(encoding="utf-8"))
        for chunk in mine:
            match = find_chunk(theirs, chunk.name)
            if chunk.kind != "imports" and match is not None and match.text != chunk.text:
                differing.append((path, chunk.name, match.text))
    if not differing:
        return "parents are identical in every chunk"
    take = [d for d in differing if rng.random() < 0.5] or [rng.choice(differing)]
    for path in sorted({d[0] for d in take}):
        source = path.read_text(encoding="utf-8")
        for _, name, text in [d for d in take if d[0] == path]:
            chunk = find_chunk(chunk_source(path.name, source), name)
            if chunk is not None:
                source = replace_chunk(source, chunk, text)
        path.write_text(source, encoding="utf-8")
    names = ", ".join(f"{d[0].name}::{d[1]}" for d in take)
    return f"{len(take)} of {len(differing)} differing chunks from the second parent ({names})"
