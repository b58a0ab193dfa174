"""Chunking keeps exact spans; replacing one chunk changes only its lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from darwin_bot.errors import MutationRejected
from darwin_bot.mutation.chunks import chunk_source, find_chunk, reindent, replace_chunk

SAMPLE = (
    '''"""Doc."""
import math

import torch

# config
lr = 1e-3
n = 4


# a helper, with its comment
@staticmethod
def f(x, y=2):
    return x + y


class Big:
    """A class split into methods."""

    k = 1

'''
    + "".join(f"    def m{i}(self):\n        return {i}\n\n" for i in range(30))
    + """
def tail():
    return Big().m1()
"""
)


def test_chunks_cover_kinds_and_spans() -> None:
    chunks = chunk_source("s.py", SAMPLE)
    names = [c.name for c in chunks]
    assert names[:4] == ["imports", "globals", "f", "Big"]
    assert "Big.m29" in names and names[-1] == "tail"
    lines = SAMPLE.splitlines()
    f = find_chunk(chunks, "f")
    assert f is not None and f.kind == "function"
    assert lines[f.start - 1] == "# a helper, with its comment"  # comment and decorator included
    assert f.signature == "def f(x, y=2)"
    g = find_chunk(chunks, "globals")
    assert g is not None and g.text.startswith("# config\nlr = 1e-3") and g.signature == "lr, n"
    m = find_chunk(chunks, "Big.m3")
    assert m is not None and m.kind == "method" and m.indent == "    "
    assert chunks[0].frozen and not g.frozen


def test_replace_changes_only_that_chunk() -> None:
    chunks = chunk_source("s.py", SAMPLE)
    m = find_chunk(chunks, "Big.m3")
    assert m is not None
    new = replace_chunk(SAMPLE, m, reindent("def m3(self):\n    return 33\n", m.indent))
    diff = [(a, b) for a, b in zip(SAMPLE.splitlines(), new.splitlines(), strict=False) if a != b]
    assert diff == [("        return 3", "        return 33")]
    assert len(new.splitlines()) == len(SAMPLE.splitlines())


def test_real_seed_chunks(repo_root: Path) -> None:
    for name in ("model.py", "train.py"):
        text = (repo_root / "seed" / name).read_text()
        chunks = chunk_source(f"seed/{name}", text)
        # chunks are in order, do not overlap, and every code line belongs to one
        for a, b in zip(chunks, chunks[1:], strict=False):
            assert a.end < b.start
        covered = {n for c in chunks for n in range(c.start, c.end + 1)}
        lines = text.splitlines()
        orphans = [
            i + 1
            for i, ln in enumerate(lines)
            if ln.strip() and not ln.lstrip().startswith("#") and i + 1 not in covered
        ]
        assert orphans == []
    chunks = chunk_source("seed/model.py", (repo_root / "seed" / "model.py").read_text())
    assert {"MLP", "CausalSelfAttention", "GPT.forward", "load"} <= {c.name for c in chunks}


def test_syntax_error_is_a_rejection() -> None:
    with pytest.raises(MutationRejected, match="syntax error at line 1"):
        chunk_source("bad.py", "def (:\n")
