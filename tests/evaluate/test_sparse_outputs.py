"""Files with holes in the training output: free for the program, a full copy for the harness."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from darwin_bot.evaluate.scratch import has_holes, holes_problem


def _holed(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def test_a_file_with_holes_is_named_and_an_ordinary_one_is_not(tmp_path: Path):
    _holed(tmp_path / "model.pt", 64 * 1024 * 1024)
    (tmp_path / "darwin-graph.pt2").write_bytes(os.urandom(2 * 1024 * 1024))
    _holed(tmp_path / "small.pt", 4096)  # under the floor: blocks, not holes
    assert has_holes(os.stat(tmp_path / "model.pt"))
    assert not has_holes(os.stat(tmp_path / "darwin-graph.pt2"))
    assert holes_problem(tmp_path, ("darwin-graph.pt2", "small.pt", "missing.pt")) is None
    why = holes_problem(tmp_path, ("darwin-graph.pt2", "model.pt"))
    assert why is not None and why.startswith("model.pt is a sparse file (67108864 bytes")


@pytest.mark.slow
def test_a_sparse_model_file_is_failed_before_the_harness_copies_it(make_tree, evaluate, tmp_path):
    # model.pt is 64 MiB of hole (load() reads the real weights beside it): kept for
    # re-scoring and copied for scoring, it took the harness's disk its whole size, twice
    tree = make_tree("train_sparse_output.py", "model_sparse_output.py", target="64")
    kept = tmp_path / "kept"
    result = evaluate(tree, "--keep-graphs", str(kept)).result
    assert result["status"] == "failed", (result["status"], result["reason"])
    assert result["reason"].startswith("model.pt is a sparse file")
    assert not any(kept.rglob("model.pt"))
