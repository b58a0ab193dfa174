"""A learning-curve point's weights, put into the final model's exported graph.

Loaded by file path by ``graph_worker.py`` in the scoring sandbox (which holds
no agent code), so it is standard library and torch only, never darwin_bot.

A checkpoint saved during training is scored with the graph exported from the
final model: the same computation, with the checkpoint's tensors in place of
the graph's weights, matched by name (the graph's weight names are the model's
own, under the export wrapper's prefix, e.g. ``inner.transformer.wte.weight``
for the checkpoint's ``transformer.wte.weight``). No code of the agent runs to
build it, so the program cannot pick which weights a point is scored with.

Every weight of the graph must come from the checkpoint with the same shape:
a weight the checkpoint lacks would be the *final* model's (a program could
hide its trained weights in a buffer it never saves, and every point would
score like the end). Only a few scalars may stay (:data:`KEPT_ELEMENTS`): the
constants ``torch.export`` lifts out of ``forward``. A checkpoint that does
not fit raises :class:`Unfit` with what to change.
"""

from __future__ import annotations

import math
from typing import Any

PREFIX = "_orig_mod."  # torch.compile's, stripped as nanoGPT's own resume does
KEPT_ELEMENTS = 64  # graph weights the checkpoint may lack, in elements, all together


class Unfit(Exception):
    """The checkpoint's tensors do not fit the exported graph's weights."""


def state_dict(obj: Any) -> dict[str, Any]:
    """The name -> tensor map of a checkpoint: ``obj['model']`` when it has one, else ``obj``."""
    import torch

    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise Unfit("the checkpoint is not a state dict (save {'model': model.state_dict()})")
    return {str(k).removeprefix(PREFIX): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _prefix(graph_keys: list[str], names: set[str]) -> str:
    """The prefix the export put before the model's names: the one that matches most keys."""
    votes: dict[str, int] = {}
    for key in graph_keys:
        for i in [0] + [j + 1 for j, c in enumerate(key) if c == "."]:
            if key[i:] in names:
                votes[key[:i]] = votes.get(key[:i], 0) + 1
    return max(votes, key=lambda p: (votes[p], -len(p))) if votes else ""


def substitute(weights: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """``weights`` (the graph's, by key) with each one replaced by the checkpoint's tensor."""
    import torch

    prefix = _prefix(list(weights), set(state))
    out: dict[str, Any] = {}
    kept = 0
    for key, old in weights.items():
        new = state.get(key[len(prefix) :]) if key.startswith(prefix) else None
        if new is None:
            kept += old.numel()
            out[key] = old
            continue
        if tuple(new.shape) != tuple(old.shape):
            raise Unfit(
                f"{key} is {tuple(old.shape)} in the graph but {tuple(new.shape)} in "
                "the checkpoint; save the model's own state_dict()"
            )
        if new.dtype != old.dtype and not (new.is_floating_point() and old.is_floating_point()):
            raise Unfit(f"{key} is {old.dtype} in the graph but {new.dtype} in the checkpoint")
        fresh = torch.empty_strided(old.shape, old.stride(), dtype=old.dtype, device=old.device)
        out[key] = fresh.copy_(new.to(old.dtype))
    if kept > KEPT_ELEMENTS:
        missing = [k for k in weights if not k.startswith(prefix) or k[len(prefix) :] not in state]
        raise Unfit(
            f"the checkpoint lacks {len(missing)} of the graph's weights "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): save "
            "every parameter and buffer forward() reads"
        )
    if not all(math.isfinite(float(t.float().abs().sum())) for t in out.values() if t.numel()):
        raise Unfit("the checkpoint holds non-finite weights")
    return out


def load(path: str, weights: dict[str, Any]) -> dict[str, Any]:
    """The graph's weights with the checkpoint at ``path`` in them (read as plain data)."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is the program's, told to its author
        raise Unfit(
            f"the checkpoint is not one torch.load(weights_only=True) reads ({exc})"
        ) from exc
    return substitute(weights, state_dict(obj))
