"""Parameters counted from the bytes a checkpoint stores, not from what its views claim.

A tensor is a view: a shape and strides over a storage. ``numel()`` is what the
view claims; the storage is what was saved and what a forward pass can read.
``zeros(1).expand(N)`` claims N elements over a storage of one, so counting
elements let 4 bytes pass for a large model (and inflate FLOPs per token and
MFU). Here every distinct storage counts once, by its bytes over the element
size: tied weights share a storage and count once, an expanded tensor counts
what it stores. A view whose elements overlap (a stride of 0 over a size above
1, or strides that revisit an element) or reach past its storage claims more
than the storage holds, and such a checkpoint is refused with the reason: no
honest training saves one (``.contiguous()`` undoes it).

Pure and standard-library-plus-torch only, so the scoring worker (run by path
in the sandbox, never importing darwin_bot) and the trusted side can both load
it and count any set of tensors the same way, exported weights included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

MAX_ITEMS = 1_000_000  # containers walked at most (a checkpoint is a few nested dicts)
MAX_DEPTH = 32


@dataclass(frozen=True)
class StorageCount:
    """What a set of tensors stores: ``params`` elements, ``matrix_params`` of them in
    storages that a tensor of 2 or more dimensions views; ``problem`` is '' or why refused."""

    params: int
    matrix_params: int
    problem: str = ""


def tensors_in(obj: Any) -> list[torch.Tensor]:
    """Every tensor in ``obj`` and the dicts, lists and tuples inside it (bounded walk)."""
    found: list[torch.Tensor] = []
    stack, visited = [(obj, 0)], 0
    while stack and visited < MAX_ITEMS:
        item, depth = stack.pop()
        visited += 1
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif depth < MAX_DEPTH and isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif depth < MAX_DEPTH and isinstance(item, (list, tuple)):
            stack += [(v, depth + 1) for v in item]
    return found


def overclaim(t: torch.Tensor) -> str:
    """'' when ``t``'s elements are distinct places inside its storage; else what it claims."""
    if t.numel() == 0:
        return ""
    held = t.untyped_storage().nbytes() // t.element_size()
    dims = sorted((st, size) for size, st in zip(t.shape, t.stride(), strict=True) if size > 1)
    reach = 1  # elements spanned by the dimensions so far; a stride below it revisits one
    for st, size in dims:
        if st < reach:
            return f"a {tuple(t.shape)} view with strides {t.stride()} repeats its elements"
        reach = st * (size - 1) + reach
    end = (
        t.storage_offset()
        + sum((size - 1) * st for size, st in zip(t.shape, t.stride(), strict=True))
        + 1
    )
    if t.storage_offset() < 0 or end > held:
        return f"a {tuple(t.shape)} view reaches element {end - 1} of a storage of {held}"
    return ""


def count_storage(tensors: Iterable[torch.Tensor]) -> StorageCount:
    """Elements stored by ``tensors``, each storage once; a problem for any overclaiming view."""
    sizes: dict[tuple[str, int], int] = {}
    matrix: set[tuple[str, int]] = set()
    problem = ""
    for t in tensors:
        storage = t.untyped_storage()
        key = (str(t.device), storage.data_ptr() if storage.nbytes() else id(storage))
        sizes[key] = max(sizes.get(key, 0), storage.nbytes() // t.element_size())
        if t.dim() >= 2:
            matrix.add(key)
        problem = problem or overclaim(t)
    if problem:
        problem = (
            f"the checkpoint claims more than it stores: {problem}; save tensors .contiguous()"
        )
    return StorageCount(sum(sizes.values()), sum(sizes[k] for k in matrix), problem)
