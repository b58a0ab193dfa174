"""The trusted evaluation harness: train in the sandbox, score in a second one.

Flow of :func:`evaluate_tree`:

1. Check the inputs: a tree without ``seed/train.py`` and ``seed/model.py``, a
   data folder without ``train.bin``/``val.bin``/``meta.json``, are the user's
   errors (``ConfigError``/``DataError``). Everything the agent's code does
   wrong from here on is a value: an ``EvalResult`` with status ``failed``,
   ``timeout`` or ``rejected``.
2. Copy the evolvable paths of the tree (only those: a repository checkout may
   hold the held-out split) and ``train.bin`` + ``meta.json`` into a scratch
   folder. ``val.bin`` is never mounted into the training sandbox.
3. Run ``python seed/train.py`` in the sandbox under the budget.
4. Score in a second sandbox: the worker gets the model and a file of input
   windows, and streams logits back; the loss is computed here.
5. MFU and throughput from the run's report, checked against what was measured.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darwin_bot.config import Config, ProgramConfig
from darwin_bot.core.results import Budget, EvalResult, Metrics
from darwin_bot.errors import ConfigError, DataError
from darwin_bot.evaluate import peak as peak_mod
from darwin_bot.evaluate.sandbox import (
    Limits,
    Mount,
    SandboxRun,
    python_paths,
    resolve_backend,
    run_sandboxed,
    scrub_env,
)
from darwin_bot.evaluate.scoring import Scorer, ScoreRejected, plan_windows
from darwin_bot.program import LaunchRequest, contract_for, require_files

# Bump when anything that changes a score changes: it is half of the cache key.
EVALUATOR_VERSION = "1"

# The scoring context per preset (seed/train.py's block_size). It is fixed by the
# trusted side, not read from the agent's report, so every agent of a preset is
# scored on the same windows; a model must accept windows of this length.
EVAL_CONTEXT: dict[str, int] = {"tiny": 64, "paper": 256, "nanogpt": 256}
SMOKE_TRAIN_TOKENS = 50_000  # the slice of train.bin a smoke test trains on
SMOKE_WINDOWS = 4
MAX_REPORT_BYTES = 1 << 20  # train.json larger than this is not a report
WORKER = Path(__file__).with_name("score_worker.py")


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
    paths: tuple[str, ...] = ("seed/",)
    threads: int | None = None  # torch CPU threads (DARWIN_THREADS): parallel evals share cores
    # darwin:contract seam: which program contract (darwin_bot/program)
    program: ProgramConfig = ProgramConfig()

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
            smoke=smoke,
            paths=cfg.evolution.evolvable,
            program=cfg.program,  # darwin:contract seam
        )
        return dataclasses.replace(opts, **changes)


# ----------------------------------------------------------------------- hashing


def tree_hash(tree: Path, paths: Sequence[str] = ("seed/",)) -> str:
    """A content hash of the files under ``paths`` of ``tree``: the evaluation cache key.

    Covers relative paths, file bytes and symlink targets; ignores bytecode.
    """
    h = hashlib.sha256()
    for rel, path in _evolvable_files(tree, paths):
        h.update(rel.encode() + b"\0")
        if path.is_symlink():
            h.update(b"L" + os.readlink(path).encode())
        else:
            h.update(b"F" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def _evolvable_files(tree: Path, paths: Sequence[str]) -> list[tuple[str, Path]]:
    found: dict[str, Path] = {}
    for spec in paths:
        root = tree / spec
        if root.is_symlink() or root.is_file():
            found[spec.rstrip("/")] = root
            continue
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):  # does not follow links
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in filenames:
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(dirpath) / name
                found[path.relative_to(tree).as_posix()] = path
            for name in dirnames:
                if (Path(dirpath) / name).is_symlink():
                    path = Path(dirpath) / name
                    found[path.relative_to(tree).as_posix()] = path
    return sorted(found.items())


# ----------------------------------------------------------------------- inputs


def _read_meta(data_dir: Path) -> dict[str, Any]:
    for name in ("train.bin", "val.bin", "meta.json"):
        if not (data_dir / name).is_file():
            raise DataError(
                f"{data_dir / name} is missing; run 'darwin data prepare' (or pass --data DIR)"
            )
    try:
        meta = json.loads((data_dir / "meta.json").read_text(encoding="utf-8"))
        vocab = int(meta["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{data_dir / 'meta.json'} is not valid ({exc}); run 'darwin data prepare' again"
        ) from exc
    if not 1 < vocab <= 65536:
        raise DataError(f"{data_dir / 'meta.json'}: vocab_size {vocab} does not fit uint16 tokens")
    return meta


def _check_options(opts: EvalOptions) -> None:
    # darwin:contract seam: ConfigError on a preset the contract has no scoring context for
    contract_for(opts.program).eval_context(opts.preset)
    if opts.timeout_s <= 0:
        raise ConfigError("the evaluation timeout must be positive")
    if opts.eval_windows < 1:
        raise ConfigError("eval_windows must be at least 1")


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ------------------------------------------------------------------- scratch dirs


def _world_readable(root: Path) -> None:
    """a+rX on a tree we made, so a sandbox running under another uid can read it."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):  # chmod would follow it out of the tree
                continue
            extra = 0o555 if stat.S_ISDIR(st.st_mode) or st.st_mode & 0o111 else 0o444
            path.chmod(stat.S_IMODE(st.st_mode) | extra)
    root.chmod(0o755)


