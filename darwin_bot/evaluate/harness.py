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
   seed, with causality probes (:mod:`scoring`, :mod:`score_run`): the loss is
   computed here, from logits, against targets that never leave.
5. Cost from the CPU time of the sandboxes' process trees (:mod:`accounting`; wall time
   on a GPU); MFU from the weights' size and the report's token count, rejected when
   the measurements rule the claim out (:mod:`claims`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darwin_bot.config import Config, ProgramConfig
from darwin_bot.core.results import (
    METRIC_SOURCES,
    Budget,
    EvalResult,
    Metrics,
    Status,
    apply_cost_limit,
)
from darwin_bot.errors import ConfigError, DataError
from darwin_bot.evaluate import curve as curve_mod
from darwin_bot.evaluate import peak as peak_mod
from darwin_bot.evaluate import rescore
from darwin_bot.evaluate import windows as windows_mod
from darwin_bot.evaluate.accounting import Usage, charged_cpu, measure_for, thread_env
from darwin_bot.evaluate.claims import ClaimRejected, Report, read_report, throughput
from darwin_bot.evaluate.devices import pinned_env, resolve_device
from darwin_bot.evaluate.export_step import GRAPH_FILE, export_argv, export_problem
from darwin_bot.evaluate.inputs import read_meta
from darwin_bot.evaluate.iterations import iteration_watcher
from darwin_bot.evaluate.limits import (
    WallLimit,
    baseline_cost,
    score_limit,
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
from darwin_bot.evaluate.score_run import ScoreJob, ScoreOutcome, score_graph
from darwin_bot.evaluate.scoring import CAUSAL_TOL, MIN_PROBES, detection_probability, plan_probes
from darwin_bot.evaluate.scratch import copy_tree, make_train_data, tree_hash
from darwin_bot.program import LaunchRequest, TrainReport, contract_for, require_files

# Bump when anything that changes a score changes: it is half of the cache key. What each
# version changed: docs/results.md, "Evaluator versions".
EVALUATOR_VERSION = "6"

SMOKE_WINDOWS = 4
SMOKE_PROBES = 16

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
    return apply_cost_limit(result, None if opts.smoke else baseline_cost(opts),
                            opts.max_cost_ratio, opts.seconds_cost_ratio)  # fmt: skip


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
    home = "/tmp" if ctx.backend == "bwrap" else str(scratch / "home")
    budget_env = (
        {"DARWIN_MAX_ITERS": str(opts.budget.iters)}
        if opts.budget.iters is not None
        else {"DARWIN_TIME_BUDGET_S": str(opts.budget.seconds)}
    )
    env = scrub_env(
        {
            "DARWIN_DATA": data_m.inside(ctx.backend),
            "DARWIN_OUT": out_m.inside(ctx.backend),
            "DARWIN_SEED": str(opts.seed),
            "DARWIN_DEVICE": ctx.device,
            "DARWIN_PRESET": opts.preset,
            **budget_env,
            **curve_mod.train_env(fractions),
            **thread_env(opts.threads),
            **pinned_env(opts.visible_devices),
        },
        home=home,
    )
    limit = train_limit(opts, ctx.device)
    launch = contract.launch(LaunchRequest(  # argv, cwd, env of training
        opts.budget, opts.seed, ctx.device, opts.preset, data_m.inside(ctx.backend),
        out_m.inside(ctx.backend), opts.smoke, opts.threads, fractions), ctx.tree)  # fmt: skip
    ctx.curve = curve_mod.CurveRun.start(opts, fractions, scratch, contract)
    env.update(launch.env)
    b = ctx.backend
    argv = export_argv(b, contract.kind.value, contract.model_path, tree_m.inside(b),
                       f"{out_m.inside(b)}/{contract.model_file}", out_m.inside(b),
                       contract.eval_context(opts.preset), ctx.device, launch.argv)  # fmt: skip
    with curve_mod.watching(ctx.curve):
        train = run_sandboxed(
            [sys.executable, *argv],
            backend=ctx.backend, mounts=[tree_m, data_m, out_m],
            cwd=launch.cwd_in(tree_m.inside(ctx.backend)),
            env=env, limits=Limits(limit.seconds, opts.memory_mb, opts.max_procs, cpu_s=limit.cpu_s),
            device=ctx.device,
            on_line=curve_mod.on_line(ctx.curve, iteration_watcher(opts.on_iteration)),
            on_start=curve_mod.on_start(ctx.curve),
        )  # fmt: skip
    return train, limit


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
        return _score(ctx, data_dir, *rescore.restore(kept, ctx.scratch / "out"))
    misses = [p.line() for p in contract.static_parts(ctx.tree, ctx.opts.preset) if not p.ok]
    if misses:  # what darwin check would print, as the reason
        return ctx.result(Status.FAILED, "the program breaks its contract: " + "; ".join(misses))
    train, limit = _train(ctx, data_dir)
    extra = _train_extra(ctx, train, limit)
    if train.timed_out:
        cost_stop = train.cpu_limited or limit.cpu_s is None
        stop = limit if cost_stop else wall_limit(ctx.opts, ctx.device)
        return ctx.result(stop.status, stop.reason, log_tail=train.log_tail, **extra)
    if train.returncode != 0:
        return ctx.result(Status.FAILED, f"train.py exited with code {train.returncode}",
                          log_tail=train.log_tail, **extra)  # fmt: skip
    problem = contract.output_problem(ctx.scratch / "out")
    if problem:
        return ctx.result(Status.FAILED, problem, log_tail=train.log_tail, **extra)
    try:
        report = _report(contract.read_report(ctx.scratch / "out", train.wall_s), ctx.scratch)
    except ValueError as exc:
        return ctx.result(
            Status.FAILED, f"bad training report: {exc}", log_tail=train.log_tail, **extra
        )
    extra.update(iterations=report.iterations, tokens_seen=int(report.tokens_seen),
                 reported_train_seconds=report.train_seconds)  # fmt: skip
    graph, why = export_problem(ctx.scratch / "out", contract.eval_context(ctx.opts.preset))
    if graph is None:
        return ctx.result(Status.REJECTED, why, log_tail=train.log_tail, **extra)
    extra.update(graph_nodes=len(graph.nodes), graph_ops=sorted(set(graph.ops)))
    files = (GRAPH_FILE, contract.model_file)
    rescore.keep(EVALUATOR_VERSION, ctx, files, train, report, extra)  # to score again later
    return _score(ctx, data_dir, train, report, extra)


def _report(claimed: TrainReport | None, scratch: Path) -> Report:
    """The contract's claims (nanogpt: from ckpt.pt), else the program's train.json."""
    if claimed is None:
        return read_report(scratch / "out")
    return Report(claimed.iterations, float(claimed.tokens_seen), claimed.train_seconds, None)


def _score(ctx: _Context, data_dir: Path, train: SandboxRun, report: Report,
           extra: dict[str, Any]) -> EvalResult:  # fmt: skip
    opts = ctx.opts
    vocab = int(ctx.meta["vocab_size"])
    val = np.fromfile(data_dir / "val.bin", dtype=np.uint16)
    n_windows = SMOKE_WINDOWS if opts.smoke else (None if opts.full else opts.eval_windows)
    spare_at = ctx.scratch / "data" if opts.smoke else data_dir  # a re-score has no copy
    spare = np.fromfile(spare_at / "train.bin", dtype=np.uint16)
    contract = contract_for(opts.program)
    seed, windows = windows_mod.choose(opts.windows, opts.window_seed, opts.window_name)
    plan = plan_probes(val, contract.eval_context(opts.preset), vocab, n_windows, seed,
                       n_probes=SMOKE_PROBES if opts.smoke else MIN_PROBES, spare_text=spare)  # fmt: skip
    limit = score_limit(opts, train.wall_s, ctx.device, train.cpu_s)
    out = ctx.scratch / "out"
    job = ScoreJob(ctx.backend, ctx.device, ctx.scratch / "score", out / GRAPH_FILE,
                   out / contract.model_file, "" if contract.kind == "darwin" else "model",
                   Limits(limit.seconds, opts.memory_mb, opts.max_procs, cpu_s=limit.cpu_s),
                   opts.threads, tuple(pinned_env(opts.visible_devices).items()))  # fmt: skip
    outcome = score_graph(job, plan, vocab)
    how = curve_mod.CurveScoring.of(job, plan, val, vocab, seed, spare, ctx.scratch)
    extra.update(
        score_wall_s=round(outcome.wall_s, 3),
        score_cpu_s=round(outcome.cpu_s, 3),
        windows=windows,
        causal_probes=len(plan.probes),
        probe_suffixes=plan.suffix_source,
        causal_max_logprob_diff=float(f"{outcome.scorer.max_diff:.3g}"),
        causal_tolerance=CAUSAL_TOL,
        # a model that reads ahead at one position per window (q = 1/(T-1)) is caught with:
        p_detect_one_peek=round(detection_probability(1 / (plan.context - 1), len(plan.probes)), 4),
    )
    log = train.log_tail + ("\n--- scoring ---\n" + outcome.log if outcome.log else "")
    at_cost = limit.cpu_s is None or outcome.cpu_limited  # not the wall clock's timeout_s
    if outcome.status is Status.TIMEOUT and limit.status is Status.OVER_BUDGET and at_cost:
        return ctx.result(limit.status, limit.reason, log_tail=log, **extra)
    if outcome.status is not Status.OK:
        return ctx.result(outcome.status, outcome.reason, log_tail=log, **extra)
    result = _finish(ctx, train, report, outcome, extra, log)
    return curve_mod.attach(result, ctx.curve, how, train.wall_s)


def _finish(ctx: _Context, train: SandboxRun, report: Report, outcome: ScoreOutcome,
            extra: dict[str, Any], log: str) -> EvalResult:  # fmt: skip
    scorer = outcome.scorer
    weights = scorer.weights
    vouch = functools.partial(throughput, report, train.wall_s, weights.params)
    try:
        vouched, device_peak = peak_mod.checked(ctx.device, ctx.opts.threads, ClaimRejected, vouch)
    except ClaimRejected as exc:
        return ctx.result(Status.REJECTED, f"lying report: {exc}", log_tail=log, **extra)
    metrics = Metrics(
        val_loss=scorer.val_loss,
        perplexity=math.exp(min(scorer.val_loss, 700.0)),
        mfu=vouched.mfu,
        tokens_per_s=vouched.tokens_per_s,
        train_seconds=vouched.train_seconds,
        peak_mem_mb=train.max_rss_mb,
        train_wall_s=train.wall_s,
        score_wall_s=outcome.wall_s,
        **charged_cpu(ctx.device, train.cpu_s, outcome.cpu_s),
    )
    extra.update(
        num_params=weights.params, matrix_params=weights.matrix_params,
        flops_per_token=vouched.flops_per_token, peak_flops=device_peak.flops,
        peak_source=device_peak.source, eval_windows=len(scorer.plan.windows),
        eval_tokens=scorer.tokens, cost_ratio=None, timestamp=time.time(),
    )  # fmt: skip
    if not weights.params:
        extra["mfu_unavailable"] = "model.pt is not a torch checkpoint the harness can read"
    return ctx.result(Status.OK, "", metrics, log_tail=log, device_name=device_peak.device, **extra)
