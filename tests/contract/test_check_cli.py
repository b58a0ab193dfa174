"""``darwin check`` and ``darwin evaluate`` on good and broken trees (real sandbox, real training).

Each broken tree breaks one part of its contract; check must print exactly one
MISS line, naming that part, and exit 2; evaluate must give a non-ok status
whose reason says the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.contract.conftest import Ran, edit

pytestmark = pytest.mark.usefixtures("bwrap")


def _misses(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.startswith("MISS")]


def _evaluate(darwin: Callable[..., Ran], tree: Path) -> dict:
    ran = darwin("evaluate", str(tree), "--sandbox", "bwrap", "--json", "--iters", "4")
    assert ran.code == 0, ran.output
    return json.loads(ran.output.strip().splitlines()[-1])


def test_good_nanogpt_layout_keeps_its_contract_and_evaluates_ok(nanogpt_tree, darwin):
    tree = nanogpt_tree()
    ran = darwin("check", str(tree), "--sandbox", "bwrap")
    assert ran.code == 0, ran.output
    assert _misses(ran.output) == []
    for part in ("file configurator.py", "train.py runs configurator.py", "output ckpt.pt",
                 "model loads", "logits [B, T, vocab], causal"):  # fmt: skip
        assert f"ok   {part}" in ran.output, ran.output
    result = _evaluate(darwin, tree)
    assert result["status"] == "ok", result
    assert 1.0 < result["metrics"]["perplexity"] < 200
    assert result["extra"]["iterations"] == 4  # read back from ckpt.pt's iter_num
    # its curve: ckpt.pt, saved at every eval point (eval_interval = 4 / 4), copied as it
    # came; each copy scored in the final graph (nanoGPT's names fit it), the end last
    points = result["extra"]["curve"]["points"]
    assert points[-1]["val_loss"] == result["metrics"]["val_loss"]
    assert all(p["reason"] == "" and p["val_loss"] > 0 for p in points), points
    assert "Overriding" not in result["reason"]


def _no_load(tree: Path) -> None:
    edit(tree / "seed" / "model.py", "def load(path, device):", "def load_model(path, device):")


def _wrong_output(tree: Path) -> None:
    edit(tree / "train.py", 'os.path.join(out_dir, "ckpt.pt")', 'os.path.join(out_dir, "model.pt")')


def _wrong_shape(tree: Path) -> None:
    edit(tree / "model.py", "        return logits, loss", "        return logits[:, :-1, :], loss")


def _no_checkpoint(tree: Path) -> None:
    edit(tree / "train.py", "if always_save_checkpoint and iter_num > 0:",
         "if always_save_checkpoint and iter_num > max_iters:")  # fmt: skip


def _no_configurator(tree: Path) -> None:
    edit(tree / "train.py", 'exec(open("configurator.py").read())  # noqa: SIM115 - as nanoGPT', "")


BROKEN = [
    # (contract fixture, how it breaks, the part check names, status, words of the reason)
    ("darwin", _no_load, "model.load", "failed", "has no load(path, device)"),
    ("nanogpt", _wrong_output, "output ckpt.pt", "failed", "wrote no ckpt.pt"),
    ("nanogpt", _wrong_shape, "logits [B, T, vocab], causal", "rejected", "shape"),
    ("nanogpt", _no_checkpoint, "output ckpt.pt", "failed", "wrote no ckpt.pt"),
    (
        "nanogpt",
        _no_configurator,
        "train.py runs configurator.py",
        "failed",
        "never runs configurator.py",
    ),
]


@pytest.mark.parametrize(("kind", "breaks", "part", "status", "words"), BROKEN,
                         ids=[b[1].__name__.strip("_") for b in BROKEN])  # fmt: skip
def test_broken_tree_gets_one_line_for_the_missing_part(
    kind, breaks, part, status, words, nanogpt_tree, darwin_tree, darwin
):
    tree = nanogpt_tree() if kind == "nanogpt" else darwin_tree()
    breaks(tree)
    ran = darwin("check", str(tree), "--sandbox", "bwrap")
    assert ran.code == 2, ran.output
    misses = _misses(ran.output)
    assert len(misses) == 1, ran.output
    assert misses[0].startswith(f"MISS {part}: ") and words in misses[0], misses
    assert "1 part(s) missing" in ran.output
    result = _evaluate(darwin, tree)
    assert result["status"] == status, result
    assert words in result["reason"], result["reason"]


def test_evaluate_prints_the_contract_guidance_for_a_broken_tree(nanogpt_tree, darwin):
    tree = nanogpt_tree()
    _wrong_output(tree)
    ran = darwin("evaluate", str(tree), "--sandbox", "bwrap", "--iters", "4")
    assert ran.code == 0, ran.output
    assert "status     failed" in ran.output
    assert "MISS output ckpt.pt" in ran.output and "darwin check" in ran.output
