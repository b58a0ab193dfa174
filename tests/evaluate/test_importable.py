"""The trusted side's "could agent code import this?" agrees with an import in the real sandbox."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from darwin_bot.evaluate import Limits, Mount, importable, run_sandboxed, scrub_env

# One module that only this process can see (its folder is on sys.path but not mounted).
HOST_ONLY = "darwin_host_only_module"
NAMES = ["math", "json", "torch", "numpy", "lion_pytorch", "not_a_module_zz9", HOST_ONLY]


def _imports_in_sandbox(tmp_path: Path) -> dict[str, bool]:
    out = tmp_path / "out"
    out.mkdir()
    mount = Mount("out", out, writable=True)
    probe = (
        "import importlib, json\n"
        "ok = {}\n"
        f"for name in {NAMES!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "        ok[name] = True\n"
        "    except ImportError:\n"
        "        ok[name] = False\n"
        "open('ok.json', 'w').write(json.dumps(ok))\n"
    )
    run = run_sandboxed(
        [sys.executable, "-I", "-c", probe],
        backend="bwrap",
        mounts=[mount],
        cwd=mount.inside("bwrap"),
        env=scrub_env(),
        limits=Limits(timeout_s=120, memory_mb=4096),
    )
    assert (out / "ok.json").exists(), run
    return json.loads((out / "ok.json").read_text())


def test_split_agrees_with_an_import_in_the_sandbox(
    bwrap: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = tmp_path / "host"
    (host / HOST_ONLY).mkdir(parents=True)
    (host / HOST_ONLY / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(host))
    assert __import__(HOST_ONLY)  # this process can import it: the check must not say so

    seen = _imports_in_sandbox(tmp_path)
    installed, missing = importable.split_importable(NAMES)
    assert {n: n in installed for n in NAMES} == seen
    assert seen["math"] and seen["torch"] and not seen["not_a_module_zz9"]
    assert HOST_ONLY in missing and set(installed) | set(missing) == set(NAMES)


def test_the_check_finds_and_never_imports(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "noisy").mkdir(parents=True)
    (site / "noisy" / "__init__.py").write_text("raise SystemExit('imported')\n")
    assert importable.importable("noisy.sub", [str(site)])  # found by its top-level package
    assert not importable.importable("absent", [str(site)])
    assert "noisy" not in sys.modules