def _copy_tree(tree: Path, paths: Sequence[str], dest: Path) -> None:
    dest.mkdir()
    for rel, src in _evolvable_files(tree, paths):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():  # kept as a link: its target is not in the sandbox
            target.symlink_to(os.readlink(src))
        else:
            shutil.copyfile(src, target)
    _world_readable(dest)


def _make_train_data(data_dir: Path, dest: Path, smoke: bool) -> None:
    dest.mkdir()
    shutil.copyfile(data_dir / "meta.json", dest / "meta.json")
    if smoke:
        tokens = np.fromfile(data_dir / "train.bin", dtype=np.uint16, count=SMOKE_TRAIN_TOKENS)
        tokens.tofile(dest / "train.bin")
    else:
        try:
            os.link(data_dir / "train.bin", dest / "train.bin")  # no copy of a large file
        except OSError:
            shutil.copyfile(data_dir / "train.bin", dest / "train.bin")
        if not (dest / "train.bin").stat().st_mode & 0o004:  # a link shares the original's mode
            (dest / "train.bin").unlink()
            shutil.copyfile(data_dir / "train.bin", dest / "train.bin")
    _world_readable(dest)


def _read_report(out: Path) -> dict[str, Any]:
    """The agent's train.json, read without following links and with a size cap."""
    try:
        fd = os.open(out / "train.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise ValueError("train.py wrote no train.json (or it is not a regular file)") from exc
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ValueError("train.json is not a regular file")
        raw = f.read(MAX_REPORT_BYTES + 1)
    if len(raw) > MAX_REPORT_BYTES:
        raise ValueError("train.json is larger than 1 MiB")
    report = json.loads(raw)
    if not isinstance(report, dict):
        raise ValueError("train.json is not a JSON object")
    return report


def _number(report: dict[str, Any], *keys: str) -> float:
    value: Any = report
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"train.json: {'.'.join(keys)} must be a finite number, got {value!r}")
    return float(value)


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

    def result(
        self,
        status: str,
        reason: str,
        metrics: Metrics | None = None,
        log_tail: str = "",
        device_name: str = "",
        **extra: Any,
    ) -> EvalResult:
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
    contract = contract_for(opts.program)  # darwin:contract seam
    require_files(contract, tree)  # darwin:contract seam (was _check_tree: ConfigError)
    _check_options(opts)
    data_dir = Path(opts.data_dir).resolve()
    meta = _read_meta(data_dir)
    backend = resolve_backend(opts.sandbox)
    exposed = [p for p in python_paths() if data_dir.is_relative_to(p)]
    if exposed and backend == "bwrap":
        raise DataError(
            f"{data_dir} lies inside {exposed[0]}, which every sandbox sees read-only; "
            "move the data folder out of Python's installation"
        )
    device = resolve_device(opts.device)
    with tempfile.TemporaryDirectory(prefix="darwin-eval-") as tmp:
        # darwin:contract seam: the evolvable paths + the program's support files
        paths = contract.copy_paths(opts.paths)
        ctx = _Context(tree, opts, backend, device, tree_hash(tree, paths), Path(tmp), meta)
        return _evaluate(ctx, data_dir)


def evaluate_repeats(tree: Path, opts: EvalOptions, repeats: int) -> list[EvalResult]:
    """``repeats`` evaluations with seeds ``opts.seed``, ``opts.seed + 1``, ..."""
    if repeats < 1:
        raise ConfigError("repeats must be at least 1")
    return [
        evaluate_tree(tree, dataclasses.replace(opts, seed=opts.seed + i)) for i in range(repeats)
    ]


