"""Known edits to the model's blocks: MLP activation, normalisation, attention, block layout."""

from __future__ import annotations

import ast
import random
from collections.abc import Callable

from darwin_bot.llm.offline.ast_tools import (
    callee,
    functions,
    insert_before,
    parse,
    span,
    splice,
    src,
    stmt_containing,
    walk,
)
from darwin_bot.llm.offline.registry import transform


def _gelu_to(make: Callable[[str], str]) -> Callable[[str, random.Random, set[str]], str | None]:
    def apply(text: str, _rng: random.Random, names: set[str]) -> str | None:
        tree = parse(text)
        if tree is None or "torch" not in names:
            return None
        calls = [
            n
            for n in walk(tree)
            if isinstance(n, ast.Call) and callee(n) == "gelu" and len(n.args) == 1
        ]
        if not calls:
            return None
        return splice(text, [(*span(text, c), make(src(text, c.args[0]))) for c in calls])

    return apply


transform(
    "relu2_mlp",
    "Use ReLU^2 instead of GELU in the MLP",
    "ReLU squared (So et al. 2021, Primer) trains faster than GELU in small GPTs (modded-nanogpt uses it).",
)(_gelu_to(lambda a: f"torch.relu({a}).square()"))
transform(
    "silu_mlp",
    "Use SiLU instead of GELU in the MLP",
    "SiLU is smooth like GELU but cheaper to compute, a small MFU gain at equal quality.",
)(_gelu_to(lambda a: f"torch.nn.functional.silu({a})"))


@transform(
    "swiglu_mlp",
    "Replace the GELU MLP with SwiGLU",
    "Gated linear units (Shazeer 2020) beat GELU MLPs at equal parameters in LLaMA-style models.",
)
def swiglu(text: str, _rng: random.Random, names: set[str]) -> str | None:
    tree = parse(text)
    if tree is None or not {"nn", "torch"} <= names or len(tree.body) != 1:
        return None
    cls = tree.body[0]
    if not isinstance(cls, ast.ClassDef) or "c_fc" not in text or "gelu" not in text.lower():
        return None
    if not all(s in text for s in ("config.n_embd", "config.bias", "config.dropout", "c_proj")):
        return None
    return f'''class {cls.name}(nn.Module):
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


@transform(
    "rmsnorm",
    "Use RMSNorm instead of LayerNorm",
    "RMSNorm drops the mean subtraction: fewer ops, same quality in LLaMA/T5-style models.",
)
def rmsnorm(text: str, _rng: random.Random, names: set[str]) -> str | None:
    tree = parse(text)
    if tree is None or not {"nn", "torch"} <= names or len(tree.body) != 1:
        return None
    cls = tree.body[0]
    if not isinstance(cls, ast.ClassDef) or "layer_norm" not in text:
        return None
    init = functions(tree, "__init__")
    if not init or len(init[0].args.args) != 3:
        return None
    dim, bias = init[0].args.args[1].arg, init[0].args.args[2].arg
    return f'''class {cls.name}(nn.Module):
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


def _before_attention(
    text: str, marker: str, lines: Callable[[str, str], list[str]], names: set[str]
) -> str | None:
    """``lines(q, k)`` inserted above the ``scaled_dot_product_attention(q, k, ...)`` statement."""
    tree = parse(text)
    if tree is None or "torch" not in names or marker in text:
        return None
    for fn in functions(tree, "forward"):
        is_sdpa = lambda n: isinstance(n, ast.Call) and callee(n) == "scaled_dot_product_attention"  # noqa: E731
        st = stmt_containing(fn.body, is_sdpa)
        if st is None:
            continue
        call = next(n for n in walk(st) if is_sdpa(n))
        if len(call.args) < 2 or not all(isinstance(a, ast.Name) for a in call.args[:2]):
            continue
        q, k = call.args[0].id, call.args[1].id  # type: ignore[attr-defined]
        return insert_before(text, st, lines(q, k))
    return None


@transform(
    "qk_norm",
    "Normalise queries and keys (QK-norm)",
    "QK-norm (Dehghani et al. 2023) keeps attention logits bounded, which allows higher learning rates.",
)
def qk_norm(text: str, _rng: random.Random, names: set[str]) -> str | None:
    def lines(q: str, k: str) -> list[str]:
        return [
            "# QK-norm: unit-RMS queries and keys bound the attention logits",
            f"{q} = {q} * torch.rsqrt({q}.pow(2).mean(-1, keepdim=True) + 1e-6)",
            f"{k} = {k} * torch.rsqrt({k}.pow(2).mean(-1, keepdim=True) + 1e-6)",
        ]

    return _before_attention(text, "QK-norm", lines, names)


@transform(
    "rotary",
    "Add rotary position embeddings to attention",
    "Rotary embeddings (Su et al. 2021) encode relative position in q.k and generalise better than learned absolute positions.",
)
def rotary(text: str, _rng: random.Random, names: set[str]) -> str | None:
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

    return _before_attention(text, "RoPE", lines, names)


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
        and callee(v.right) == attr
    ):
        return var
    return ""


@transform(
    "parallel_block",
    "Run attention and MLP in parallel in each block",
    "Parallel blocks (GPT-J, PaLM) read both branches from the same input: fewer sequential steps, similar quality.",
)
def parallel_block(text: str, _rng: random.Random, _names: set[str]) -> str | None:
    tree = parse(text)
    if tree is None:
        return None
    for fn in functions(tree, "forward"):
        for s1, s2 in zip(fn.body, fn.body[1:], strict=False):
            var = _residual(s1, "attn")
            if var and var == _residual(s2, "mlp"):
                attn = src(text, s1.value.right)  # type: ignore[attr-defined]
                mlp = src(text, s2.value.right)  # type: ignore[attr-defined]
                line = f"{var} = {var} + {attn} + {mlp}  # attention and MLP in parallel"
                return splice(text, [(span(text, s1)[0], span(text, s2)[1], line)])
    return None
