"""``darwin evaluate``: train and score one tree in the sandbox, print the result.

A run that fails, times out or is rejected is a result (printed, exit 0), not
an error: the status field says what happened. Errors of the caller (unknown
preset, missing data, a PATH without a seed program, a token in the
environment) are one line on stderr and exit 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from darwin_bot.cli.eval_options import (
    eval_options,
    refuse_secrets,
    rung_budget,
    windows_options,
)
from darwin_bot.cli.options import config_option, load_config
from darwin_bot.config import PRESETS, SANDBOXES, Config
from darwin_bot.core import Budget, EvalResult, Metrics, Status
from darwin_bot.errors import ConfigError


@contextlib.contextmanager
def _training_progress(budget: Budget, repeats: int) -> Iterator[Callable[[int], None]]:
    """A bar on a terminal (timestamped lines elsewhere, on stderr) of the training
    iterations the program's log reports, over all ``repeats`` runs of an iteration budget."""
    from darwin_bot.cli.progress import Reporter

    per_run = budget.iters
    total = per_run * repeats if per_run else None
    with Reporter().task("training", total=total, unit="iter") as task:
        seen = {"run": 0, "last": -1}

        def on_iteration(n: int) -> None:
            if n < seen["last"]:  # the next repeat started again from 0
                seen["run"] += 1
            seen["last"] = n
            # "iter N": N iterations done (the seed), or the Nth from 0 (nanoGPT): clip either
            task.to(seen["run"] * per_run + min(n, per_run) if per_run else n)

        yield on_iteration


def summarize(results: list[EvalResult]) -> dict[str, Any]:
    """One object for N runs: the runs, and the mean and std of each metric over the ok ones."""
    ok = [r for r in results if r.ok and r.metrics is not None]
    first = results[0]
    out: dict[str, Any] = {
        "status": Status.OK if len(ok) == len(results) else _worst(results),
        "reason": "; ".join(sorted({r.reason for r in results if r.reason})),
        "tree_hash": first.tree_hash,
        "evaluator_version": first.evaluator_version,
        "device": first.device,
        "preset": first.preset,
        "budget": first.budget.to_dict(),
        "seeds": [r.seed for r in results],
        "ok_runs": len(ok),
        "mean": None,
        "std": None,
        "runs": [r.to_dict() for r in results],
    }
    if ok:
        names = list(Metrics.__dataclass_fields__)
        columns = {n: [float(getattr(r.metrics, n)) for r in ok] for n in names}
        out["mean"] = {n: statistics.fmean(v) for n, v in columns.items()}
        out["std"] = {n: statistics.stdev(v) if len(v) > 1 else 0.0 for n, v in columns.items()}
    return out


def _evaluate_branch(
    path: Path, branch: str, cfg: Config, opts: Any, repeats: int
) -> list[EvalResult]:
    """Evaluate an agent checkout, failing closed when its commits reach outside the evolvable paths."""
    import subprocess

    from darwin_bot.evaluate import EVALUATOR_VERSION, evaluate_repeats, unverified_reason

    prefix = cfg.evolution.branch_prefix
    if not branch.startswith(prefix):
        raise ConfigError(f"--branch {branch!r} is not an agent branch (prefix {prefix!r})")
    head = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    if head.returncode != 0:
        raise ConfigError(f"{path} is not a git checkout of {branch}; check the branch out there")
    reason = unverified_reason(path, cfg.forge.default_branch or "main", cfg.evolution.evolvable)
    if reason is not None:
        results = [
            EvalResult(
                status=Status.REJECTED,
                reason=reason,
                metrics=None,
                device="",
                seed=opts.seed + i,
                budget=opts.budget,
                evaluator_version=EVALUATOR_VERSION,
                tree_hash="",
                preset=opts.preset,
            )
            for i in range(repeats)
        ]
    else:
        results = evaluate_repeats(path, opts, repeats)
    extra = {"head": head.stdout.strip(), "branch": branch, "agent": branch[len(prefix) :]}
    return [dataclasses.replace(r, extra={**r.extra, **extra}) for r in results]


