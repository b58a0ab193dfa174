"""The contract between darwin-bot and the program under evolution.

A *contract* says how a training program is run and scored. The trusted side
(held-out windows, causality probes, the enforced budget, measured cost) is the
same for every contract; a contract only decides the parts that depend on how
the user's program is written:

- which files it needs (:attr:`Contract.required_files`) and which it reads
  but a mutation may not change (:attr:`Contract.support_files`);
- how training is launched (:meth:`Contract.launch`: argv and working folder);
- the data layout it reads (:meth:`Contract.stage_data`, after the harness has
  put ``train.bin`` and ``meta.json`` in the training data folder);
- the output to expect (:attr:`Contract.model_file`, :meth:`Contract.output_problem`,
  :meth:`Contract.read_report`), and the checkpoint saved at each fraction of the
  budget the harness asks for (:attr:`Contract.curve_file`, see ``evaluate/curve.py``);
- how the scoring worker builds the model (:meth:`Contract.worker_args`);
- what the mutation rules tell the LLM and what the validator keeps
  (:meth:`Contract.rules`, :meth:`Contract.check_edit`).

Two profiles ship: ``darwin`` (the seed's own contract, unchanged) and
``nanogpt`` (karpathy/nanoGPT's ``train.py``/``model.py``/``configurator.py``
as they are). ``darwin check`` prints one :class:`Part` per line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from darwin_bot.core import Budget


class ContractKind(StrEnum):
    DARWIN = "darwin"
    NANOGPT = "nanogpt"


@dataclass(frozen=True)
class Part:
    """One part of a contract as ``darwin check`` reports it: ok, or what to fix."""

    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'MISS'} {self.name}" + (
            f": {self.detail}" if self.detail else ""
        )


@dataclass(frozen=True)
class Launch:
    """How the harness starts training: ``python ARGV...`` in ``cwd`` (relative to the tree)."""

    argv: tuple[str, ...]
    cwd: str = "."
    env: tuple[tuple[str, str], ...] = ()

    def cwd_in(self, root: str) -> str:
        """The working folder under ``root`` (the tree as the sandbox sees it)."""
        return root if self.cwd in ("", ".") else f"{root.rstrip('/')}/{self.cwd}"


@dataclass(frozen=True)
class TrainReport:
    """What the run says it did (claims: the trusted side clamps and checks them)."""

    iterations: int
    tokens_seen: int
    train_seconds: float
    shape: dict[str, int]  # n_layer, n_head, n_embd, block_size


@dataclass(frozen=True)
class LaunchRequest:
    """What the harness knows when it starts training (paths as the sandbox sees them)."""

    budget: Budget
    seed: int
    device: str
    preset: str
    data: str
    out: str
    smoke: bool = False
    threads: int | None = None
    curve: tuple[float, ...] = ()  # budget fractions to save a checkpoint at (DARWIN_CURVE)


class Contract(Protocol):
    """One profile; every method is called by the harness, the worker, check or the validator."""

    kind: ContractKind
    train_path: str  # relative to the tree root
    model_path: str
    model_file: str  # the weights file training must write in its output folder
    curve_file: str  # the checkpoint it saves at each curve fraction (the harness copies it)

    @property
    def required_files(self) -> tuple[str, ...]: ...

    @property
    def support_files(self) -> tuple[str, ...]: ...

    def copy_paths(self, evolvable: tuple[str, ...]) -> tuple[str, ...]:
        """What the harness copies into the training sandbox (and hashes)."""
        ...

    def static_parts(self, tree: Path, preset: str) -> list[Part]:
        """Checks that need no run: files, and the interfaces the trusted side calls."""
        ...

    def launch(self, req: LaunchRequest, tree: Path) -> Launch: ...

    def curve_fractions(self, budget: Budget, asked: tuple[float, ...]) -> tuple[float, ...]:
        """The fractions of ``asked`` the program can save a checkpoint at under ``budget``."""
        ...

    def stage_data(self, dest: Path) -> None:
        """Add to the training data folder what the program reads besides train.bin/meta.json."""
        ...

    def output_problem(self, out: Path) -> str | None:
        """Why the output folder lacks what scoring needs (None when it has it)."""
        ...

    def read_report(self, out: Path, wall_s: float) -> TrainReport | None:
        """The run's report; None means the darwin train.json path of the harness."""
        ...

    def worker_args(self) -> list[str]: ...

    def eval_context(self, preset: str) -> int: ...

    def rules(self) -> str: ...

    def check_edit(self, path: str, old: ast.Module, new: ast.Module) -> str | None:
        """Why an edit of ``path`` breaks the contract (None when it keeps it)."""
        ...


# ---------------------------------------------------------------- AST helpers


def parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a module defines at top level: functions, classes, assignments, imports."""
    names: set[str] = set()
    for st in tree.body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(st.name)
        elif isinstance(st, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = st.targets if isinstance(st, ast.Assign) else [st.target]
            for t in targets:
                names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(st, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in st.names)
    return names


def function_args(tree: ast.Module, name: str) -> ast.arguments | None:
    for st in tree.body:
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)) and st.name == name:
            return st.args
    return None


def method_args(tree: ast.Module, cls: str, name: str) -> ast.arguments | None:
    for st in tree.body:
        if isinstance(st, ast.ClassDef) and st.name == cls:
            for m in st.body:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and m.name == name:
                    return m.args
    return None


def n_positional(args: ast.arguments) -> tuple[int, bool]:
    """(number of positional parameters, whether it takes *args)."""
    return len(args.posonlyargs) + len(args.args), args.vararg is not None
