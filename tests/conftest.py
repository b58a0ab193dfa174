"""Shared fixtures and the tool-skip policy.

A test that needs a tool that may be absent on a user's machine calls
``require_tool(available, reason)``. Locally that skips with the reason; with
``DARWIN_REQUIRE_TOOLS=1`` (set by .ci/run) it fails instead, so CI never
passes by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO_ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the opt-in tests that need a karpathy/nanoGPT checkout unless DARWIN_NANOGPT is set.

    CI has no checkout of the public repository, and nothing may skip there: these
    tests are not run rather than skipped (``pytest -m nanogpt_checkout`` with the
    variable set runs them).
    """
    if os.environ.get("DARWIN_NANOGPT"):
        return
    drop = [it for it in items if it.get_closest_marker("nanogpt_checkout")]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [it for it in items if not it.get_closest_marker("nanogpt_checkout")]


def require_tool(available: bool, reason: str) -> None:
    if available:
        return
    if (
        os.environ.get("DARWIN_REQUIRE_TOOLS") == "1"
        or os.environ.get("DARWIN_REQUIRE_SANDBOX") == "1"
    ):
        pytest.fail(f"required tool missing (DARWIN_REQUIRE_TOOLS=1): {reason}")
    pytest.skip(reason)


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None


@pytest.fixture
def bwrap() -> None:
    """Skip (or, in CI, fail) when bubblewrap cannot run Python here."""
    from darwin_bot.evaluate import sandbox

    why = sandbox.probe("bwrap")
    require_tool(why is None, f"bubblewrap sandbox unusable: {why}")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train.bin, val.bin, meta.json: tiny Shakespeare when present, else synthetic."""
    from darwin_bot.program import corpus as data_mod

    out = tmp_path_factory.mktemp("corpus") / "data"
    if SHARED_CORPUS.exists():
        data_mod.prepare_shakespeare(out, input_path=SHARED_CORPUS)
    else:
        data_mod.prepare_synthetic(out, seed=0, tokens=120_000)
    return out


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def scratch(tmp_path: Path):
    """``scratch(name)``: a new scratch repository (``darwin demo``'s) under ``tmp_path/name``."""
    from darwin_bot.cli import make_scratch_repo

    def make(name: str = "repo") -> Path:
        root = tmp_path / name
        make_scratch_repo(root, "")
        return root

    return make


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's real tokens."""
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
