"""The ``darwin`` contract: the seed's own, unchanged (see DESIGN.md, "Contracts").

``python seed/train.py`` from the tree root reads ``DARWIN_DATA``, ``DARWIN_OUT``,
``DARWIN_MAX_ITERS`` or ``DARWIN_TIME_BUDGET_S``, ``DARWIN_SEED`` and
``DARWIN_DEVICE`` (the harness sets them), writes ``$DARWIN_OUT/model.pt`` and
``$DARWIN_OUT/train.json``; ``seed/model.py`` has ``load(path, device)``. For the
trusted learning curve it saves the model in the same format to
``$DARWIN_OUT/checkpoint.pt`` (written elsewhere, then renamed over it) at each
fraction of the budget ``DARWIN_CURVE`` lists.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from darwin_bot.core import Budget
from darwin_bot.errors import ConfigError
from darwin_bot.program.base import (
    ContractKind,
    Launch,
    LaunchRequest,
    Part,
    TrainReport,
    function_args,
    n_positional,
    parse,
    top_level_names,
)

DARWIN_RULES = """\
- Keep the contract of seed/: train.py reads DARWIN_DATA, DARWIN_OUT, DARWIN_MAX_ITERS or
  DARWIN_TIME_BUDGET_S, DARWIN_SEED and DARWIN_DEVICE, and writes $DARWIN_OUT/model.pt and
  $DARWIN_OUT/train.json; model.py keeps load(path, device) -> module whose forward(idx[B, T])
  returns logits [B, T, vocab] that depend only on positions <= t (causal). train.py also saves
  the model to $DARWIN_OUT/checkpoint.pt at each budget fraction DARWIN_CURVE lists (the trusted
  learning curve); the scorer runs those weights in the final model's graph, by their names.
- The scorer runs forward as a torch.export graph at [1, T]: keep it tensor operations only (no
  Python branches on the data, no .item()/numpy, no state kept between calls, no file reads)."""
EVAL_CONTEXT: dict[str, int] = {"tiny": 64, "paper": 256, "nanogpt": 256}


@dataclass(frozen=True)
class DarwinContract:
    train_path: str = "seed/train.py"
    model_path: str = "seed/model.py"
    kind: ContractKind = ContractKind.DARWIN
    model_file: str = "model.pt"
    curve_file: str = "checkpoint.pt"  # replaced at each fraction DARWIN_CURVE lists

    @property
    def required_files(self) -> tuple[str, ...]:
        return (self.train_path, self.model_path)

    @property
    def support_files(self) -> tuple[str, ...]:
        return ()

    def copy_paths(self, evolvable: tuple[str, ...]) -> tuple[str, ...]:
        return evolvable

    def static_parts(self, tree: Path, preset: str) -> list[Part]:
        parts = [_file_part(tree, rel) for rel in self.required_files]
        model = parse(tree / self.model_path) if (tree / self.model_path).is_file() else None
        if model is None:
            why = "cannot be parsed" if (tree / self.model_path).is_file() else "is missing"
            return [*parts, Part("model.load", False, f"{self.model_path} {why}")]
        args = function_args(model, "load")
        if args is None and "load" not in top_level_names(model):
            parts.append(
                Part(
                    "model.load",
                    False,
                    f"{self.model_path} has no load(path, device); "
                    "add one that returns the trained torch.nn.Module",
                )
            )
        elif args is not None and n_positional(args) < (2, False):
            parts.append(
                Part("model.load", False, f"{self.model_path}: load() must take (path, device)")
            )
        else:
            parts.append(Part("model.load", True, "load(path, device)"))
        return parts

    def launch(self, req: LaunchRequest, tree: Path) -> Launch:
        return Launch((self.train_path,))

    def curve_fractions(self, budget: Budget, asked: tuple[float, ...]) -> tuple[float, ...]:
        return asked  # train.py reads DARWIN_CURVE

    def stage_data(self, dest: Path) -> None:
        return None

    def output_problem(self, out: Path) -> str | None:
        if (out / self.model_file).is_file() and not (out / self.model_file).is_symlink():
            return None
        found = ", ".join(sorted(p.name for p in out.iterdir())[:8]) or "nothing"
        return (
            f"train.py wrote no {self.model_file} in $DARWIN_OUT (it wrote: {found}); "
            f"save the model to $DARWIN_OUT/{self.model_file}"
        )

    def read_report(self, out: Path, wall_s: float) -> TrainReport | None:
        return None  # the harness reads train.json itself

    def worker_args(self) -> list[str]:
        return []

    def eval_context(self, preset: str) -> int:
        if preset not in EVAL_CONTEXT:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(EVAL_CONTEXT)}")
        return EVAL_CONTEXT[preset]

    def rules(self) -> str:
        return DARWIN_RULES

    def check_edit(self, path: str, old: ast.Module, new: ast.Module) -> str | None:
        return None  # validate.REQUIRED_API already keeps load(path, device)


def _file_part(tree: Path, rel: str) -> Part:
    if (tree / rel).is_file():
        return Part(f"file {rel}", True)
    return Part(f"file {rel}", False, f"{tree / rel} is missing; the program needs it")
