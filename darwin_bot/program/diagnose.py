"""A smoke test's result, told part by part: what ``darwin check`` and ``darwin evaluate`` print.

The static parts (files, interfaces) come from the contract; the dynamic ones
from where the harness's smoke evaluation stopped, which its reason says:

====================  =====================================================
reason starts with    the part that is missing
====================  =====================================================
the program breaks    (a static part; already listed)
training ran past     training: it ran past the smoke time limit
train.py exited       training: the last line of its log is the hint
train.py wrote no     output: the contract's weights file was not written
bad training report   output: the report (train.json / ckpt.pt) is unusable
the model cannot be  model exports: load() or torch.export failed (the reason says why)
the exported graph    model exports: the graph uses what the scorer does not run
scoring ran past      model exports: running the graph hung
scoring failed        model exports: running the graph crashed
(status rejected)     logits: wrong shape, not finite, or not causal
====================  =====================================================
"""

from __future__ import annotations

from pathlib import Path

from darwin_bot.core import EvalResult, Status
from darwin_bot.program.base import Contract, Part

STAGES = (
    "training",
    "output",
    "model loads and exports as a graph",
    "logits [B, T, vocab], causal",
)


def _names(contract: Contract) -> tuple[str, ...]:
    return (STAGES[0], f"output {contract.model_file}", *STAGES[2:])


# reason prefix -> index into STAGES of the first part that failed
_PREFIXES: tuple[tuple[str, int], ...] = (
    ("training ran past", 0),
    ("train.py exited", 0),
    ("train.py wrote no", 1),
    ("bad training report", 1),
    ("the model cannot be exported", 2),
    ("the exported graph", 2),
    ("scoring ran past", 2),
    ("scoring failed", 2),
)


def _last_error(log: str) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip() and not ln.startswith("---")]
    errors = [ln for ln in lines if "Error" in ln or "error:" in ln or ln.startswith("nanogpt:")]
    return (errors or lines or [""])[-1][:240]


def _fix(contract: Contract, stage: int, result: EvalResult) -> str:
    hint = _last_error(result.log_tail)
    if stage == 0:
        how = (
            f"it must run as `python {contract.train_path} ...` from its folder"
            if contract.kind == "nanogpt"
            else f"it must run as `python {contract.train_path}`"
        )
        return f"{result.reason}{f' ({hint})' if hint else ''}; {how}"
    if stage == 2:
        return f"{result.reason}{f': {hint}' if hint else ''}"
    return result.reason


def dynamic_parts(contract: Contract, result: EvalResult) -> list[Part]:
    """One part per stage of the smoke run: ok up to where it stopped, then what to fix."""
    names = _names(contract)
    if result.status == Status.OK:
        return [Part(name, True) for name in names]
    if result.reason.startswith("the program breaks its contract"):
        return [Part(names[0], False, "not run: fix the parts above first")]
    stage = next((i for prefix, i in _PREFIXES if result.reason.startswith(prefix)), None)
    if stage is None and result.status == Status.REJECTED:
        stage = 3
    if stage is None:  # a reason this table does not know: report it as is
        return [Part("smoke test", False, f"{result.status}: {result.reason}")]
    parts = [Part(name, True) for name in names[:stage]]
    return [*parts, Part(names[stage], False, _fix(contract, stage, result))]


def guidance(contract: Contract, tree: Path, preset: str, result: EvalResult) -> list[Part]:
    """Every part of the contract for ``tree``, given the result of evaluating it."""
    static = contract.static_parts(tree, preset)
    return [*static, *dynamic_parts(contract, result)]


def guidance_text(contract: Contract, tree: Path, preset: str, result: EvalResult) -> str:
    """The missing parts as ``darwin check`` prints them ('' when the result shows none)."""
    if result.status == Status.OK:
        return ""
    misses = [p.line() for p in guidance(contract, tree, preset, result) if not p.ok]
    if not misses:
        return ""
    return "\n".join(["--- contract (see 'darwin check') ---", *misses])


def preflight(contract: Contract, tree: Path, preset: str) -> None:
    """ConfigError listing the static parts ``tree`` misses (``darwin run`` calls it first)."""
    from darwin_bot.errors import ConfigError

    misses = [p.line() for p in contract.static_parts(tree, preset) if not p.ok]
    if misses:
        raise ConfigError(
            f"the program in {tree} breaks the {contract.kind} contract: "
            f"{'; '.join(misses)}; run 'darwin check {tree}'"
        )
