"""Scoring-side half of the ``nanogpt`` contract: build the agent's model from ckpt.pt.

Loaded by file path by ``score_worker.py`` inside the scoring sandbox, next to
the agent's code, so it is standard library and torch only, never darwin_bot.

``load(tree, model_file, ckpt_path, device)`` imports the agent's own
``model.py``, builds ``GPT(GPTConfig(**ckpt['model_args']))``, loads
``ckpt['model']`` (the ``_orig_mod.`` prefix torch.compile adds is stripped, as
nanoGPT's own resume does) and returns a module whose ``forward(idx)`` gives
full-sequence logits ``[B, T, vocab]``.

Full-sequence logits: nanoGPT's ``forward(idx, targets=None)`` returns only the
last position's logits (an inference shortcut) and the full ``[B, T, vocab]``
ones only when targets are given. So the first call tries ``forward(idx)``; if
that is not full-length, every call passes *dummy* targets (zeros, never the
real next tokens: the trusted side keeps those) and takes the logits out of
``(logits, loss)``. The choice is made once, so every window is scored the same
way; the loss the model computes against the zeros is thrown away.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import torch

PREFIX = "_orig_mod."


class FullLogits(torch.nn.Module):
    """``forward(idx) -> [B, T, vocab]`` over a nanoGPT-style ``forward(idx, targets=None)``."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.dummy_targets: bool | None = None  # decided on the first call

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if self.dummy_targets is None:
            logits = _logits(self.inner(idx))
            self.dummy_targets = not (logits.dim() == 3 and logits.shape[1] == idx.shape[1])
            if not self.dummy_targets:
                return logits
        if self.dummy_targets:
            return _logits(self.inner(idx, torch.zeros_like(idx)))
        return _logits(self.inner(idx))


def _logits(out: object) -> torch.Tensor:
    if isinstance(out, (tuple, list)) and out:  # (logits, loss)
        out = out[0]
    if not isinstance(out, torch.Tensor):
        sys.exit(f"nanogpt: GPT.forward returned {type(out).__name__}, not (logits, loss)")
    return out


def _import_model(tree: str, model_file: str) -> object:
    path = os.path.join(tree, model_file)
    sys.path[:0] = [os.path.dirname(path), tree]  # model.py may import its siblings
    spec = importlib.util.spec_from_file_location("model", path)
    if spec is None or spec.loader is None:
        sys.exit(f"nanogpt: {model_file} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules["model"] = module
    spec.loader.exec_module(module)
    for name in ("GPT", "GPTConfig"):
        if not callable(getattr(module, name, None)):
            sys.exit(f"nanogpt: {model_file} has no {name}")
    return module


def load(tree: str, model_file: str, ckpt_path: str, device: str) -> torch.nn.Module:
    """The agent's GPT with the trained weights, wrapped to give full-sequence logits."""
    module = _import_model(tree, model_file)
    ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
    if not isinstance(ckpt, dict) or "model_args" not in ckpt or "model" not in ckpt:
        sys.exit("nanogpt: ckpt.pt has no 'model_args' and 'model'")
    state = {k.removeprefix(PREFIX): v for k, v in ckpt["model"].items()}
    model = module.GPT(module.GPTConfig(**ckpt["model_args"]))  # type: ignore[attr-defined]
    model.load_state_dict(state)
    model.to(device).eval()
    return FullLogits(model)