def _cpu_note(extra: dict[str, Any]) -> str:
    score = extra.get("score_cpu_s")
    scored = f"{score:.2f} s scoring, " if isinstance(score, (int, float)) else ""
    busy = extra.get("train_busy")
    waited = " (measured under contention)" if extra.get("contended") else ""
    return scored + (f"{100 * busy:.0f}% busy{waited}" if isinstance(busy, (int, float)) else "")


def _worst(results: list[EvalResult]) -> str:
    for status in (Status.REJECTED, Status.OVER_BUDGET, Status.TIMEOUT, Status.FAILED):
        if any(r.status == status for r in results):
            return status
    return Status.FAILED


def _human(result: EvalResult) -> str:
    lines = [f"status     {result.status}" + (f" ({result.reason})" if result.reason else "")]
    if result.metrics is not None:
        m = result.metrics
        lines += [
            f"perplexity {m.perplexity:.4f}  (val loss {m.val_loss:.4f})",
            f"mfu        {100 * m.mfu:.2f}% (reported: from the program's token count)",
            f"tokens/s   {m.tokens_per_s:,.0f}",
            f"train      {m.train_seconds:.2f} s reported, peak {m.peak_mem_mb:.0f} MiB",
        ]
    if "train_wall_s" in result.extra:
        ratio = result.extra.get("cost_ratio")
        cost = f"{ratio:.2f}x the baseline" if ratio is not None else "no baseline given"
        score = result.extra.get("score_wall_s")
        scored = f" + {score:.2f} s scoring" if isinstance(score, (int, float)) else ""
        lines.append(
            f"cost       {result.extra['train_wall_s']:.2f} s training{scored} measured ({cost})"
        )
        cpu = result.extra.get("train_cpu_s")
        if isinstance(cpu, (int, float)):
            lines.append(f"cpu        {cpu:.2f} s training, {_cpu_note(result.extra)}")
    curve = result.extra.get("curve")
    if isinstance(curve, dict):  # trusted: (share of the budget, held-out loss) per checkpoint
        shown = ", ".join(
            f"{p['budget_fraction']:.2f}: {p['val_loss']:.4f}"
            for p in curve.get("points", [])
            if p.get("val_loss") is not None
        )
        note = f" ({curve['note']})" if curve.get("note") else ""
        lines.append(f"curve      {shown}{note}")
    lines += [f"device     {result.device}", f"tree       {result.tree_hash} (seed {result.seed})"]
    if result.status is not Status.OK and result.log_tail:
        lines += ["--- log tail ---", result.log_tail.rstrip()]
    return "\n".join(lines)


def _contract_guidance(cfg: Config, path: Path, result: EvalResult) -> None:
    """What part of the program's contract a failed run broke."""
    from darwin_bot.program import contract_for, guidance_text

    text = guidance_text(contract_for(cfg.program), path.resolve(), result.preset, result)
    if text:
        click.echo(text)


