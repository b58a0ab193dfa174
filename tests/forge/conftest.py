"""Fixtures of the forge contract suite: the emulator (once per session) and a harness per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from forge_emulator import Emulator, find_emulate
from forge_harness import GitHubHarness, Harness, LocalHarness

TESTS = Path(__file__).resolve().parent.parent
REPO_ROOT = TESTS.parent


def require_tool(config: pytest.Config, available: bool, reason: str) -> None:
    """``tests/conftest.py``'s require_tool (every conftest module is named 'conftest',
    so it cannot be imported by name from here; pytest knows it by path)."""
    wanted = TESTS / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == wanted:
            plugin.require_tool(available, reason)
            return
    raise RuntimeError(f"{wanted} is not loaded; run pytest from the repository root")


@pytest.fixture(scope="session")
def emulator(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Emulator]:
    binary = find_emulate(REPO_ROOT)
    require_tool(
        request.config,
        binary is not None and shutil.which("node") is not None,
        "the GitHub emulator is not installed: npm install --prefix .ci/node emulate@0.11.2 "
        "(or set DARWIN_EMULATE_BIN)",
    )
    assert binary is not None
    emu = Emulator(binary, tmp_path_factory.mktemp("emulate"))
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(params=["local", "github"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    if request.param == "local":
        yield LocalHarness(tmp_path)
        return
    emu: Emulator = request.getfixturevalue("emulator")
    emu.proxy.clear()
    yield GitHubHarness(tmp_path, emu)
    emu.proxy.clear()


@pytest.fixture
def github(tmp_path: Path, emulator: Emulator) -> Iterator[GitHubHarness]:
    emulator.proxy.clear()
    yield GitHubHarness(tmp_path, emulator)
    emulator.proxy.clear()
