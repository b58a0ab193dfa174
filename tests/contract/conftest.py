"""Fixtures for the program-contract tests: a nanoGPT-layout tree of our own, a corpus, a runner.

``nanogpt_layout/`` is a small program written for these tests in karpathy/nanoGPT's
layout and interfaces (``python train.py config --key=value``, configurator.py,
``ckpt.pt`` with ``model_args`` and ``model``, ``forward(idx, targets=None)``); it
holds no code of nanoGPT's. The real checkout is used only by the opt-in
``test_nanogpt_real.py`` (``DARWIN_NANOGPT=PATH``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from darwin_bot.cli import cli

LAYOUT = Path(__file__).parent / "nanogpt_layout"
HONEST_DARWIN = Path(__file__).parents[1] / "evaluate" / "programs" / "honest"
LIMITS = "[sandbox]\nmemory_mb = 2048\nmax_procs = 64\ntimeout_s = 60.0\nsmoke_timeout_s = 60.0\n"
NANOGPT_TOML = (
    '[evolution]\nevolvable = ["model.py", "train.py"]\n'
    '[budget]\npreset = "tiny"\niters = 6\nsmoke_iters = 3\n'
    '[program]\ncontract = "nanogpt"\n[program.args]\ntiny = ["config/train_tiny.py"]\n'
    "[program.context]\ntiny = 16\n" + LIMITS
)


def edit(path: Path, old: str, new: str) -> None:
    """Replace one exact piece of a fixture file (fails loudly if the fixture changed)."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


@pytest.fixture
def nanogpt_tree(tmp_path: Path) -> Callable[[], Path]:
    """A fresh copy of the nanoGPT-layout fixture with its darwin.toml."""

    def make() -> Path:
        tree = tmp_path / f"nanogpt{len(list(tmp_path.glob('nanogpt*')))}"
        shutil.copytree(LAYOUT, tree, ignore=shutil.ignore_patterns("__pycache__"))
        (tree / "darwin.toml").write_text(NANOGPT_TOML)
        return tree

    return make


@pytest.fixture
def darwin_tree(tmp_path: Path) -> Callable[[], Path]:
    """A fresh copy of the evaluator tests' honest darwin-contract program."""

    def make() -> Path:
        tree = tmp_path / f"darwin{len(list(tmp_path.glob('darwin*')))}"
        shutil.copytree(HONEST_DARWIN, tree, ignore=shutil.ignore_patterns("__pycache__"))
        (tree / "darwin.toml").write_text(LIMITS)
        return tree

    return make


@dataclass
class Ran:
    code: int
    output: str


@pytest.fixture
def darwin(corpus: Path) -> Callable[..., Ran]:
    """``darwin ARGS`` in-process, with --data pointed at the corpus."""

    def run(*args: str) -> Ran:
        argv = [*args, "--data", str(corpus)]
        res = CliRunner().invoke(cli, argv, catch_exceptions=False)
        return Ran(res.exit_code, res.output)

    return run
