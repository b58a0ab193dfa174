"""The harness's scoring step: the windows and probes, the scoring sandbox, the metrics.

:func:`start_early` starts the scoring sandbox before training (see
``score_run.ScoreSandbox``: it imports torch while the agent trains and reads
nothing until the handover); :func:`score` hands it the checked graph after
training, or starts one then (a re-score from a kept graph), and turns what it
sends into the result: the held-out loss, the causality verdict, the learning
curve's points, MFU from the vouched report.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from darwin_bot.core import EvalResult, Metrics, Status
from darwin_bot.evaluate import curve as curve_mod
from darwin_bot.evaluate import curve_score
from darwin_bot.evaluate import peak as peak_mod
from darwin_bot.evaluate import windows as windows_mod
from darwin_bot.evaluate.accounting import charged_cpu
from darwin_bot.evaluate.claims import ClaimRejected, Report, throughput
from darwin_bot.evaluate.devices import pinned_env
from darwin_bot.evaluate.export_step import GRAPH_FILE
from darwin_bot.evaluate.limits import score_limit
from darwin_bot.evaluate.sandbox import Limits, SandboxRun
from darwin_bot.evaluate.score_run import ScoreJob, ScoreOutcome, ScoreSandbox, score_graph
from darwin_bot.evaluate.scoring import CAUSAL_TOL, MIN_PROBES, detection_probability, plan_probes
from darwin_bot.program import contract_for

# ``ctx`` below is the harness's _Context (typed loosely: the harness imports this module)
_Context = Any

SMOKE_WINDOWS = 4
SMOKE_PROBES = 16


def _job(ctx: _Context, limits: Limits) -> ScoreJob:
    opts, contract, out = ctx.opts, contract_for(ctx.opts.program), ctx.scratch / "out"
    return ScoreJob(
        ctx.backend,
        ctx.device,
        ctx.scratch / "score",
        out / GRAPH_FILE,
        out / contract.model_file,
        "" if contract.kind == "darwin" else "model",
        limits,
        opts.threads,
        tuple(pinned_env(opts.visible_devices).items()),
    )


def start_early(ctx: _Context) -> ScoreSandbox:
    """The scoring sandbox, started now to wait for training's graph (``close()`` it)."""
    opts = ctx.opts
    # it must outlive training (bounded by timeout_s) and the harness's steps after it
    hold = Limits(2 * opts.timeout_s + 60.0, opts.memory_mb, opts.max_procs)
    context = contract_for(opts.program).eval_context(opts.preset)
    return ScoreSandbox(_job(ctx, hold), context, hold.timeout_s).start()


def score(
    ctx: _Context,
    data_dir: Path,
    train: SandboxRun,
    report: Report,
    extra: dict[str, Any],
    layout: curve_mod.Layout | None,
    sandbox: ScoreSandbox | None = None,
) -> EvalResult:
    """The trained graph scored (in ``sandbox`` when one was started early), as a result,
    with ``layout``'s checkpoints scored by the same worker as its learning curve."""
    opts = ctx.opts
    vocab = int(ctx.meta["vocab_size"])
    val = np.fromfile(data_dir / "val.bin", dtype=np.uint16)
    n_windows = SMOKE_WINDOWS if opts.smoke else (None if opts.full else opts.eval_windows)
    spare_at = ctx.scratch / "data" if opts.smoke else data_dir  # a re-score has no copy
    spare = np.fromfile(spare_at / "train.bin", dtype=np.uint16)
    contract = contract_for(opts.program)
    seed, windows = windows_mod.choose(opts.windows, opts.window_seed, opts.window_name)
    plan = plan_probes(
        val,
        contract.eval_context(opts.preset),
        vocab,
        n_windows,
        seed,
        n_probes=SMOKE_PROBES if opts.smoke else MIN_PROBES,
        spare_text=spare,
    )
    limit = score_limit(opts, train.wall_s, ctx.device, train.cpu_s)
    job = _job(ctx, Limits(limit.seconds, opts.memory_mb, opts.max_procs, cpu_s=limit.cpu_s))
    how = curve_mod.CurveScoring.of(plan, val, vocab, seed, spare)
    paths = layout.paths if layout is not None else ()
    part, points = curve_score.curve_part(how.plan, vocab, paths)
    outcome = score_graph(job, plan, vocab, sandbox, part)
    how = dataclasses.replace(
        how,
        scores=tuple(curve_score.point_scores(points, outcome.curve_stopped)),
        wall_s=outcome.curve_wall_s,
        cpu_s=outcome.curve_cpu_s,
    )
    extra.update(
        score_wall_s=round(outcome.wall_s, 3),
        score_cpu_s=round(outcome.cpu_s, 3),
        score_held_s=round(outcome.startup_wall_s, 3),
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
    return curve_mod.attach(result, layout, how)


def _finish(
    ctx: _Context,
    train: SandboxRun,
    report: Report,
    outcome: ScoreOutcome,
    extra: dict[str, Any],
    log: str,
) -> EvalResult:
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
        num_params=weights.params,
        matrix_params=weights.matrix_params,
        flops_per_token=vouched.flops_per_token,
        peak_flops=device_peak.flops,
        peak_source=device_peak.source,
        eval_windows=len(scorer.plan.windows),
        eval_tokens=scorer.tokens,
        cost_ratio=None,
        timestamp=time.time(),
    )
    if not weights.params:
        extra["mfu_unavailable"] = "model.pt is not a torch checkpoint the harness can read"
    return ctx.result(Status.OK, "", metrics, log_tail=log, device_name=device_peak.device, **extra)
