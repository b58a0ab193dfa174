"""The weight count FLOPs per token are computed from, read from the checkpoint as data.

Loaded by file path by ``graph_worker.py`` in the scoring sandbox (which holds
no agent code), so it is standard library and torch only, never darwin_bot.
It reads the checkpoint with ``torch.load(weights_only=True)`` (no pickled code
runs) and counts the elements its tensors' storages hold (``storage_count.py``):
that count, not anything the agent reports, is what FLOPs per token are
computed from. A file that is not a checkpoint counts 0 (the MFU is then
unavailable, not the run failed).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

OVERCLAIMED = 2**64 - 1  # the parameter count of a checkpoint whose views claim more than it stores


def count_weights(path: str, key: str = "") -> tuple[int, int]:
    """(elements, elements in storages a tensor of ndim >= 2 views) stored at ``path``.

    Counted from storage bytes by ``storage_count.py`` (loaded by path, like the
    adapters). A checkpoint whose views claim more than they store counts
    ``(OVERCLAIMED, 0)``: the trusted side rejects it (the reason is on stderr).
    ``key``: count only ``obj[key]`` (nanoGPT's ckpt.pt also holds the optimizer's moments).
    """
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a checkpoint torch can read as plain data: count nothing
        return 0, 0
    if key:
        obj = obj.get(key) if isinstance(obj, dict) else None
    counter = _sibling("storage_count")
    count = counter.count_storage(counter.tensors_in(obj))
    if count.problem:
        print(f"score_worker: {count.problem}", file=sys.stderr)
        return OVERCLAIMED, 0
    return count.params, count.matrix_params


def _sibling(name: str) -> Any:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"darwin_{name}", path)
    if spec is None or spec.loader is None:
        sys.exit(f"score_worker: {name}.py is missing next to the worker")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
