"""The ``heuristic`` backend: an offline, seeded mutator that speaks the reply format.

No network and no model: it reads the chunk out of the prompt (the fenced block
after ``### CHUNK <file>::<name>``), lists the known edits that fit it, picks one
with its seeded RNG and answers exactly as an LLM would (SUMMARY, RATIONALE,
then the whole new chunk or SEARCH/REPLACE blocks), so the rest of the pipeline
cannot tell the difference.

Known edits (``KINDS``): perturbations of the hyperparameters in a config block
(learning rate, warmup, min-lr ratio, weight decay, betas, dropout, batch size,
width, heads and depth within a bound, gradient clip), and code transformations
from the literature where their pattern is found: ReLU^2 or SiLU or SwiGLU MLP,
RMSNorm, QK-norm, rotary position embeddings, an untied or zero-initialised
output head, zero-initialised residual projections, logit soft-capping, parallel
attention/MLP blocks, and linear or warmup-stable-decay lr schedules.

Repair prompts are answered by going back to the chunk under ``### ORIGINAL``.
"""

from __future__ import annotations

import ast
import difflib
import random
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from darwin_bot.llm.base import Completion, Message
from darwin_bot.mutation.prompts import section, task


@dataclass(frozen=True)
class Edit:
    """One proposed edit: the new chunk text and why."""

    kind: str
    summary: str
    rationale: str
    text: str


@dataclass(frozen=True)
class HeuristicCall:
    """What the backend did for one prompt (for tests and benchmarks)."""

    task: str
    chunk: str
    kind: str  # an entry of KINDS, "revert", or "none"


Transform = Callable[[str, "random.Random", set[str]], "Edit | None"]

# ----------------------------------------------------------------------------- helpers


def _parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except SyntaxError:
        return None


def _offsets(text: str) -> list[int]:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _span(text: str, node: ast.AST) -> tuple[int, int]:
    starts = _offsets(text)
    a = starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
    b = starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
    return a, b


def _splice(text: str, edits: list[tuple[int, int, str]]) -> str:
    for a, b, new in sorted(edits, reverse=True):
        text = text[:a] + new + text[b:]
    return text


def _src(text: str, node: ast.AST) -> str:
    a, b = _span(text, node)
    return text[a:b]


def _callee(call: ast.Call) -> str:
    f = call.func
    if isinstance(f, ast.Attribute):
        return f.attr
    if isinstance(f, ast.Name):
        return f.id
    return ""


def _functions(tree: ast.Module, name: str) -> list[ast.FunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]


def _insert_before(text: str, stmt: ast.stmt, lines: list[str]) -> str:
    starts = _offsets(text)
    pad = " " * stmt.col_offset
    block = "".join(pad + ln + "\n" for ln in lines)
    at = starts[stmt.lineno - 1]
    return text[:at] + block + text[at:]


def _stmt_containing(body: list[ast.stmt], pred: Callable[[ast.AST], bool]) -> ast.stmt | None:
    for st in body:
        if any(pred(n) for n in ast.walk(st)):
            return st
    return None


def _fmt(old: object, new: float) -> str:
    if isinstance(old, int):
        return str(int(new))
    s = f"{new:.3g}"
    return s if any(c in s for c in ".e") else s + ".0"


# ----------------------------------------------------------------------------- hyperparameters

# name -> (rule, why); a rule maps (value, its context, rng) to a new value or None
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


def _hparam_sites(tree: ast.Module) -> list[tuple[str, ast.Constant, int]]:
    """(name, constant node, context id) for every numeric constant tied to a known name."""
    sites: list[tuple[str, ast.Constant, int]] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            name = node.targets[0].id
            if name in HPARAMS and not isinstance(node.value, ast.Call):
                for c in ast.walk(node.value):
                    if _numeric(c):
                        sites.append((name, c, 0))  # type: ignore[arg-type]
        elif isinstance(node, ast.Call) and _callee(node) == "dict":
            for kw in node.keywords:
                if kw.arg in HPARAMS and _numeric(kw.value):
                    sites.append((kw.arg, kw.value, id(node)))  # type: ignore[arg-type]
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=False):
                if isinstance(k, ast.Constant) and k.value in HPARAMS and _numeric(v):
                    sites.append((k.value, v, id(node)))  # type: ignore[arg-type]
    return sites


