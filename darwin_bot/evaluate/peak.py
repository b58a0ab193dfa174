"""Peak FLOP/s of a device: the denominator of MFU.

Accelerators: a table of dense (no sparsity) bf16 tensor-core peaks from the
vendors' datasheets (fp16 where the part has no bf16), matched by substring of
the device name, longest name first (so "A100" never matches "A10"). A CPU, or
an accelerator the table does not know, is measured: the best of a few float32
matmuls on the host with the training's thread count, which is what a
well-written training step can hope to reach there.

A probe taken while other work shares the cores reads low, and an MFU over a
low peak reads high (over 100% was seen here). So the best probe ever seen for
a (device, threads) pair is kept in ``$XDG_CACHE_HOME/darwin-bot/peak_flops.json``
and the peak never goes down: MFU stays comparable between evaluations.

With a figure already kept for the pair, :func:`peak` returns it without a probe
(``source="cached"``): the probe's torch import and matmuls are a fixed cost of
every one-shot ``darwin evaluate``, and a kept figure changes only when a probe
beats it. A caller whose claim check rejects a run over a cached figure probes
again (``fresh=True``) before it believes the rejection, since the kept figure
may come from a probe under load (a low peak makes an honest MFU read too high).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

TFLOPS = 1e12

# name fragment (lower case) -> dense bf16 FLOP/s
PEAK_BF16: dict[str, float] = {
    "b200": 2250 * TFLOPS,
    "gh200": 989 * TFLOPS,
    "h200": 989 * TFLOPS,
    "h100 pcie": 756 * TFLOPS,
    "h100 nvl": 835 * TFLOPS,
    "h100": 989 * TFLOPS,  # SXM
    "h800": 989 * TFLOPS,
    "a100": 312 * TFLOPS,
    "a800": 312 * TFLOPS,
    "l40s": 362 * TFLOPS,
    "l40": 181 * TFLOPS,
    "l4": 121 * TFLOPS,
    "a10g": 70 * TFLOPS,  # AWS's A10G
    "a10": 125 * TFLOPS,
    "a40": 150 * TFLOPS,
    "a6000": 155 * TFLOPS,  # RTX A6000
    "rtx 6000 ada": 364 * TFLOPS,
    "rtx 4090": 165 * TFLOPS,  # fp32 accumulate
    "rtx 3090": 71 * TFLOPS,
    "v100": 125 * TFLOPS,  # fp16, no bf16
    "t4": 65 * TFLOPS,  # fp16, no bf16
    "mi300x": 1307 * TFLOPS,
    "mi250x": 383 * TFLOPS,
    "mi210": 181 * TFLOPS,
}


@dataclass(frozen=True)
class Peak:
    """A device's peak FLOP/s and where the number came from ("table" or "measured")."""

    device: str
    flops: float
    source: str


def lookup(device_name: str) -> float | None:
    """The table's peak for ``device_name``, or None when it is not in the table."""
    name = device_name.lower()
    for fragment in sorted(PEAK_BF16, key=len, reverse=True):
        if fragment in name:
            return PEAK_BF16[fragment]
    return None


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "cpu"


def device_name(device: str) -> str:
    """A human name for a torch device string ("cpu", "cuda", "cuda:1")."""
    if device.startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name(torch.device(device)))
    return f"cpu ({cpu_name()})"


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "darwin-bot" / "peak_flops.json"


def _remember(key: str, flops: float) -> float:
    """The best of ``flops`` and what was seen before for ``key``; stores the best."""
    path = _cache_file()
    try:
        known = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        known = {}
    best = max(flops, float(known.get(key, 0.0)))
    if best > float(known.get(key, 0.0)):
        from darwin_bot.errors import StateError
        from darwin_bot.store import write_json

        with contextlib.suppress(StateError):  # a read-only home must not fail an evaluation
            write_json(path, {**known, key: best})
    return best


@functools.cache
def measure(
    device: str = "cpu", size: int = 512, seconds: float = 0.3, threads: int | None = None
) -> float:
    """Best matmul FLOP/s ever seen on ``device`` with ``threads`` (probed once per process)."""
    import torch

    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        best = 0.0
        end = time.perf_counter() + seconds
        torch.matmul(a, b)  # warm-up: allocation, kernel selection
        while time.perf_counter() < end:
            if device != "cpu":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(4):
                torch.matmul(a, b)
            if device != "cpu":
                torch.cuda.synchronize()
            best = max(best, 4 * 2 * size**3 / (time.perf_counter() - t0))
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    return _remember(f"{device_name(device)}|threads={used}", best)


def _kept(key: str) -> float | None:
    """The figure kept for ``key``, or None (no cache, unreadable, or not there)."""
    try:
        flops = json.loads(_cache_file().read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return float(flops) if isinstance(flops, (int, float)) and flops > 0 else None


def peak(device: str, threads: int | None = None, fresh: bool = False) -> Peak:
    """Peak FLOP/s of a torch device: the table for known accelerators, else the best
    figure kept for (device, threads) (measured first when none is, or when ``fresh``).

    A CPU's kept figure is looked up without importing torch; with ``threads`` unset
    the key is torch's default there, the cores this process may use.
    """
    name = device_name(device)
    if not device.startswith("cpu"):
        flops = lookup(name)
        if flops is not None:
            return Peak(name, flops, "table")
    if device == "cpu" and not fresh:
        kept = _kept(f"{name}|threads={threads or len(os.sched_getaffinity(0))}")
        if kept is not None:
            return Peak(name, kept, "cached")
    return Peak(name, measure(device, threads=threads), "measured")


def checked(
    device: str, threads: int | None, refused: type[Exception], use: Callable[[float], T]
) -> tuple[T, Peak]:
    """``use(peak FLOP/s)`` and the peak it used; when it raises ``refused`` over a kept
    figure, the device is probed again and ``use`` runs once more on the fresh figure."""
    found = peak(device, threads=threads)
    try:
        return use(found.flops), found
    except refused:
        if found.source != "cached":
            raise
    found = peak(device, threads=threads, fresh=True)
    return use(found.flops), found
