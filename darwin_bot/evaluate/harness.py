"""The trusted evaluation harness: train and export in a sandbox, score the graph in another.

Flow of :func:`evaluate_tree`:

1. Check the inputs: a tree without ``seed/train.py`` and ``seed/model.py``, a
   data folder without ``train.bin``/``val.bin``/``meta.json``, are the user's
   errors (``ConfigError``/``DataError``). Everything the agent's code does
   wrong from here on is a value: an ``EvalResult`` with status ``failed``,
   ``timeout``, ``rejected`` or ``over_budget``.
2. Copy the evolvable paths of the tree (only those: a repository checkout may
   hold the held-out split) and ``train.bin`` + ``meta.json`` into a scratch
   folder. ``val.bin`` is never mounted into any sandbox.
3. Run ``python seed/train.py`` in the sandbox, then, in the same process, export
   the trained model as a graph at the scoring shape (:mod:`export_step`). The
   harness holds the budget: the process is killed at ``seconds + allowance`` (a
   seconds budget), or at ``max_cost_ratio`` x the baseline's training wall time
   (an iteration budget with a known baseline), and always at ``timeout_s``.
4. Check the graph without running anything the agent wrote (:mod:`graph_archive`),
   and run it in a sandbox that holds no agent code on windows drawn by a secret
   seed, with causality probes (:mod:`scoring`, :mod:`score_run`, :mod:`score_step`):
   the loss is computed here, from logits, against targets that never leave. That
   sandbox is started with training and starts up (imports torch) while it runs; it
   reads nothing until the checked graph is handed over, and is charged from then.
5. Cost from the CPU time of the sandboxes' process trees (:mod:`accounting`; wall time
   on a GPU); MFU from the weights' size and the report's token count, rejected when
   the measurements rule the claim out (:mod:`claims`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darwin_bot.config import Config, ProgramConfig
from darwin_bot.core import METRIC_SOURCES, Budget, EvalResult, Metrics, Status, apply_cost_limit
from darwin_bot.errors import ConfigError, DataError
from darwin_bot.evaluate import curve as curve_mod
from darwin_bot.evaluate import rescore, score_step
from darwin_bot.evaluate import windows as windows_mod
from darwin_bot.evaluate.accounting import Usage, measure_for, thread_env
from darwin_bot.evaluate.claims import Report, read_report
from darwin_bot.evaluate.devices import pinned_env, resolve_device
from darwin_bot.evaluate.export_step import GRAPH_FILE, export_argv, export_problem
from darwin_bot.evaluate.inputs import read_meta
from darwin_bot.evaluate.iterations import iteration_watcher
from darwin_bot.evaluate.limits import (
    WallLimit,
    baseline_cost,
    train_limit,
    wall_limit,
)
from darwin_bot.evaluate.sandbox import (
    Limits,
    Mount,
    SandboxRun,
    python_paths,
    resolve_backend,
    run_sandboxed,
    scrub_env,
)
from darwin_bot.evaluate.score_run import ScoreSandbox
from darwin_bot.evaluate.scratch import copy_tree, holes_problem, make_train_data, tree_hash
from darwin_bot.program import LaunchRequest, TrainReport, contract_for, require_files

# Bump when anything that changes a score changes: it is half of the cache key. What each
# version changed: docs/results.md, "Evaluator versions".
EVALUATOR_VERSION = "6"

__all__ = ["EVALUATOR_VERSION", "EvalOptions", "evaluate_repeats", "evaluate_tree", "tree_hash"]


@dataclass(frozen=True)
class EvalOptions:
    """How to evaluate a tree. ``data_dir`` holds train.bin, val.bin and meta.json."""

    preset: str = "tiny"
    data_dir: Path = Path("data/shakespeare_char")
    budget: Budget = dataclasses.field(default_factory=lambda: Budget(iters=100))
    seed: int = 0
    sandbox: str = "auto"
    device: str = "auto"
    timeout_s: float = 900.0
    memory_mb: int | None = 8192
    max_procs: int | None = 256
    full: bool = False  # score every window of the held-out split
    smoke: bool = False  # a few iterations on a slice: "it trains, loads and is causal"
    eval_windows: int = 64
    # which windows: "secret" (drawn by window_seed; a fresh secret when it is None) or
    # "fixed" (the public WINDOW_SEED's, the same every time: benchmarks only)
    windows: str = "secret"
    window_seed: int | None = None  # the engine's per-generation secret
    window_name: str = ""  # that set's public name (windows.WindowSet), recorded in the result
    keep_dir: Path | None = None  # keep trained graphs here, re-score from them (rescore)
    paths: tuple[str, ...] = ("seed/",)
    curve: tuple[float, ...] = curve_mod.DEFAULT_FRACTIONS  # when to save checkpoints
    threads: int | None = None  # torch CPU threads (DARWIN_THREADS): parallel evals share cores
    visible_devices: str | None = None  # CUDA_VISIBLE_DEVICES of its sandboxes (its own GPU)
    allowance_s: float = 5.0  # saving and the kill's slack, on top of a seconds budget
    max_cost_ratio: float = 1.5  # of the baseline's training wall time (iteration budgets)
    seconds_cost_ratio: float = 1.05  # the same, for seconds budgets
    baseline_train_wall_s: float | None = None  # the baseline's mean, when known
    baseline_score_wall_s: float | None = None  # the same, of its scoring
    baseline_train_cpu_s: float | None = None  # its CPU time (the cost on a CPU), when known
    baseline_score_cpu_s: float | None = None
    # which program contract (darwin_bot/program)
    program: ProgramConfig = ProgramConfig()
    # called with each iteration number the training program's log lines report
    # (progress display only: never read for the score)
    on_iteration: Callable[[int], None] | None = dataclasses.field(
        default=None, compare=False, repr=False
    )

    @classmethod
    def from_config(
        cls, cfg: Config, root: Path, *, smoke: bool = False, **changes: Any
    ) -> EvalOptions:
        """Options from darwin.toml (data relative to ``root``); ``changes`` override fields."""
        smoke_budget = Budget(iters=cfg.budget.smoke_iters)
        opts = cls(
            preset=cfg.budget.preset,
            data_dir=Path(root) / cfg.budget.data,
            budget=smoke_budget
            if smoke
            else Budget(iters=cfg.budget.iters, seconds=cfg.budget.seconds),
            seed=cfg.evolution.seed,
            sandbox=cfg.sandbox.backend,
            timeout_s=cfg.sandbox.smoke_timeout_s if smoke else cfg.sandbox.timeout_s,
            memory_mb=cfg.sandbox.memory_mb,
            max_procs=cfg.sandbox.max_procs,
            allowance_s=cfg.sandbox.allowance_s,
            max_cost_ratio=cfg.budget.max_cost_ratio,
            seconds_cost_ratio=cfg.budget.seconds_cost_ratio,
            smoke=smoke,
            paths=cfg.evolution.evolvable,
            program=cfg.program,
        )
        return dataclasses.replace(opts, **{"curve": cfg.budget.curve, **changes})


# ----------------------------------------------------------------------- inputs


def _check_options(opts: EvalOptions) -> None:
    # ConfigError on a preset the contract has no scoring context for
    contract_for(opts.program).eval_context(opts.preset)
    if opts.timeout_s <= 0:
        raise ConfigError("the evaluation timeout must be positive")
    if opts.eval_windows < 1:
        raise ConfigError("eval_windows must be at least 1")
    if opts.windows not in ("secret", "fixed"):
        raise ConfigError(f"windows must be 'secret' or 'fixed', not {opts.windows!r}")
    curve_mod.check_fractions(opts.curve)  # ConfigError
    if opts.baseline_train_wall_s is not None and not opts.baseline_train_wall_s > 0:
        raise ConfigError("the baseline's training wall time must be a positive number of seconds")


# --------------------------------------------------------------------- evaluation


@dataclass
class _Context:
    """What one evaluation knows so far (keeps the steps' signatures short)."""

    tree: Path
    opts: EvalOptions
    backend: str
    device: str
    hash: str
    scratch: Path
    meta: dict[str, Any]
    curve: curve_mod.CurveRun | None = None  # the checkpoints training saved (not smoke)

    def result(
        self,
        status: str,
        reason: str,
        metrics: Metrics | None = None,
        log_tail: str = "",
        device_name: str = "",
        **extra: Any,
    ) -> EvalResult:
        extra = {"data_sha256": self.meta.get("sha256"), **extra}  # the corpus it was scored on
        return EvalResult(
            status=status,  # type: ignore[arg-type]
            reason=reason,
            metrics=metrics,
            device=device_name or self.device,
            seed=self.opts.seed,
            budget=self.opts.budget,
            evaluator_version=EVALUATOR_VERSION,
            tree_hash=self.hash,
            log_tail=log_tail,
            preset=self.opts.preset,
            extra={"sandbox": self.backend, "smoke": self.opts.smoke, **extra},
        )


def evaluate_tree(tree: Path, opts: EvalOptions) -> EvalResult:
    """Train and score the agent in ``tree``; every fault of the agent's code is a status.

    Raises only for the caller's errors: ConfigError (no seed program, bad
    options), DataError (corpus missing) and SandboxError (backend unusable).
    """
    tree = Path(tree).resolve()
    contract = contract_for(opts.program)
    require_files(contract, tree)  # ConfigError: the caller passed the wrong folder
    _check_options(opts)
    data_dir = Path(opts.data_dir).resolve()
    meta = read_meta(data_dir)
    backend = resolve_backend(opts.sandbox)
    exposed = [p for p in python_paths() if data_dir.is_relative_to(p)]
    if exposed and backend == "bwrap":
        raise DataError(
            f"{data_dir} lies inside {exposed[0]}, which every sandbox sees read-only; "
            "move the data folder out of Python's installation"
        )
    device = resolve_device(opts.device)
    with tempfile.TemporaryDirectory(prefix="darwin-eval-") as tmp:
        # the evolvable paths + the program's support files
        paths = contract.copy_paths(opts.paths)
        ctx = _Context(tree, opts, backend, device, tree_hash(tree, paths), Path(tmp), meta)
        result = _evaluate(ctx, data_dir)
    return apply_cost_limit(
        result,
        None if opts.smoke else baseline_cost(opts),
        opts.max_cost_ratio,
        opts.seconds_cost_ratio,
    )


def evaluate_repeats(tree: Path, opts: EvalOptions, repeats: int) -> list[EvalResult]:
    """``repeats`` evaluations with seeds ``opts.seed``, ``opts.seed + 1``, ..."""
    if repeats < 1:
        raise ConfigError("repeats must be at least 1")
    if opts.windows == "secret" and opts.window_seed is None and windows_mod.read_secret() is None:
        opts = dataclasses.replace(opts, window_seed=windows_mod.secret_seed())  # paired repeats
    return [
        evaluate_tree(tree, dataclasses.replace(opts, seed=opts.seed + i)) for i in range(repeats)
    ]


# --------------------------------------------------------------------- training


def _train(ctx: _Context, data_dir: Path) -> tuple[SandboxRun, WallLimit]:
    opts, scratch, contract = ctx.opts, ctx.scratch, contract_for(ctx.opts.program)
    fractions = () if opts.smoke else contract.curve_fractions(opts.budget, opts.curve)
    copy_tree(ctx.tree, contract.copy_paths(opts.paths), scratch / "tree")
    make_train_data(data_dir, scratch / "data", opts.smoke)
    contract.stage_data(scratch / "data")  # meta.pkl, stand-in val.bin
    (scratch / "out").mkdir()
    (scratch / "home").mkdir()
    tree_m = Mount("tree", scratch / "tree")
    data_m = Mount("data", scratch / "data")
    out_m = Mount("out", scratch / "out", writable=True)
    env = _train_env(ctx, data_m, out_m, fractions)
    limit = train_limit(opts, ctx.device)
    launch = contract.launch(
        LaunchRequest(  # argv, cwd, env of training
            opts.budget,
            opts.seed,
            ctx.device,
            opts.preset,
            data_m.inside(ctx.backend),
            out_m.inside(ctx.backend),
            opts.smoke,
            opts.threads,
            fractions,
        ),
        ctx.tree,
    )
    ctx.curve = curve_mod.CurveRun.start(opts, fractions, scratch, contract)
    env.update(launch.env)
    b = ctx.backend
    argv = export_argv(
        b,
        contract.kind.value,
        contract.model_path,
        tree_m.inside(b),
        f"{out_m.inside(b)}/{contract.model_file}",
        out_m.inside(b),
        contract.eval_context(opts.preset),
        ctx.device,
        launch.argv,
    )
    with curve_mod.watching(ctx.curve):
        train = run_sandboxed(
            [sys.executable, *argv],
            backend=ctx.backend,
            mounts=[tree_m, data_m, out_m],
            cwd=launch.cwd_in(tree_m.inside(ctx.backend)),
            env=env,
            limits=Limits(limit.seconds, opts.memory_mb, opts.max_procs, cpu_s=limit.cpu_s),
            device=ctx.device,
            on_line=curve_mod.on_line(ctx.curve, iteration_watcher(opts.on_iteration)),
            on_start=curve_mod.on_start(ctx.curve),
        )
    return train, limit


def _train_env(
    ctx: _Context, data_m: Mount, out_m: Mount, fractions: tuple[float, ...]
) -> dict[str, str]:
    """The environment training gets (the contract's launch adds its own)."""
    opts, b = ctx.opts, ctx.backend
    budget_env = (
        {"DARWIN_MAX_ITERS": str(opts.budget.iters)}
        if opts.budget.iters is not None
        else {"DARWIN_TIME_BUDGET_S": str(opts.budget.seconds)}
    )
    return scrub_env(
        {
            "DARWIN_DATA": data_m.inside(b),
            "DARWIN_OUT": out_m.inside(b),
            "DARWIN_SEED": str(opts.seed),
            "DARWIN_DEVICE": ctx.device,
            "DARWIN_PRESET": opts.preset,
            **budget_env,
            **curve_mod.train_env(fractions),
            **thread_env(opts.threads),
            **pinned_env(opts.visible_devices),
        },
        home="/tmp" if b == "bwrap" else str(ctx.scratch / "home"),
    )


def _train_extra(ctx: _Context, train: SandboxRun, limit: WallLimit) -> dict[str, Any]:
    """What the harness measured of training: both figures (CPU and wall) and how busy it was."""
    usage = Usage(train.wall_s, train.cpu_s, ctx.opts.threads or os.cpu_count() or 1)
    return {
        "train_wall_s": round(train.wall_s, 3),
        "train_cpu_s": round(train.cpu_s, 3),
        "cost_measure": measure_for(ctx.device).value,
        "threads": usage.threads,
        "worker_device": ctx.device
        + (f":{ctx.opts.visible_devices}" if ctx.opts.visible_devices else ""),
        "train_busy": round(usage.busy, 3),
        "contended": usage.contended,
        "train_wall_limit_s": round(limit.seconds, 3),
        **({"train_cpu_limit_s": round(limit.cpu_s, 3)} if limit.cpu_s is not None else {}),
        "train_max_rss_mb": round(train.max_rss_mb, 1),
        "sources": METRIC_SOURCES,
    }


def _evaluate(ctx: _Context, data_dir: Path) -> EvalResult:
    contract = contract_for(ctx.opts.program)
    kept = rescore.find(EVALUATOR_VERSION, ctx)
    if kept is not None:  # trained before: its graph scored on these windows, no training
        return score_step.score(ctx, data_dir, *rescore.restore(kept, ctx.scratch / "out"))
    misses = [p.line() for p in contract.static_parts(ctx.tree, ctx.opts.preset) if not p.ok]
    if misses:  # what darwin check would print, as the reason
        return ctx.result(Status.FAILED, "the program breaks its contract: " + "; ".join(misses))
    # the scoring interpreter starts up (imports torch) while the agent trains; it holds no
    # agent code and reads nothing until the checked graph is handed over
    sandbox = score_step.start_early(ctx)
    try:
        return _train_and_score(ctx, data_dir, sandbox)
    finally:
        sandbox.close()


def _train_and_score(ctx: _Context, data_dir: Path, sandbox: ScoreSandbox) -> EvalResult:
    contract = contract_for(ctx.opts.program)
    train, limit = _train(ctx, data_dir)
    extra = _train_extra(ctx, train, limit)
    if train.timed_out:
        cost_stop = train.cpu_limited or limit.cpu_s is None
        stop = limit if cost_stop else wall_limit(ctx.opts, ctx.device)
        return ctx.result(stop.status, stop.reason, log_tail=train.log_tail, **extra)
    if train.returncode != 0:
        return ctx.result(
            Status.FAILED,
            f"train.py exited with code {train.returncode}",
            log_tail=train.log_tail,
            **extra,
        )
    out, copied = ctx.scratch / "out", (GRAPH_FILE, contract.model_file)  # kept, scored
    problem = contract.output_problem(out) or holes_problem(out, copied)
    if problem:
        return ctx.result(Status.FAILED, problem, log_tail=train.log_tail, **extra)
    try:
        report = _report(contract.read_report(ctx.scratch / "out", train.wall_s), ctx.scratch)
    except ValueError as exc:
        return ctx.result(
            Status.FAILED, f"bad training report: {exc}", log_tail=train.log_tail, **extra
        )
    extra.update(
        iterations=report.iterations,
        tokens_seen=int(report.tokens_seen),
        reported_train_seconds=report.train_seconds,
    )
    graph, why = export_problem(ctx.scratch / "out", contract.eval_context(ctx.opts.preset))
    if graph is None:
        return ctx.result(Status.REJECTED, why, log_tail=train.log_tail, **extra)
    extra.update(graph_nodes=len(graph.nodes), graph_ops=sorted(set(graph.ops)))
    files = (GRAPH_FILE, contract.model_file)
    measure, budget = extra["cost_measure"], ctx.opts.budget
    layout = curve_mod.lay_out(ctx.curve, budget, measure, train.cpu_s, train.wall_s)
    rescore.keep(EVALUATOR_VERSION, ctx, files, train, report, extra, layout)  # to score again
    return score_step.score(ctx, data_dir, train, report, extra, layout, sandbox)


def _report(claimed: TrainReport | None, scratch: Path) -> Report:
    """The contract's claims (nanogpt: from ckpt.pt), else the program's train.json."""
    if claimed is None:
        return read_report(scratch / "out")
    return Report(claimed.iterations, float(claimed.tokens_seen), claimed.train_seconds, None)