def _numeric(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def hparam_edit(text: str, rng: random.Random, _names: set[str]) -> Edit | None:
    tree = _parse(text)
    if tree is None or any(isinstance(st, (ast.FunctionDef, ast.ClassDef)) for st in tree.body):
        return None  # only a config block: a dict inside a function is not a hyperparameter
    sites = _hparam_sites(tree)
    names = sorted({n for n, _, _ in sites})
    rng.shuffle(names)
    for name in names:
        rule, why = HPARAMS[name]
        contexts: dict[int, dict[str, float]] = {}
        for n, c, ctx in sites:
            contexts.setdefault(ctx, {})[n] = c.value  # type: ignore[assignment]
        sub = random.Random(rng.random())
        edits: list[tuple[int, int, str]] = []
        changes: list[str] = []
        for n, c, ctx in sites:
            if n != name:
                continue
            state = sub.getstate()  # every context gets the same draw: one coherent change
            new = rule(float(c.value), contexts[ctx], sub)  # type: ignore[arg-type]
            sub.setstate(state)
            if new is None:
                continue
            a, b = _span(text, c)
            edits.append((a, b, _fmt(c.value, new)))
            changes.append(f"{c.value} -> {_fmt(c.value, new)}")
        if edits:
            new_text = _splice(text, edits)
            shown = ", ".join(dict.fromkeys(changes))
            return Edit(f"hparam:{name}", f"Set {name} {shown}"[:72], f"{why}.", new_text)
    return None


# ----------------------------------------------------------------------------- code transformations


def _activation(kind: str, make: Callable[[str], str], why: str, title: str) -> Transform:
    def transform(text: str, _rng: random.Random, names: set[str]) -> Edit | None:
        tree = _parse(text)
        if tree is None or "torch" not in names:
            return None
        calls = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and _callee(n) == "gelu" and len(n.args) == 1
        ]
        if not calls:
            return None
        edits = [(*_span(text, c), make(_src(text, c.args[0]))) for c in calls]
        return Edit(kind, title, why, _splice(text, edits))

    return transform


relu2 = _activation(
    "relu2_mlp",
    lambda a: f"torch.relu({a}).square()",
    "ReLU squared (So et al. 2021, Primer) trains faster than GELU in small GPTs (modded-nanogpt uses it).",
    "Use ReLU^2 instead of GELU in the MLP",
)
silu = _activation(
    "silu_mlp",
    lambda a: f"torch.nn.functional.silu({a})",
    "SiLU is smooth like GELU but cheaper to compute, a small MFU gain at equal quality.",
    "Use SiLU instead of GELU in the MLP",
)


def swiglu(text: str, _rng: random.Random, names: set[str]) -> Edit | None:
    tree = _parse(text)
    if tree is None or not {"nn", "torch"} <= names or len(tree.body) != 1:
        return None
    cls = tree.body[0]
    if not isinstance(cls, ast.ClassDef) or "c_fc" not in text or "gelu" not in text.lower():
        return None
    if not all(s in text for s in ("config.n_embd", "config.bias", "config.dropout", "c_proj")):
        return None
    new = f'''class {cls.name}(nn.Module):
    """SwiGLU feed-forward: silu(x W_gate) * (x W_value), projected back.

    The hidden width is 2/3 of 4x so the parameter count stays that of the GELU MLP.
    """

    def __init__(self, config):
        super().__init__()
        hidden = 4 * config.n_embd * 2 // 3
        self.c_fc = nn.Linear(config.n_embd, 2 * hidden, bias=config.bias)  # gate and value
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        gate, value = self.c_fc(x).chunk(2, dim=-1)  # each (B, T, hidden)
        x = torch.nn.functional.silu(gate) * value
        return self.dropout(self.c_proj(x))  # (B, T, C)
'''
    return Edit(
        "swiglu_mlp",
        "Replace the GELU MLP with SwiGLU",
        "Gated linear units (Shazeer 2020) beat GELU MLPs at equal parameters in LLaMA-style models.",
        new,
    )


