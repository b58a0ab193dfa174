"""The measured CPU peak never goes down, so MFU stays comparable between evaluations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from darwin_bot.evaluate import peak


def test_the_best_probe_is_kept_per_device_and_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert peak._remember("cpu x|threads=1", 5e9) == 5e9
    assert peak._remember("cpu x|threads=1", 3e9) == 5e9  # a probe under load reads low
    assert peak._remember("cpu x|threads=2", 2e9) == 2e9  # another thread count is its own key
    assert peak._remember("cpu x|threads=1", 7e9) == 7e9
    stored = json.loads((tmp_path / "darwin-bot" / "peak_flops.json").read_text())
    assert stored == {"cpu x|threads=1": 7e9, "cpu x|threads=2": 2e9}


def test_an_unwritable_cache_does_not_fail_the_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert peak._remember("cpu y|threads=1", 4e9) == 4e9


def test_auto_is_cpu_without_importing_torch_on_a_host_without_a_gpu_driver() -> None:
    from darwin_bot.evaluate.devices import GPU_NODES

    if any(Path(node).exists() for node in GPU_NODES):
        pytest.skip("this host has a GPU driver: auto imports torch to ask it")
    code = (
        "import sys; from darwin_bot.evaluate.devices import resolve_device; "
        "print(resolve_device('auto'), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["cpu", "False"], out.stderr


def test_a_kept_figure_is_used_without_importing_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from darwin_bot.evaluate import peak; "
        "key = f'{peak.device_name(\"cpu\")}|threads=1'; peak._remember(key, 6e9); "
        "p = peak.peak('cpu', threads=1); print(p.source, p.flops, 'torch' in sys.modules)"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["cached", "6000000000.0", "False"], out.stderr


class Refused(Exception):
    pass


def _refuse_below(floor: float):
    def use(flops: float) -> float:
        if flops < floor:
            raise Refused(f"MFU over 100% at a peak of {flops:g}")
        return flops

    return use


def test_a_refusal_over_a_kept_figure_is_checked_with_a_fresh_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    probes: list[int | None] = []

    def probe(device: str, threads: int | None = None) -> float:
        probes.append(threads)
        return peak._remember(f"{peak.device_name(device)}|threads={threads}", 9e9)

    monkeypatch.setattr(peak, "measure", probe)
    peak._remember(f"{peak.device_name('cpu')}|threads=2", 1e9)  # probed under load: low
    used, found = peak.checked("cpu", 2, Refused, _refuse_below(5e9))
    assert (used, found.source, probes) == (9e9, "measured", [2])
    used, found = peak.checked("cpu", 2, Refused, _refuse_below(5e9))  # the better figure kept
    assert (used, found.source, probes) == (9e9, "cached", [2])
    with pytest.raises(Refused):  # a refusal over a fresh probe stands
        peak.checked("cpu", 2, Refused, _refuse_below(1e10))
    assert probes == [2, 2]
