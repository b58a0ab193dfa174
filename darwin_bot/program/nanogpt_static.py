"""The ``nanogpt`` contract's checks that read files: the tree, edits, and ckpt.pt.

Kept apart from :mod:`darwin_bot.program.nanogpt` (the launch and data layout)
so each module has one job. Nothing here runs the agent's code.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from darwin_bot.program.base import (
    Part,
    TrainReport,
    method_args,
    n_positional,
    parse,
    top_level_names,
)


class NanoGPTContract(Protocol):
    """The layout these checks read (``program.nanogpt.NanoGPTContract`` has it)."""

    train_path: str
    model_path: str
    args: dict[str, tuple[str, ...]]

    @property
    def program_dir(self) -> str: ...

    @property
    def required_files(self) -> tuple[str, ...]: ...


# Globals darwin must set through configurator.py, and why.
REQUIRED_KEYS: dict[str, str] = {
    "out_dir": "the checkpoint must go to the sandbox's output folder",
    "dataset": "the data folder is the trusted side's",
    "max_iters": "the budget",
    "eval_interval": "ckpt.pt is saved only at eval points",
    "always_save_checkpoint": "ckpt.pt must be written at the end of the budget",
    "device": "the device the harness picked",
}
SHAPE_KEYS = ("n_layer", "n_head", "n_embd", "block_size")


def runs_configurator(tree: ast.Module) -> bool:
    """Whether the module mentions 'configurator.py' in a call (nanoGPT: exec(open(...).read()))."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for arg in node.args:
                if isinstance(arg, ast.Constant) and arg.value == "configurator.py":
                    return True
    return False


def static_parts(c: NanoGPTContract, tree: Path, preset: str) -> list[Part]:
    parts = [
        Part(f"file {rel}", True)
        if (tree / rel).is_file()
        else Part(f"file {rel}", False, f"{tree / rel} is missing; nanoGPT's train.py needs it")
        for rel in c.required_files
    ]
    parts.append(_preset_part(c, tree, preset))
    train = parse(tree / c.train_path)
    if train is None:
        parts.append(
            Part("train.py overrides", False, f"{c.train_path} is missing or does not parse")
        )
    else:
        missing = [k for k in _required_keys() if k not in top_level_names(train)]
        parts.append(
            Part(
                "train.py overrides",
                not missing,
                f"{c.train_path} has no top-level {', '.join(missing)}; configurator.py can only "
                "override globals train.py defines: add them back"
                if missing
                else "out_dir, dataset, max_iters, eval_interval, always_save_checkpoint, device",
            )
        )
        ok = runs_configurator(train)
        parts.append(
            Part(
                "train.py runs configurator.py",
                ok,
                ""
                if ok
                else f"{c.train_path} never runs configurator.py, so darwin's --key=value "
                "overrides would be ignored; keep exec(open('configurator.py').read())",
            )
        )
    parts.append(_model_part(c, tree))
    return parts


def _required_keys() -> tuple[str, ...]:
    return tuple(REQUIRED_KEYS)


def _preset_part(c: NanoGPTContract, tree: Path, preset: str) -> Part:
    args = c.args.get(preset)
    if args is None:
        return Part(f"preset {preset}", False, f"no [program.args] entry {preset!r}; add its argv")
    configs = [a for a in args if not a.startswith("--")]
    base = tree / c.program_dir
    missing = [a for a in configs if not (base / a).is_file()]
    if missing:
        return Part(
            f"preset {preset}",
            False,
            f"config file {', '.join(missing)} is missing under "
            f"{base}; add it or change [program.args].{preset}",
        )
    bad = [a for a in args if a.startswith("--") and "=" not in a]
    if bad:
        return Part(
            f"preset {preset}", False, f"{', '.join(bad)}: nanoGPT's configurator takes --key=value"
        )
    return Part(f"preset {preset}", True, " ".join(args) or "(no arguments)")