def rmsnorm(text: str, _rng: random.Random, names: set[str]) -> Edit | None:
    tree = _parse(text)
    if tree is None or not {"nn", "torch"} <= names or len(tree.body) != 1:
        return None
    cls = tree.body[0]
    if not isinstance(cls, ast.ClassDef) or "layer_norm" not in text:
        return None
    init = _functions(tree, "__init__")
    if not init or len(init[0].args.args) != 3:
        return None
    dim, bias = init[0].args.args[1].arg, init[0].args.args[2].arg
    new = f'''class {cls.name}(nn.Module):
    """RMSNorm (Zhang & Sennrich 2019) under the old name: scale by 1/RMS, no mean subtraction."""

    def __init__(self, {dim}, {bias}):
        super().__init__()
        self.weight = nn.Parameter(torch.ones({dim}))
        self.bias = nn.Parameter(torch.zeros({dim})) if {bias} else None

    def forward(self, x):
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)  # unit RMS per position
        x = x * self.weight
        return x + self.bias if self.bias is not None else x
'''
    return Edit(
        "rmsnorm",
        "Use RMSNorm instead of LayerNorm",
        "RMSNorm drops the mean subtraction: fewer ops, same quality in LLaMA/T5-style models.",
        new,
    )


def _before_attention(
    text: str,
    marker: str,
    lines: Callable[[str, str], list[str]],
    kind: str,
    summary: str,
    why: str,
    names: set[str],
) -> Edit | None:
    tree = _parse(text)
    if tree is None or "torch" not in names or marker in text:
        return None
    for fn in _functions(tree, "forward"):
        is_sdpa = lambda n: isinstance(n, ast.Call) and _callee(n) == "scaled_dot_product_attention"  # noqa: E731
        st = _stmt_containing(fn.body, is_sdpa)
        if st is None:
            continue
        call = next(n for n in ast.walk(st) if is_sdpa(n))
        if len(call.args) < 2 or not all(isinstance(a, ast.Name) for a in call.args[:2]):
            continue
        q, k = call.args[0].id, call.args[1].id  # type: ignore[attr-defined]
        return Edit(kind, summary, why, _insert_before(text, st, lines(q, k)))
    return None


def qk_norm(text: str, _rng: random.Random, names: set[str]) -> Edit | None:
    def lines(q: str, k: str) -> list[str]:
        return [
            "# QK-norm: unit-RMS queries and keys bound the attention logits",
            f"{q} = {q} * torch.rsqrt({q}.pow(2).mean(-1, keepdim=True) + 1e-6)",
            f"{k} = {k} * torch.rsqrt({k}.pow(2).mean(-1, keepdim=True) + 1e-6)",
        ]

    return _before_attention(
        text,
        "QK-norm",
        lines,
        "qk_norm",
        "Normalise queries and keys (QK-norm)",
        "QK-norm (Dehghani et al. 2023) keeps attention logits bounded, which allows higher learning rates.",
        names,
    )


def rotary(text: str, _rng: random.Random, names: set[str]) -> Edit | None:
    def rot(u: str) -> str:
        a, b, rest = (
            f"{u}[..., :rope_half]",
            f"{u}[..., rope_half : 2 * rope_half]",
            f"{u}[..., 2 * rope_half :]",
        )
        return f"{u} = torch.cat(({a} * rope_cos - {b} * rope_sin, {a} * rope_sin + {b} * rope_cos, {rest}), dim=-1)"

    def lines(q: str, k: str) -> list[str]:
        return [
            "# RoPE: rotate each (q, k) pair of channels by a position-dependent angle",
            f"rope_half = {q}.size(-1) // 2",
            f"rope_freq = 1.0 / (10000.0 ** (torch.arange(rope_half, device={q}.device, dtype=torch.float32) / max(rope_half, 1)))",
            f"rope_angle = torch.outer(torch.arange({q}.size(-2), device={q}.device, dtype=torch.float32), rope_freq)  # (T, hs/2)",
            f"rope_cos, rope_sin = rope_angle.cos().to({q}.dtype), rope_angle.sin().to({q}.dtype)",
            rot(q),
            rot(k),
        ]

    return _before_attention(
        text,
        "RoPE",
        lines,
        "rotary",
        "Add rotary position embeddings to attention",
        "Rotary embeddings (Su et al. 2021) encode relative position in q.k and generalise better than learned absolute positions.",
        names,
    )


