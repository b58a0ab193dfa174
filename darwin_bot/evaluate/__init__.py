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

from typing import TYPE_CHECKING

from darwin_bot import lazy_surface

if TYPE_CHECKING:
    from darwin_bot.evaluate.devices import DevicePool, resolve_device
    from darwin_bot.evaluate.harness import (
        EVALUATOR_VERSION,
        EvalOptions,
        evaluate_repeats,
        evaluate_tree,
    )
    from darwin_bot.evaluate.importable import missing_note, not_installed_note, split_importable
    from darwin_bot.evaluate.provenance import unverified_reason
    from darwin_bot.evaluate.sandbox import resolve_backend, run_sandboxed
    from darwin_bot.evaluate.sandbox.env import scrub_env
    from darwin_bot.evaluate.sandbox.proc import stop_all
    from darwin_bot.evaluate.sandbox.types import Limits, Mount, SandboxRun
    from darwin_bot.evaluate.scoring import WINDOW_SEED, choose_windows
    from darwin_bot.evaluate.scratch import tree_hash
    from darwin_bot.evaluate.windows import (
        current_windows,
        of_generation,
        read_secret,
        required_secret,
    )


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "DevicePool",
    "EVALUATOR_VERSION",
    "EvalOptions",
    "Limits",
    "Mount",
    "SandboxRun",
    "WINDOW_SEED",
    "choose_windows",
    "current_windows",
    "evaluate_repeats",
    "evaluate_tree",
    "missing_note",
    "not_installed_note",
    "of_generation",
    "read_secret",
    "required_secret",
    "resolve_backend",
    "resolve_device",
    "run_sandboxed",
    "scrub_env",
    "split_importable",
    "stop_all",
    "tree_hash",
    "unverified_reason",
]
_HOMES = {
    "DevicePool": ".devices",
    "EVALUATOR_VERSION": ".harness",
    "EvalOptions": ".harness",
    "Limits": ".sandbox.types",
    "Mount": ".sandbox.types",
    "SandboxRun": ".sandbox.types",
    "WINDOW_SEED": ".scoring",
    "choose_windows": ".scoring",
    "current_windows": ".windows",
    "evaluate_repeats": ".harness",
    "evaluate_tree": ".harness",
    "missing_note": ".importable",
    "not_installed_note": ".importable",
    "of_generation": ".windows",
    "read_secret": ".windows",
    "required_secret": ".windows",
    "resolve_backend": ".sandbox",
    "resolve_device": ".devices",
    "run_sandboxed": ".sandbox",
    "scrub_env": ".sandbox.env",
    "split_importable": ".importable",
    "stop_all": ".sandbox.proc",
    "tree_hash": ".scratch",
    "unverified_reason": ".provenance",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
