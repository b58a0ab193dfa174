"""Hyperparameter rules: which numbers in a config block may move, and how far.

A rule maps (current value, the other values of its block, rng) to a new value
or None. :func:`hparam_edits` lists one edit per hyperparameter found in a
config chunk (a chunk of assignments, not a function), each a coherent change:
every site of the name in one block gets the same draw.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Callable

from darwin_bot.llm.offline.ast_tools import (
    callee,
    dedented,
    fmt_number,
    indented,
    numeric,
    parse,
    span,
    splice,
    walk,
)
from darwin_bot.llm.offline.registry import Edit, EditTag

HParamRule = Callable[[float, dict[str, float], random.Random], "float | None"]


def _scale(*factors: float, lo: float = 0.0, integer: bool = False) -> HParamRule:
    def rule(v: float, _ctx: dict[str, float], rng: random.Random) -> float | None:
        new = v * rng.choice(factors)
        new = max(lo, round(new) if integer else new)
        return None if new == v else new

    return rule


def _pick(*values: float) -> HParamRule:
    def rule(v: float, _ctx: dict[str, float], rng: random.Random) -> float | None:
        options = [x for x in values if x != v]
        return rng.choice(options) if options else None

    return rule


def _width(v: float, ctx: dict[str, float], rng: random.Random) -> float | None:
    heads = int(ctx.get("n_head", 1))
    step = 2 * heads  # keep the head size even (rotary needs pairs)
    new = round(v * rng.choice((0.75, 1.25, 1.5)) / step) * step
    return new if new >= step and new != v else None


def _heads(v: float, ctx: dict[str, float], rng: random.Random) -> float | None:
    width = int(ctx.get("n_embd", 0))
    options = [
        h
        for h in (int(v) // 2, int(v) * 2)
        if h >= 1 and width % h == 0 and (width // h) % 2 == 0 and width // h >= 8
    ]
    return rng.choice(options) if options else None


def _depth(v: float, _ctx: dict[str, float], rng: random.Random) -> float | None:
    new = v + rng.choice((-1, 1, 2))
    return new if new >= 1 else None


# name -> (rule, why)
HPARAMS: dict[str, tuple[HParamRule, str]] = {
    "learning_rate": (
        _scale(0.5, 0.7, 1.5, 2.0),
        "the peak learning rate sets how far each step moves; the best value shifts with model shape and budget",
    ),
    "warmup_iters": (
        _scale(0.5, 2.0, lo=0, integer=True),
        "warmup length trades early stability against time spent at a low learning rate",
    ),
    "weight_decay": (
        _pick(0.0, 0.01, 0.05, 0.2),
        "weight decay regularises the matrices; short runs often prefer less",
    ),
    "beta1": (
        _pick(0.8, 0.85, 0.95),
        "Adam's first-moment decay sets how much gradient history each step averages",
    ),
    "beta2": (
        _pick(0.95, 0.98, 0.999),
        "a shorter second-moment horizon adapts faster in short runs (0.95 is common for LLMs)",
    ),
    "dropout": (
        _pick(0.0, 0.05, 0.1),
        "dropout fights overfitting, but in a short run the model is under-fitted",
    ),
    "batch_size": (
        _scale(0.5, 1.5, lo=1, integer=True),
        "batch size trades gradient noise against tokens per step",
    ),
    "n_embd": (
        _width,
        "a wider residual stream has more capacity per layer (kept divisible by the heads)",
    ),
    "n_head": (
        _heads,
        "head count trades the number of attention patterns against the size of each head",
    ),
    "n_layer": (
        _depth,
        "depth against width: more layers compose more features, fewer train faster",
    ),
    "grad_clip": (
        _pick(0.0, 0.5, 2.0),
        "clipping the gradient norm tames loss spikes; too tight slows learning",
    ),
    "min_lr": (
        _pick(3.0, 5.0, 20.0, 100.0),
        "the floor of the decay (learning_rate / this) sets how far the schedule anneals",
    ),
}
KINDS: tuple[str, ...] = tuple(f"hparam:{n}" for n in HPARAMS)


def _sites(tree: ast.Module) -> list[tuple[str, ast.Constant, int]]:
    """(name, constant node, block id) for every numeric constant tied to a known name."""
    sites: list[tuple[str, ast.Constant, int]] = []
    for node in walk(tree):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name = node.targets[0].id
            if name in HPARAMS and not isinstance(node.value, ast.Call):
                sites += [(name, c, 0) for c in walk(node.value) if numeric(c)]  # type: ignore[misc]
        elif isinstance(node, ast.Call) and callee(node) == "dict":
            for kw in node.keywords:
                if kw.arg in HPARAMS and numeric(kw.value):
                    sites.append((kw.arg, kw.value, id(node)))  # type: ignore[arg-type]
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=False):
                if isinstance(k, ast.Constant) and k.value in HPARAMS and numeric(v):
                    sites.append((k.value, v, id(node)))  # type: ignore[arg-type]
    return sites


def _one(
    text: str, name: str, sites: list[tuple[str, ast.Constant, int]], rng: random.Random
) -> Edit | None:
    rule, why = HPARAMS[name]
    contexts: dict[int, dict[str, float]] = {}
    for n, c, ctx in sites:
        contexts.setdefault(ctx, {})[n] = c.value  # type: ignore[assignment]
    edits: list[tuple[int, int, str]] = []
    changes: list[str] = []
    moved: list[tuple[float, float]] = []
    for n, c, ctx in sites:
        if n != name:
            continue
        state = rng.getstate()  # every block gets the same draw: one coherent change
        new = rule(float(c.value), contexts[ctx], rng)  # type: ignore[arg-type]
        rng.setstate(state)
        if new is None:
            continue
        shown = fmt_number(c.value, new)
        edits.append((*span(text, c), shown))
        changes.append(f"{c.value} -> {shown}")
        moved.append((float(c.value), new))  # type: ignore[arg-type]
    if not edits:
        return None
    direction = "up" if moved[0][1] > moved[0][0] else "down"
    tag = EditTag(f"hparam:{name}", direction, edits[0][2])
    summary = f"Set {name} {', '.join(dict.fromkeys(changes))}"[:72]
    return Edit(tag, summary, f"{why}.", splice(text, edits))


def hparam_edits(chunk_text: str, rng: random.Random) -> list[Edit]:
    """One edit per known hyperparameter of a config chunk (none for a function or class)."""
    body, indent = dedented(chunk_text)
    tree = parse(body)
    if tree is None or any(isinstance(st, (ast.FunctionDef, ast.ClassDef)) for st in tree.body):
        return []  # only a config block: a dict inside a function is not a hyperparameter
    sites = _sites(tree)
    out = []
    for name in sorted({n for n, _, _ in sites}):
        edit = _one(body, name, sites, random.Random(rng.random()))
        if edit is not None:
            out.append(Edit(edit.tag, edit.summary, edit.rationale, indented(edit.text, indent)))
    return out
