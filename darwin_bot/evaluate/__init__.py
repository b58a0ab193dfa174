"""The trusted evaluator: sandboxed training, trusted scoring, MFU.

Public entry points (the contract other parts build on)::

    evaluate_tree(tree: Path, opts: EvalOptions) -> EvalResult
    evaluate_repeats(tree: Path, opts: EvalOptions, repeats: int) -> list[EvalResult]
    tree_hash(tree: Path, paths: Sequence[str] = ("seed/",)) -> str
    EVALUATOR_VERSION: str

``EvalOptions.smoke = True`` runs a few iterations on a tiny slice of the
training data and scores a few windows: "it trained, the model exports as a
graph the scorer runs, and it is causal": the mutation pipeline's gate before
full training.
"""

from darwin_bot.evaluate.devices import resolve_device
from darwin_bot.evaluate.harness import (
    EVALUATOR_VERSION,
    EvalOptions,
    evaluate_repeats,
    evaluate_tree,
    tree_hash,
)
from darwin_bot.evaluate.sandbox import (
    Limits,
    Mount,
    SandboxRun,
    resolve_backend,
    run_sandboxed,
    scrub_env,
)
from darwin_bot.program.darwin import EVAL_CONTEXT

__all__ = [
    "EVALUATOR_VERSION",
    "EVAL_CONTEXT",
    "EvalOptions",
    "Limits",
    "Mount",
    "SandboxRun",
    "evaluate_repeats",
    "evaluate_tree",
    "resolve_backend",
    "resolve_device",
    "run_sandboxed",
    "scrub_env",
    "tree_hash",
]
