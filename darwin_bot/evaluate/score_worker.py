"""The weight count FLOPs per token are computed from, read from the checkpoint as data.

Loaded by file path by ``graph_worker.py`` in the scoring sandbox (which holds
no agent code), so it is standard library and torch only, never darwin_bot.
It reads the checkpoint with ``torch.load(weights_only=True)`` (no pickled code
runs) and counts the distinct tensor elements there: that count, not anything
the agent reports, is what FLOPs per token are computed from. A file that is
not a checkpoint counts 0 (the MFU is then unavailable, not the run failed).
"""

from __future__ import annotations


def count_weights(path: str, key: str = "") -> tuple[int, int]:
    """(elements, elements of tensors with ndim >= 2) of the distinct tensors saved at ``path``.

    ``key``: count only ``obj[key]`` (nanoGPT's ckpt.pt also holds the optimizer's moments).
    """
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a checkpoint: nothing to vouch for
        return 0, 0
    if key:
        obj = obj.get(key) if isinstance(obj, dict) else None
    seen: dict[tuple[int, int, tuple[int, ...]], torch.Tensor] = {}
    stack, visited = [(obj, 0)], 0
    while stack and visited < 1_000_000:
        item, depth = stack.pop()
        visited += 1
        if isinstance(item, torch.Tensor):
            key = (item.untyped_storage().data_ptr(), item.storage_offset(), tuple(item.shape))
            seen[key] = item  # tied weights share storage, offset and shape: counted once
        elif depth < 32 and isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif depth < 32 and isinstance(item, (list, tuple)):
            stack += [(v, depth + 1) for v in item]
    total = sum(t.numel() for t in seen.values())
    return total, sum(t.numel() for t in seen.values() if t.dim() >= 2)
