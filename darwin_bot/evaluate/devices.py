"""One evaluation per device: the devices concurrent evaluations are handed, one each.

On a machine with GPUs, each worker gets a GPU of its own: its sandboxes see
only that one (``CUDA_VISIBLE_DEVICES``), so a program that trains on ``cuda``
trains on its own device, and there are never more workers than GPUs. On a
CPU, the workers split the cores: each gets ``cores // workers`` threads
instead of each taking them all. A worker's device is in its result.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# A GPU torch can use has one of these (NVIDIA's driver; ROCm's kernel driver).
GPU_NODES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd")


@dataclass(frozen=True)
class Slot:
    """What one concurrent evaluation is given: its device and its CPU threads."""

    device: str  # what the program is told (DARWIN_DEVICE): "cpu" or "cuda"
    visible: str | None = None  # CUDA_VISIBLE_DEVICES of its sandboxes (the GPU's index)
    threads: int | None = None  # torch/OpenMP threads (DARWIN_THREADS, OMP_NUM_THREADS)

    @property
    def name(self) -> str:
        """The device as the result records it: ``cuda:1`` or ``cpu``."""
        return f"cuda:{self.visible}" if self.visible is not None else self.device

    def env(self) -> dict[str, str]:
        """The sandbox environment that pins the run to this slot's device."""
        return {"CUDA_VISIBLE_DEVICES": self.visible} if self.visible is not None else {}


def gpu_count() -> int:
    """GPUs torch can use here (0 without a GPU driver, without importing torch)."""
    if not any(os.path.exists(node) for node in GPU_NODES):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def plan_slots(workers: int | None, gpus: int, cores: int) -> list[Slot]:
    """The slots of ``workers`` concurrent evaluations (None: one per GPU, else one per 2 cores).

    With GPUs, never more slots than GPUs; on a CPU, never more than cores, each
    with an equal share of them.
    """
    if gpus > 0:
        n = min(workers or gpus, gpus)
        return [Slot("cuda", str(i), max(1, cores // n)) for i in range(n)]
    n = min(workers or max(1, cores // 2), max(1, cores))
    return [Slot("cpu", None, max(1, cores // n)) for _ in range(n)]


class DevicePool:
    """Hands each concurrent evaluation a slot no other one holds (blocking when all are out)."""

    def __init__(self, slots: list[Slot]) -> None:
        if not slots:
            raise ValueError("a device pool needs at least one slot")
        self.slots = list(slots)
        self._free: queue.Queue[Slot] = queue.Queue()
        for slot in slots:
            self._free.put(slot)

    @classmethod
    def detect(cls, workers: int | None = None) -> DevicePool:
        return cls(plan_slots(workers, gpu_count(), os.cpu_count() or 1))

    @property
    def size(self) -> int:
        return len(self.slots)

    @contextmanager
    def take(self) -> Iterator[Slot]:
        slot = self._free.get()
        try:
            yield slot
        finally:
            self._free.put(slot)


def pinned_env(visible_devices: str | None) -> dict[str, str]:
    """The environment that keeps a run on the device its worker was given."""
    return {"CUDA_VISIBLE_DEVICES": visible_devices} if visible_devices else {}


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``.

    Without a GPU driver on the host the answer is ``cpu`` without importing
    torch, which would cost the evaluator's process more than a tiny run's scoring.
    """
    if device != "auto":
        return device
    return "cuda" if gpu_count() > 0 else "cpu"