def _init_body(text: str) -> tuple[ast.Module, ast.FunctionDef] | None:
    tree = _parse(text)
    if tree is None:
        return None
    inits = [f for f in _functions(tree, "__init__") if "lm_head" in ast.unparse(f)]
    return (tree, inits[0]) if inits else None


def _tie_stmt(fn: ast.FunctionDef) -> ast.stmt | None:
    for st in ast.walk(fn):
        if isinstance(st, ast.Assign) and len(st.targets) == 1:
            t, v = ast.unparse(st.targets[0]), ast.unparse(st.value)
            if ("wte.weight" in t and "lm_head.weight" in v) or (
                "lm_head.weight" in t and "wte.weight" in v
            ):
                return st
    return None


def untie_head(text: str, _rng: random.Random, _names: set[str]) -> Edit | None:
    got = _init_body(text)
    if got is None:
        return None
    st = _tie_stmt(got[1])
    if st is None:
        return None
    a, b = _span(text, st)
    new = _splice(text, [(a, b, "# untied: the output head keeps its own weights")])
    return Edit(
        "untie_head",
        "Untie the output head from the token embeddings",
        "A separate output matrix lets input and output embeddings specialise; small models often gain.",
        new,
    )


def zero_head(text: str, _rng: random.Random, names: set[str]) -> Edit | None:
    got = _init_body(text)
    if got is None or "torch" not in names or "zeros_(self.lm_head.weight)" in text:
        return None
    _, fn = got
    tie = _tie_stmt(fn)
    edits: list[tuple[int, int, str]] = []
    if tie is not None:
        a, b = _span(text, tie)
        edits.append((a, b, "# untied: a zero-initialised head must not zero the embeddings"))
    last = fn.body[-1]
    starts = _offsets(text)
    at = starts[last.end_lineno]  # type: ignore[operator]
    pad = " " * last.col_offset
    line = f"{pad}torch.nn.init.zeros_(self.lm_head.weight)  # zero-initialised output head: uniform first predictions\n"
    edits.append((at, at, line))
    return Edit(
        "zero_init_head",
        "Zero-initialise an untied output head",
        "A zero output head starts at the uniform distribution and avoids large early logits (modded-nanogpt).",
        _splice(text, edits),
    )


def zero_proj(text: str, _rng: random.Random, _names: set[str]) -> Edit | None:
    got = _init_body(text)
    if got is None:
        return None
    for loop in ast.walk(got[1]):
        if isinstance(loop, ast.For) and "c_proj" in ast.unparse(loop):
            for c in ast.walk(loop):
                if isinstance(c, ast.Call) and _callee(c) == "normal_" and c.args:
                    prefix = ast.unparse(c.func).rsplit(".", 1)[0]
                    new = _splice(
                        text, [(*_span(text, c), f"{prefix}.zeros_({_src(text, c.args[0])})")]
                    )
                    return Edit(
                        "zero_init_proj",
                        "Zero-initialise the residual projections",
                        "Zero-init output projections make each block start as the identity (ReZero/modded-nanogpt), which speeds early training.",
                        new,
                    )
    return None


def softcap(text: str, _rng: random.Random, names: set[str]) -> Edit | None:
    tree = _parse(text)
    if tree is None or "torch" not in names or "tanh" in text:
        return None
    for fn in _functions(tree, "forward"):
        for st in ast.walk(fn):
            if (
                isinstance(st, ast.Assign)
                and len(st.targets) == 1
                and isinstance(st.targets[0], ast.Name)
                and st.targets[0].id == "logits"
                and isinstance(st.value, ast.Call)
                and _callee(st.value) == "lm_head"
            ):
                value = _src(text, st.value)
                new = _splice(
                    text, [(*_span(text, st.value), f"30.0 * torch.tanh({value} / 30.0)")]
                )
                return Edit(
                    "logit_softcap",
                    "Soft-cap the output logits at 30",
                    "A tanh soft-cap (Gemma 2) stops logits from growing without bound and stabilises training.",
                    new,
                )
    return None