def _evaluate(ctx: _Context, data_dir: Path) -> EvalResult:
    opts, scratch = ctx.opts, ctx.scratch
    contract = contract_for(opts.program)  # darwin:contract seam
    misses = [p.line() for p in contract.static_parts(ctx.tree, opts.preset) if not p.ok]
    if misses:  # darwin:contract seam: what darwin check would print, as the reason
        return ctx.result("failed", "the program breaks its contract: " + "; ".join(misses))
    _copy_tree(ctx.tree, contract.copy_paths(opts.paths), scratch / "tree")
    _make_train_data(data_dir, scratch / "data", opts.smoke)
    contract.stage_data(scratch / "data")  # darwin:contract seam: meta.pkl, stand-in val.bin
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
            **({"DARWIN_THREADS": str(opts.threads)} if opts.threads else {}),
        },
        home=home,
    )
    limits = Limits(opts.timeout_s, opts.memory_mb, opts.max_procs)
    launch = contract.launch(LaunchRequest(  # darwin:contract seam: argv, cwd, env of training
        opts.budget, opts.seed, ctx.device, opts.preset, data_m.inside(ctx.backend),
        out_m.inside(ctx.backend), opts.smoke, opts.threads), ctx.tree)  # fmt: skip
    env.update(launch.env)
    train = run_sandboxed(
        [sys.executable, *launch.argv],
        backend=ctx.backend, mounts=[tree_m, data_m, out_m], cwd=launch.cwd_in(tree_m.inside(ctx.backend)),
        env=env, limits=limits, device=ctx.device,
    )  # fmt: skip
    extra: dict[str, Any] = {
        "train_wall_s": round(train.wall_s, 3),
        "train_max_rss_mb": round(train.max_rss_mb, 1),
    }
    if train.timed_out:
        return ctx.result("timeout", f"training ran past the {opts.timeout_s:g} s limit and was killed",
                          log_tail=train.log_tail, **extra)  # fmt: skip
    if train.returncode != 0:
        return ctx.result("failed", f"train.py exited with code {train.returncode}",
                          log_tail=train.log_tail, **extra)  # fmt: skip
    problem = contract.output_problem(scratch / "out")  # darwin:contract seam: model.pt / ckpt.pt
    if problem:
        return ctx.result("failed", problem, log_tail=train.log_tail, **extra)
    try:
        claimed = contract.read_report(scratch / "out", train.wall_s)  # darwin:contract seam
        if claimed is not None:  # a contract with no train.json (nanogpt: from ckpt.pt)
            report: dict[str, Any] = {}
            iterations, tokens_seen = claimed.iterations, claimed.tokens_seen
            train_seconds, shape = claimed.train_seconds, claimed.shape
        else:
            report = _read_report(scratch / "out")
            iterations = _number(report, "iterations")
            tokens_seen = _number(report, "tokens_seen")
            train_seconds = _number(report, "train_seconds")
            shape = {
                k: int(_number(report, "config", k))
                for k in ("n_layer", "n_head", "n_embd", "block_size")
            }
    except ValueError as exc:
        return ctx.result("failed", f"bad training report: {exc}", log_tail=train.log_tail, **extra)
    extra.update(
        iterations=int(iterations),
        tokens_seen=int(tokens_seen),
        reported_train_seconds=train_seconds,
    )
    return _score(ctx, data_dir, train, report, shape, extra)