def _model_part(c: NanoGPTContract, tree: Path) -> Part:
    model = parse(tree / c.model_path)
    if model is None:
        return Part("model GPT/GPTConfig", False, f"{c.model_path} is missing or does not parse")
    names = top_level_names(model)
    missing = [n for n in ("GPT", "GPTConfig") if n not in names]
    if missing:
        return Part(
            "model GPT/GPTConfig",
            False,
            f"{c.model_path} has no {', '.join(missing)}; "
            "scoring builds GPT(GPTConfig(**ckpt['model_args']))",
        )
    forward = method_args(model, "GPT", "forward")
    if forward is not None and n_positional(forward) < (2, False):
        return Part(
            "model GPT/GPTConfig",
            False,
            f"{c.model_path}: GPT.forward must take (idx, targets=None)",
        )
    return Part(
        "model GPT/GPTConfig", True, "GPT(GPTConfig(**model_args)).forward(idx, targets=None)"
    )


def check_edit(c: NanoGPTContract, path: str, old: ast.Module, new: ast.Module) -> str | None:
    """Reject an edit that removes what the contract calls (only what the edit changed)."""
    if PurePosixPath(path) == PurePosixPath(c.train_path):
        lost = [k for k in _required_keys() if k in top_level_names(old) - top_level_names(new)]
        if lost:
            return (
                f"{path}: global(s) {', '.join(lost)} removed; darwin sets them through "
                "configurator.py (the budget, out_dir, dataset)"
            )
        if runs_configurator(old) and not runs_configurator(new):
            return f"{path}: the exec of configurator.py was removed; darwin's overrides need it"
    if PurePosixPath(path) == PurePosixPath(c.model_path):
        lost = [n for n in ("GPT", "GPTConfig") if n in top_level_names(old) - top_level_names(new)]
        if lost:
            return f"{path}: {', '.join(lost)} removed; scoring builds GPT(GPTConfig(**model_args))"
        before, after = method_args(old, "GPT", "forward"), method_args(new, "GPT", "forward")
        if (
            before is not None
            and after is not None
            and n_positional(after) < min(n_positional(before), (2, False))
        ):
            return f"{path}: GPT.forward must keep (idx, targets=None)"
    return None


# ------------------------------------------------------------------- ckpt.pt


def read_checkpoint_report(path: Path, wall_s: float) -> TrainReport:
    """The run's claims, read from ckpt.pt with ``weights_only=True`` (no code runs).

    ``ckpt['iter_num']`` iterations of ``batch_size * gradient_accumulation_steps
    * block_size`` tokens (from ``ckpt['config']``); the shape from
    ``model_args``. nanoGPT reports no training time of its own, so the seconds
    are the measured wall time of the sandboxed process.
    """
    import torch

    if not path.is_file() or path.is_symlink():
        raise ValueError("ckpt.pt is not a regular file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    # The file is the agent's: any failure of the safe unpickler is the run's fault,
    # reported as its reason, never a crash of the harness.
    except Exception as exc:  # noqa: BLE001
        raise ValueError(
            f"ckpt.pt cannot be loaded with weights_only=True ({type(exc).__name__}: "
            f"{str(exc)[:200]})"
        ) from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise ValueError(
            "ckpt.pt has no 'model' state dict (nanoGPT saves {'model': ..., 'model_args': ...})"
        )
    margs, config = ckpt.get("model_args"), ckpt.get("config")
    if not isinstance(margs, dict):
        raise ValueError("ckpt.pt has no 'model_args' dict; scoring needs it to build GPTConfig")
    if not isinstance(config, dict):
        raise ValueError("ckpt.pt has no 'config' dict (batch_size, gradient_accumulation_steps)")
    shape = {k: _int(margs, k, "model_args") for k in SHAPE_KEYS}
    iters = _int(ckpt, "iter_num", "ckpt")
    per_iter = math.prod(
        _int(config, k, "config")
        for k in ("batch_size", "gradient_accumulation_steps", "block_size")
    )
    return TrainReport(iters, iters * per_iter, float(wall_s), shape)


def _int(d: dict[str, Any], key: str, where: str) -> int:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"ckpt.pt: {where}[{key!r}] must be a non-negative integer, got {value!r}")
    return value