def parallel_block(text: str, _rng: random.Random, _names: set[str]) -> Edit | None:
    tree = _parse(text)
    if tree is None:
        return None
    for fn in _functions(tree, "forward"):
        body = fn.body
        for s1, s2 in zip(body, body[1:], strict=False):
            p1, p2 = _residual(s1, "attn"), _residual(s2, "mlp")
            if p1 and p2 and p1 == p2:
                var = p1
                a = _span(text, s1)[0]
                b = _span(text, s2)[1]
                attn = _src(text, s1.value.right)  # type: ignore[attr-defined]
                mlp = _src(text, s2.value.right)  # type: ignore[attr-defined]
                new = _splice(
                    text,
                    [(a, b, f"{var} = {var} + {attn} + {mlp}  # attention and MLP in parallel")],
                )
                return Edit(
                    "parallel_block",
                    "Run attention and MLP in parallel in each block",
                    "Parallel blocks (GPT-J, PaLM) read both branches from the same input: fewer sequential steps, similar quality.",
                    new,
                )
    return None


def _residual(st: ast.stmt, attr: str) -> str:
    """``x`` when ``st`` is ``x = x + self.<attr>(...)``; else ''."""
    if not (
        isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name)
    ):
        return ""
    v = st.value
    var = st.targets[0].id
    if (
        isinstance(v, ast.BinOp)
        and isinstance(v.op, ast.Add)
        and isinstance(v.left, ast.Name)
        and v.left.id == var
        and isinstance(v.right, ast.Call)
        and _callee(v.right) == attr
    ):
        return var
    return ""


def _schedule(kind: str, summary: str, why: str, tail: list[str]) -> Transform:
    def transform(text: str, _rng: random.Random, _names: set[str]) -> Edit | None:
        tree = _parse(text)
        if tree is None or len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
            return None
        fn = tree.body[0]
        params = [a.arg for a in fn.args.args]
        used = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
        if (
            "lr" not in fn.name
            or len(params) != 2
            or not {"learning_rate", "min_lr", "warmup_iters"} <= used
        ):
            return None
        if kind in text:
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
        return Edit(f"schedule:{kind}", summary, why, "\n".join(body) + "\n")

    return transform


linear_schedule = _schedule(
    "linear",
    "Decay the learning rate linearly instead of cosine",
    "Linear decay to a floor matches or beats cosine in short budgets (Defazio et al. 2023).",
    ["return min_lr + (1.0 - p) * (learning_rate - min_lr)"],
)
wsd_schedule = _schedule(
    "warmup-stable-decay",
    "Hold the peak lr, then decay over the last 20%",
    "Warmup-stable-decay (MiniCPM) spends most steps at the peak rate and anneals only at the end.",
    [
        "if p < 0.8:",
        "    return learning_rate",
        "return min_lr + (1.0 - p) / 0.2 * (learning_rate - min_lr)",
    ],
)

TRANSFORMS: tuple[Transform, ...] = (
    relu2,
    silu,
    swiglu,
    rmsnorm,
    qk_norm,
    rotary,
    untie_head,
    zero_head,
    zero_proj,
    softcap,
    parallel_block,
    linear_schedule,
    wsd_schedule,
    hparam_edit,
)
KINDS: tuple[str, ...] = (
    "relu2_mlp",
    "silu_mlp",
    "swiglu_mlp",
    "rmsnorm",
    "qk_norm",
    "rotary",
    "untie_head",
    "zero_init_head",
    "zero_init_proj",
    "logit_softcap",
    "parallel_block",
    "schedule:linear",
    "schedule:warmup-stable-decay",
    *(f"hparam:{n}" for n in HPARAMS),
)