def _score(ctx: _Context, data_dir: Path, train: SandboxRun, report: dict[str, Any],
           shape: dict[str, int], extra: dict[str, Any]) -> EvalResult:  # fmt: skip
    opts, scratch = ctx.opts, ctx.scratch
    vocab = int(ctx.meta["vocab_size"])
    val = np.fromfile(data_dir / "val.bin", dtype=np.uint16)
    n_windows = SMOKE_WINDOWS if opts.smoke else (None if opts.full else opts.eval_windows)
    contract = contract_for(opts.program)  # darwin:contract seam
    plan = plan_windows(
        val, contract.eval_context(opts.preset), vocab, n_windows, n_probes=2 if opts.smoke else 4
    )
    (scratch / "inputs").mkdir()
    np.save(scratch / "inputs" / "inputs.npy", plan.inputs)
    _world_readable(scratch / "inputs")
    _world_readable(scratch / "out")  # the scoring sandbox may run under another uid
    tree_m, inputs_m = Mount("tree", scratch / "tree"), Mount("inputs", scratch / "inputs")
    model_m = Mount("model", scratch / "out")  # read-only now
    worker = f"/sandbox/darwin/{WORKER.name}" if ctx.backend == "bwrap" else str(WORKER)
    command = [
        sys.executable, worker, "--tree", tree_m.inside(ctx.backend),
        "--model", f"{model_m.inside(ctx.backend)}/{contract.model_file}",  # darwin:contract seam
        "--inputs", f"{inputs_m.inside(ctx.backend)}/inputs.npy",
        "--device", ctx.device, "--batch", str(plan.batch), *contract.worker_args(),
    ]  # fmt: skip
    home = "/tmp" if ctx.backend == "bwrap" else str(scratch / "home")
    scorer = Scorer(plan, vocab)
    run = run_sandboxed(
        command, backend=ctx.backend, mounts=[tree_m, inputs_m, model_m], cwd=tree_m.inside(ctx.backend),
        env=scrub_env({"DARWIN_DEVICE": ctx.device}, home=home),
        limits=Limits(opts.timeout_s, opts.memory_mb, opts.max_procs), device=ctx.device,
        stdout_consumer=scorer.consume,
    )  # fmt: skip
    extra["score_wall_s"] = round(run.wall_s, 3)
    log = train.log_tail + ("\n--- scoring ---\n" + run.log_tail if run.log_tail else "")
    if run.timed_out:
        return ctx.result(
            "timeout", f"scoring ran past the {opts.timeout_s:g} s limit", log_tail=log, **extra
        )
    if isinstance(run.consumer_error, ScoreRejected):
        return ctx.result("rejected", str(run.consumer_error), log_tail=log, **extra)
    if run.returncode != 0 or run.consumer_error is not None:
        why = f"exit code {run.returncode}" if run.returncode else str(run.consumer_error)
        return ctx.result("failed", f"scoring failed: loading or running the model crashed ({why})",
                          log_tail=log, **extra)  # fmt: skip
    return _finish(ctx, train, scorer, shape, extra, log)


def _finish(ctx: _Context, train: SandboxRun, scorer: Scorer, shape: dict[str, int],
            extra: dict[str, Any], log: str) -> EvalResult:  # fmt: skip
    tokens_seen = float(extra["tokens_seen"])
    # Throughput is the run's own (it knows when its loop started), but its
    # seconds are clamped to what we measured: never more than the sandboxed
    # process's wall time, and never less than half of it. A run cannot claim
    # more than 2x the throughput its wall time allows; a very short run whose
    # start-up (imports, data, save) exceeds half its wall time is under-rated,
    # equally for every agent.
    seconds = min(max(float(extra["reported_train_seconds"]), 0.5 * train.wall_s), train.wall_s)
    tokens_per_s = tokens_seen / seconds if seconds > 0 else 0.0
    # FLOPs per token (PaLM appendix B): 6N + 12*L*H*Q*T, N from the loaded model,
    # L/H/Q/T from the report's config. The parameter count is taken only up to
    # twice what that shape implies (12*L*d^2 + V*d), so unused parameters cannot
    # buy MFU.
    L, H, d, T = shape["n_layer"], shape["n_head"], shape["n_embd"], shape["block_size"]
    vocab = int(ctx.meta["vocab_size"])
    shape_params = 12 * L * d * d + vocab * d
    n_params = min(scorer.num_params, 2 * shape_params)
    flops_per_token = 6 * n_params + 12 * L * H * (d // max(H, 1)) * T
    device_peak = peak_mod.peak(ctx.device, threads=ctx.opts.threads)
    mfu = flops_per_token * tokens_per_s / device_peak.flops
    metrics = Metrics(
        val_loss=scorer.val_loss,
        perplexity=math.exp(min(scorer.val_loss, 700.0)),
        mfu=mfu,
        tokens_per_s=tokens_per_s,
        train_seconds=seconds,
        peak_mem_mb=train.max_rss_mb,
    )
    extra.update(
        num_params=scorer.num_params, flops_per_token=flops_per_token, peak_flops=device_peak.flops,
        peak_source=device_peak.source, eval_windows=int(scorer.plan.scored.sum()),
        eval_tokens=scorer.tokens, causality_probes=len(scorer.plan.probes), timestamp=time.time(),
    )  # fmt: skip
    return ctx.result("ok", "", metrics, log_tail=log, device_name=device_peak.device, **extra)
