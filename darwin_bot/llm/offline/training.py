"""Known edits to the head, the initialisation, the logits, the optimizer and the lr schedule."""

from __future__ import annotations

import ast
import random

from darwin_bot.llm.offline.ast_tools import (
    callee,
    functions,
    insert_after,
    insert_before,
    parse,
    span,
    splice,
    src,
    walk,
)
from darwin_bot.llm.offline.registry import transform


def _init_with_head(text: str) -> ast.FunctionDef | None:
    tree = parse(text)
    if tree is None:
        return None
    inits = [f for f in functions(tree, "__init__") if "lm_head" in ast.unparse(f)]
    return inits[0] if inits else None


def _tie_stmt(fn: ast.FunctionDef) -> ast.stmt | None:
    for st in walk(fn):
        if isinstance(st, ast.Assign) and len(st.targets) == 1:
            t, v = ast.unparse(st.targets[0]), ast.unparse(st.value)
            if ("wte.weight" in t and "lm_head.weight" in v) or (
                "lm_head.weight" in t and "wte.weight" in v
            ):
                return st
    return None


@transform(
    "untie_head",
    "Untie the output head from the token embeddings",
    "A separate output matrix lets input and output embeddings specialise; small models often gain.",
)
def untie_head(text: str, _rng: random.Random, _names: set[str]) -> str | None:
    fn = _init_with_head(text)
    st = _tie_stmt(fn) if fn is not None else None
    if st is None:
        return None
    return splice(text, [(*span(text, st), "# untied: the output head keeps its own weights")])


@transform(
    "zero_init_head",
    "Zero-initialise an untied output head",
    "A zero output head starts at the uniform distribution and avoids large early logits (modded-nanogpt).",
)
def zero_head(text: str, _rng: random.Random, names: set[str]) -> str | None:
    fn = _init_with_head(text)
    if fn is None or "torch" not in names or "zeros_(self.lm_head.weight)" in text:
        return None
    line = "torch.nn.init.zeros_(self.lm_head.weight)  # zero-initialised output head: uniform first predictions"
    text2 = insert_after(text, fn.body[-1], line)
    tie = _tie_stmt(fn)
    if tie is None:
        return text2
    untie = "# untied: a zero-initialised head must not zero the embeddings"
    return splice(text2, [(*span(text2, tie), untie)])  # the tie sits above the insertion


@transform(
    "zero_init_proj",
    "Zero-initialise the residual projections",
    "Zero-init output projections make each block start as the identity (ReZero/modded-nanogpt), which speeds early training.",
)
def zero_proj(text: str, _rng: random.Random, _names: set[str]) -> str | None:
    fn = _init_with_head(text)
    if fn is None:
        return None
    for loop in walk(fn):
        if isinstance(loop, ast.For) and "c_proj" in ast.unparse(loop):
            for c in walk(loop):
                if isinstance(c, ast.Call) and callee(c) == "normal_" and c.args:
                    prefix = ast.unparse(c.func).rsplit(".", 1)[0]
                    return splice(
                        text, [(*span(text, c), f"{prefix}.zeros_({src(text, c.args[0])})")]
                    )
    return None


@transform(
    "logit_softcap",
    "Soft-cap the output logits at 30",
    "A tanh soft-cap (Gemma 2) stops logits from growing without bound and stabilises training.",
)
def softcap(text: str, _rng: random.Random, names: set[str]) -> str | None:
    tree = parse(text)
    if tree is None or "torch" not in names or "tanh" in text:
        return None
    for fn in functions(tree, "forward"):
        for st in walk(fn):
            if (
                isinstance(st, ast.Assign)
                and len(st.targets) == 1
                and isinstance(st.targets[0], ast.Name)
                and st.targets[0].id == "logits"
                and isinstance(st.value, ast.Call)
                and callee(st.value) == "lm_head"
            ):
                value = src(text, st.value)
                return splice(text, [(*span(text, st.value), f"30.0 * torch.tanh({value} / 30.0)")])
    return None


@transform(
    "lion_optimizer",
    "Train with the Lion optimizer instead of AdamW",
    "Lion (Chen et al. 2023) updates by the sign of a momentum blend: half of AdamW's optimizer "
    "memory and faster steps, and it matched AdamW on language models at a lower learning rate.",
    needs=("lion_pytorch",),
)
def lion(text: str, _rng: random.Random, _names: set[str]) -> str | None:
    tree = parse(text)
    if tree is None or "Lion" in text:
        return None
    for fn in functions(tree, "configure_optimizers"):
        for st in fn.body:
            if isinstance(st, ast.Return) and isinstance(st.value, ast.Call):
                call = st.value
                if ast.unparse(call.func).endswith("AdamW") and call.args:
                    groups = src(text, call.args[0])
                    new = splice(
                        text,
                        [
                            (
                                *span(text, call),
                                f"Lion({groups}, lr=learning_rate, betas=(0.9, 0.99))",
                            )
                        ],
                    )
                    stmt = parse(new).body[0].body[-1]  # type: ignore[union-attr,attr-defined]
                    return insert_before(
                        new, stmt, ["from lion_pytorch import Lion  # an approved dependency"]
                    )
    return None


def _schedule(kind: str, tail: list[str]):  # noqa: ANN202 - a transform's apply function
    def apply(text: str, _rng: random.Random, _names: set[str]) -> str | None:
        tree = parse(text)
        if tree is None or len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
            return None
        fn = tree.body[0]
        params = [a.arg for a in fn.args.args]
        used = {n.id for n in walk(fn) if isinstance(n, ast.Name)}
        if (
            "lr" not in fn.name
            or len(params) != 2
            or not {"learning_rate", "min_lr", "warmup_iters"} <= used
            or kind in text
        ):
            return None
        it, progress = params
        body = [
            f"def {fn.name}({it}, {progress}):",
            f'    """Linear warmup over warmup_iters, then a {kind} decay to min_lr over {progress} in [0, 1]."""',
            f"    if {it} < warmup_iters:",
            f"        return learning_rate * ({it} + 1) / (warmup_iters + 1)",
            f"    p = min(max({progress}, 0.0), 1.0)",
            *("    " + t for t in tail),
        ]
        return "\n".join(body) + "\n"

    return apply


transform(
    "schedule:linear",
    "Decay the learning rate linearly instead of cosine",
    "Linear decay to a floor matches or beats cosine in short budgets (Defazio et al. 2023).",
)(_schedule("linear", ["return min_lr + (1.0 - p) * (learning_rate - min_lr)"]))
transform(
    "schedule:warmup-stable-decay",
    "Hold the peak lr, then decay over the last 20%",
    "Warmup-stable-decay (MiniCPM) spends most steps at the peak rate and anneals only at the end.",
)(
    _schedule(
        "warmup-stable-decay",
        [
            "if p < 0.8:",
            "    return learning_rate",
            "return min_lr + (1.0 - p) / 0.2 * (learning_rate - min_lr)",
        ],
    )
)