def imported_names(imports: str) -> set[str]:
    """Names an import block binds (``import torch.nn as nn`` -> nn, ``import torch`` -> torch)."""
    tree = _parse(textwrap.dedent(imports))
    out: set[str] = set()
    if tree is None:
        return out
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out.update(a.asname or a.name.split(".")[0] for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            out.update(a.asname or a.name for a in n.names)
    return out


def proposals(chunk_text: str, names: set[str], rng: random.Random) -> list[Edit]:
    """Every known edit that applies to ``chunk_text`` (may be empty)."""
    indent = chunk_text[: len(chunk_text) - len(chunk_text.lstrip())].rsplit("\n", 1)[-1]
    body = textwrap.dedent(chunk_text)
    out: list[Edit] = []
    for t in TRANSFORMS:
        e = t(body, random.Random(rng.random()), names)
        if e is not None and e.text.strip() != body.strip():
            text = (
                e.text
                if not indent
                else "".join(
                    indent + ln if ln.strip() else ln for ln in e.text.splitlines(keepends=True)
                )
            )
            out.append(Edit(e.kind, e.summary, e.rationale, text))
    return out


def _search_replace(old: str, new: str) -> str | None:
    """SEARCH/REPLACE blocks turning ``old`` into ``new`` (None if a block would be ambiguous)."""
    a, b = old.splitlines(), new.splitlines()
    blocks: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i1 == i2:  # pure insertion: anchor on the line above
            if i1 == 0:
                return None
            i1 -= 1
            j1 -= 1
        search = "\n".join(a[i1:i2])
        if old.count(search) != 1:
            return None
        blocks.append(
            f"<<<<<<< SEARCH\n{search}\n=======\n" + "\n".join(b[j1:j2]) + "\n>>>>>>> REPLACE"
        )
    return "\n".join(blocks)


class HeuristicLLM:
    """``LLM`` that proposes known edits offline; ``history`` records what it did."""

    def __init__(self, seed: int = 0, *, model: str = "heuristic") -> None:
        self.name = "heuristic"
        self.model = model
        self.seed = seed
        self.calls = 0
        self.history: list[HeuristicCall] = []

    def complete(self, messages: list[Message]) -> Completion:
        prompt = "\n".join(m["content"] for m in messages if m["role"] != "assistant")
        self.calls += 1
        got = section(prompt, "CHUNK")
        if got is None:
            return self._reply("", "none", "NO CHANGE: the prompt carries no '### CHUNK' block")
        chunk_id, text = got
        text = text if text.endswith("\n") else text + "\n"
        if task(prompt) == "repair":
            original = section(prompt, "ORIGINAL")
            if original is None or original[1].strip() == text.strip():
                return self._reply(chunk_id, "none", "NO CHANGE: nothing to go back to")
            body = original[1] if original[1].endswith("\n") else original[1] + "\n"
            reply = (
                f"SUMMARY: Revert {chunk_id.split('::')[-1]} to the parent's version\n"
                "RATIONALE: the edit failed; the parent's chunk is known to work.\n"
                f"```python\n{body}```\n"
            )
            return self._reply(chunk_id, "revert", reply)
        imports = section(prompt, "IMPORTS")
        names = imported_names(imports[1]) if imports else set()
        rng = random.Random(f"{self.seed}:{self.calls}:{chunk_id}")
        options = proposals(text, names, rng)
        if not options:
            return self._reply(chunk_id, "none", f"NO CHANGE: no known edit applies to {chunk_id}")
        edit = rng.choice(options)
        head = f"SUMMARY: {edit.summary}\nRATIONALE: {edit.rationale}\n"
        blocks = _search_replace(text, edit.text) if edit.kind.startswith("hparam:") else None
        body = blocks if blocks else f"```python\n{edit.text}```"
        return self._reply(chunk_id, edit.kind, head + body + "\n")

    def _reply(self, chunk: str, kind: str, text: str) -> Completion:
        self.history.append(HeuristicCall("repair" if kind == "revert" else "mutate", chunk, kind))
        return Completion(text=text, model=self.model, prompt_tokens=0, completion_tokens=0)