@click.command("evaluate")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option(
    "--preset", type=click.Choice(PRESETS), default=None, help="Model scale [config budget.preset]."
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder with train.bin, val.bin, meta.json [config budget.data].",
)
@click.option("--iters", type=click.IntRange(min=1), default=None, help="Training iterations.")
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Training seconds instead of iterations.",
)
@click.option(
    "--confirm",
    is_flag=True,
    help="At the confirmation budget: budget.confirm_iters or confirm_seconds, "
    'under budget.confirm_preset (CI: the matrix\'s "budget": "confirm" legs).',
)
@click.option(
    "--rung",
    type=click.IntRange(min=1),
    default=None,
    help='At rung N of search.schedule = "halving": search.rungs[N] x the search budget '
    '(CI: the matrix\'s "budget": "rung-N" legs).',
)
@click.option("--seed", type=int, default=None, help="Training seed [config evolution.seed].")
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Runs with seeds seed, seed+1, ...; prints mean and std.",
)
@click.option(
    "--sandbox",
    type=click.Choice(SANDBOXES),
    default=None,
    help="Sandbox backend [config sandbox.backend]; none runs agent code unconfined.",
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds before training is killed [config sandbox.timeout_s].",
)
@click.option("--full", is_flag=True, help="Score every window of the held-out split.")
@click.option(
    "--fixed-windows",
    is_flag=True,
    help="Score the public, fixed windows (benchmarks only: a program can memorise "
    "them); default: windows drawn by DARWIN_WINDOW_SECRET, else a fresh secret.",
)
@click.option(
    "--generation",
    type=click.IntRange(min=0),
    default=None,
    help="Score on generation N's windows, drawn by DARWIN_WINDOW_SECRET (required): "
    "every evaluation of one generation is scored on the same windows (CI's legs: "
    "the matrix's generation).",
)
@click.option(
    "--keep-graphs",
    "keep_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the trained graph in DIR, and score a tree DIR already holds (the same "
    "tree, seed, budget and corpus) again instead of training it: a runner's own "
    "disk, where no sandbox writes.",
)
@click.option(
    "--smoke", is_flag=True, help="A few iterations on a slice of the data (a quick check)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.option(
    "--branch",
    default=None,
    help="CI: the agent branch PATH is a checkout of. The agent's commits must change "
    "only the evolvable paths (else: rejected, nothing runs); the result records "
    "extra.head, extra.agent and extra.branch.",
)
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A 'darwin evaluate --json' result of the baseline (same preset, budget and "
    "device): adds cost_ratio, and an iteration budget is held to "
    "budget.max_cost_ratio x its training and scoring cost: CPU time on a CPU, "
    "wall time on a GPU (else: over_budget).",
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JSON result to FILE.",
)
@config_option
def evaluate_command(
    path: Path,
    preset: str | None,
    data_dir: Path | None,
    iters: int | None,
    seconds: float | None,
    confirm: bool,
    rung: int | None,
    seed: int | None,
    repeats: int,
    sandbox: str | None,
    device: str,
    timeout_s: float | None,
    full: bool,
    fixed_windows: bool,
    generation: int | None,
    keep_dir: Path | None,
    smoke: bool,
    branch: str | None,
    as_json: bool,
    out_file: Path | None,
    baseline_file: Path | None,
    config_path: Path | None,
) -> None:
    """Train and score the agent in PATH (default: .) in the sandbox."""
    from darwin_bot.evaluate import evaluate_repeats

    refuse_secrets(os.environ)
    if iters is not None and seconds is not None:
        raise ConfigError("pass --iters or --seconds, not both")
    if not path.is_dir():
        raise ConfigError(f"{path} is not a folder; pass the root of a darwin tree")
    cfg = load_config(config_path, root=path)
    if rung is not None:
        iters, seconds = rung_budget(cfg, rung, iters, seconds, confirm)
    given = {"preset": preset, "data_dir": data_dir, "seed": seed, "sandbox": sandbox}
    opts = eval_options(
        cfg,
        path,
        {"device": device, "full": full}
        | windows_options(fixed_windows, generation)
        | {"keep_dir": keep_dir},
        given | {"timeout_s": timeout_s},
        iters=iters,
        seconds=seconds,
        confirm=confirm,
        smoke=smoke,
        baseline_file=baseline_file,
    )
    with _training_progress(opts.budget, repeats) as on_iteration:
        opts = dataclasses.replace(opts, on_iteration=on_iteration)
        if branch is None:
            results = evaluate_repeats(path, opts, repeats)
        else:
            results = _evaluate_branch(path, branch, cfg, opts, repeats)
    _report(results, repeats, cfg, path, as_json=as_json, out_file=out_file)


def _report(
    results: list[EvalResult],
    repeats: int,
    cfg: Config,
    path: Path,
    *,
    as_json: bool,
    out_file: Path | None,
) -> None:
    """Print the runs (one JSON object, or lines with guidance), and write the JSON to a file."""
    payload = results[0].to_dict() if repeats == 1 else summarize(results)
    if out_file is not None:
        out_file.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if as_json:
        click.echo(json.dumps(payload))
    else:
        for r in results:
            click.echo(_human(r))
            _contract_guidance(cfg, path, r)
        if repeats > 1 and payload["mean"]:
            mean, std = payload["mean"], payload["std"]
            click.echo(
                f"mean perplexity {mean['perplexity']:.4f} +- {std['perplexity']:.4f} "
                f"over {payload['ok_runs']}/{repeats} ok runs"
            )
