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
from dataclasses import dataclass

from darwin_bot.llm.evidence import EditTag
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
from darwin_bot.llm.offline.registry import Edit

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


@dataclass(frozen=True)
class Why:
    """Why an edit moves a hyperparameter, said for the direction it actually moves.

    A rationale is read beside its diff: one that argues for more capacity on an
    edit that narrows the model is wrong, so each direction has its own text.
    """

    up: str
    down: str

    def of(self, direction: str) -> str:
        return self.up if direction == "up" else self.down


# name -> (rule, why for each direction)
HPARAMS: dict[str, tuple[HParamRule, Why]] = {
    "learning_rate": (
        _scale(0.5, 0.7, 1.5, 2.0),
        Why(
            "a higher peak learning rate moves further each step, so a short budget covers more ground",
            "a lower peak learning rate takes steadier steps, avoiding the loss spikes that waste a short budget",
        ),
    ),
    "warmup_iters": (
        _scale(0.5, 2.0, lo=0, integer=True),
        Why(
            "a longer warmup keeps the first steps stable while Adam's statistics settle",
            "a shorter warmup spends less of the budget at a low learning rate",
        ),
    ),
    "weight_decay": (
        _pick(0.0, 0.01, 0.05, 0.2),
        Why(
            "more weight decay regularises the matrices harder against overfitting",
            "less weight decay lets an under-fitted short run use its weights; short runs often prefer less",
        ),
    ),
    "beta1": (
        _pick(0.8, 0.85, 0.95),
        Why(
            "a larger beta1 averages more gradient history into each step, smoothing noisy gradients",
            "a smaller beta1 averages less gradient history, so each step follows the current gradient faster",
        ),
    ),
    "beta2": (
        _pick(0.95, 0.98, 0.999),
        Why(
            "a longer second-moment horizon gives steadier per-parameter step sizes",
            "a shorter second-moment horizon adapts faster in short runs (0.95 is common for LLMs)",
        ),
    ),
    "dropout": (
        _pick(0.0, 0.05, 0.1),
        Why(
            "more dropout fights overfitting",
            "less dropout: in a short run the model is under-fitted, so regularising it costs more than it saves",
        ),
    ),
    "batch_size": (
        _scale(0.5, 1.5, lo=1, integer=True),
        Why(
            "a larger batch gives less noisy gradients and more tokens per step",
            "a smaller batch takes more, cheaper steps in the same budget",
        ),
    ),
    "n_embd": (
        _width,
        Why(
            "a wider residual stream has more capacity per layer (kept divisible by the heads)",
            "a narrower residual stream is cheaper per step, so more of the budget goes to "
            "training steps (kept divisible by the heads)",
        ),
    ),
    "n_head": (
        _heads,
        Why(
            "more heads attend to more patterns at once, each with a smaller head",
            "fewer heads give each head a larger dimension to attend with",
        ),
    ),
    "n_layer": (
        _depth,
        Why(
            "more layers compose more features",
            "fewer layers train faster, so more steps fit in the budget",
        ),
    ),
    "grad_clip": (
        _pick(0.0, 0.5, 2.0),
        Why(
            "a looser gradient clip (or none) slows learning less",
            "a tighter gradient clip tames loss spikes",
        ),
    ),
    "min_lr": (
        _pick(3.0, 5.0, 20.0, 100.0),
        Why(
            "a larger divisor lowers the floor of the decay (learning_rate / this), annealing further",
            "a smaller divisor raises the floor of the decay (learning_rate / this), annealing less",
        ),
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
    return Edit(tag, summary, f"{why.of(loosening(name, *moved[0]))}.", splice(text, edits))


def loosening(name: str, old: float, new: float) -> str:
    """The direction a rationale argues for: the number's, except that a clip of 0 means none."""
    if name == "grad_clip" and 0.0 in (old, new):
        return "up" if new == 0.0 else "down"  # to 0: no clipping at all, the loosest
    return "up" if new > old else "down"


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
