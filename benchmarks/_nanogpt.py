"""nanoGPT's side of benchmarks/seed_throughput.py: scratch copy, runs, log parsing, the pairing.

karpathy/nanoGPT is run from a checkout the user names; the project holds none of its
code. Its ``train.py`` reads ``configurator.py``, ``config/`` and ``data/<dataset>/``
relative to its working directory and writes ``out_dir`` and ``__pycache__``, so it
runs in a scratch copy of the few files it needs, never in the checkout itself.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

NEEDED = ("train.py", "model.py", "configurator.py", "config/train_shakespeare_char.py")
ITER_LINE = re.compile(r"^iter (\d+): loss [-\d.naif]+, time ([\d.]+)ms", re.M)
STEP_LINE = re.compile(r"^step (\d+): train loss ([\d.]+), val loss ([\d.]+)", re.M)
# the schedule and shape nanoGPT is given from the seed's own train.json config
SHARED_KEYS = (
    "n_layer", "n_head", "n_embd", "block_size", "batch_size", "dropout", "bias",
    "learning_rate", "min_lr", "weight_decay", "beta1", "beta2", "grad_clip",
    "warmup_iters", "gradient_accumulation_steps",
)  # fmt: skip


class Seed(Protocol):
    """The seed's side (seed_throughput.SeedRunner)."""

    def run(self, work: Path) -> dict[str, Any]: ...

    def score(self, model_path: str, device: str) -> float: ...

    def held_out(self, forward: Any, block: int) -> float: ...


@dataclasses.dataclass(frozen=True)
class Run:
    rc: int
    wall: float  # seconds from spawn to exit
    maxrss_kb: int  # the child's own peak RSS
    log: str  # stdout and stderr together


def thread_env(threads: int) -> dict[str, str]:
    """The same thread count for any torch process: OpenMP and MKL read these at start."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def run_measured(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Run:
    """Run cmd to the end (killed after timeout seconds) and measure it."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            # wait4 gives this child's own rusage (RUSAGE_CHILDREN would mix runs together)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    return Run(proc.returncode, wall, usage.ru_maxrss, text)


def parse_iter_times(log: str) -> dict[int, float]:
    """{N: seconds} from lines 'iter N: loss L, time T ms' (nanoGPT's format; the seed's too)."""
    return {int(n): float(ms) / 1000 for n, ms in ITER_LINE.findall(log)}


def prepare_scratch(checkout: Path, data: Path, scratch: Path) -> Path:
    """A working copy of nanoGPT's files with data/shakespeare_char/ made from our corpus."""
    for name in NEEDED:
        (scratch / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkout / name, scratch / name)
    dataset = scratch / "data" / "shakespeare_char"
    dataset.mkdir(parents=True)
    for name in ("train.bin", "val.bin"):
        shutil.copyfile(data / name, dataset / name)
    # nanoGPT reads vocab_size from a pickle; ours is JSON with itos as a list
    meta = json.loads((data / "meta.json").read_text())
    itos = dict(enumerate(meta["itos"])) if isinstance(meta["itos"], list) else meta["itos"]
    with open(dataset / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": meta["vocab_size"], "itos": itos, "stoi": meta["stoi"]}, f)
    return scratch


def nanogpt_command(args: argparse.Namespace, config: dict[str, Any], device: str, out: Path):
    """README's tiny CPU line, plus the seed's schedule so both train the same run."""
    iters = config["max_iters"]
    flags = {
        "device": device,
        "compile": False,
        "eval_iters": args.nanogpt_eval_iters,
        "log_interval": 1,
        "max_iters": iters,
        "lr_decay_iters": iters,
        **{k: config[k] for k in SHARED_KEYS},
        # evaluates before iteration 0 and after `iters` steps; those two are not timed
        "eval_interval": iters,
        "always_save_checkpoint": True,  # the checkpoint after `iters` steps is scored here
        "out_dir": str(out),
        "dtype": "bfloat16" if config.get("bf16") else "float32",
        "wandb_log": False,
    }
    flat = (f"--{k}={v}" for k, v in flags.items())
    return [sys.executable, "train.py", "config/train_shakespeare_char.py", *flat]


def run_nanogpt(args, scratch: Path, config: dict[str, Any], device: str, work: Path):
    """One nanoGPT training run in the scratch copy; its report, before held-out scoring."""
    iters = config["max_iters"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **thread_env(args.threads)}
    run = run_measured(nanogpt_command(args, config, device, work), env, scratch, args.timeout)
    if run.rc != 0:
        return {"status": f"nanoGPT train.py exited {run.rc}", "log_tail": run.log[-2000:]}
    times = parse_iter_times(run.log)
    steps = {int(n): float(v) for n, _, v in STEP_LINE.findall(run.log)}
    if iters not in steps or len(times) < iters:
        return {"status": "nanoGPT's log lacks its iteration lines", "log_tail": run.log[-2000:]}
    return {
        "status": "ok",
        "iters": iters,
        "wall_seconds": run.wall,
        "peak_mem_mb": run.maxrss_kb / 1024,
        "iter_seconds": [times[i] for i in range(iters)],
        # iterations 0 and `iters` hold estimate_loss (and the checkpoint save)
        "eval_iteration_seconds": times[0] + times.get(iters, 0.0),
        "own_val_loss": steps[iters],
        "model_path": str(work / "ckpt.pt"),
    }


def score_nanogpt(scratch: Path, ckpt: str, device: str, seed: Seed) -> float:
    """nanoGPT's checkpoint through the same held-out code as the seed's model."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("nanogpt_model", scratch / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    checkpoint = torch.load(ckpt, map_location=device, weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):  # GPT() prints its size; stdout is JSON
        model = module.GPT(module.GPTConfig(**checkpoint["model_args"]))
    model.load_state_dict(checkpoint["model"])
    model.to(device).eval()
    block = checkpoint["model_args"]["block_size"]

    def forward(x):
        x = x.to(device)
        return model(x, x)[0]  # with targets its forward returns every position's logits

    return seed.held_out(forward, block)


def timed(run: dict[str, Any], first: int, last: int, tokens_per_iter: int) -> dict[str, Any]:
    """A run's figures over iterations first..last (0-based, inclusive)."""
    window = run["iter_seconds"][first : last + 1]
    med = statistics.median(window)
    return {
        "median_iter_ms": 1000 * med,
        "mean_iter_ms": 1000 * statistics.fmean(window),
        "tokens_per_s": tokens_per_iter / med,
        "wall_seconds": run["wall_seconds"],
    }


def spread(values: list[float]) -> dict[str, Any]:
    """Median, quartiles and range of values, with the values themselves."""
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return {
        "median": statistics.median(values),
        "q1": q[0],
        "q3": q[2],
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def nanogpt_commit(checkout: Path, given: str | None) -> str | None:
    if given:
        return given
    proc = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.strip() or None


def alternate(args, tmp: Path, seed: Seed, scratch: Path) -> tuple[list, str | None]:
    """Pairs in ABBA order (seed first in even pairs, nanoGPT first in odd ones), so a
    machine that speeds up or slows down during the benchmark favours neither side:
    (the pairs, or the first failure). nanoGPT is given the config and device the
    seed's first run reports, so that run always comes first."""
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    first_seed: dict[str, Any] | None = None
    for i in range(args.pairs):
        order = ("seed", "nanogpt") if i % 2 == 0 or first_seed is None else ("nanogpt", "seed")
        got: dict[str, dict[str, Any]] = {}
        for side in order:
            if side == "seed":
                got[side] = seed.run(tmp / f"seed-{i}")
                first_seed = first_seed or got[side]
            else:
                assert first_seed is not None
                got[side] = run_nanogpt(args, scratch, first_seed["config"],
                                        first_seed["device"], tmp / f"nanogpt-{i}")  # fmt: skip
            if got[side]["status"] != "ok":
                tail = got[side].get("log_tail", "")[-400:]
                return pairs, f"{side} run {i}: {got[side]['status']}: {tail}"
        pairs.append((got["seed"], got["nanogpt"]))
        print(f"pair {i} ({' then '.join(order)}): done", file=sys.stderr, flush=True)
    return pairs, None


def side_by_side(args: argparse.Namespace, tmp: Path, seed: Seed) -> dict[str, Any]:
    """The alternated pairs, scored and summarised as one JSON-able report."""
    args.threads = args.threads or len(os.sched_getaffinity(0))  # one explicit count for both
    scratch = prepare_scratch(args.nanogpt.resolve(), args.data.resolve(), tmp / "nanogpt")
    # warm the page cache so the first run does not pay for reading torch from disk
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    load_before = os.getloadavg()
    pairs, failure = alternate(args, tmp, seed, scratch)
    load_after = os.getloadavg()
    if failure:
        return {"status": "failed", "error": failure}
    s0 = pairs[0][0]
    cfg, iters = s0["config"], s0["iters"]
    tokens_per_iter = cfg["batch_size"] * cfg["block_size"] * cfg["gradient_accumulation_steps"]
    first, last = max(args.skip, 1), iters - 1
    if first > last:
        return {"status": "failed", "error": f"--skip {args.skip} leaves no iteration of {iters}"}
    # scored after all runs: torch in this process would raise the children's peak RSS
    rows = []
    for s, n in pairs:
        rows.append(
            {
                "seed": timed(s, first, last, tokens_per_iter)
                | {"val_loss": seed.score(s["model_path"], s["device"])},
                "nanogpt": timed(n, first, last, tokens_per_iter)
                | {
                    "val_loss": score_nanogpt(scratch, n["model_path"], s["device"], seed),
                    "own_val_loss": n["own_val_loss"],
                    "eval_iteration_seconds": n["eval_iteration_seconds"],
                },
            }
        )
    return summarise(args, rows, s0, (first, last), tokens_per_iter, (load_before, load_after))


def summarise(args, rows, s0, window, tokens_per_iter, loads) -> dict[str, Any]:
    def col(side: str, key: str) -> list[float]:
        return [r[side][key] for r in rows]

    def side(name: str) -> dict[str, Any]:
        keys = ("median_iter_ms", "tokens_per_s", "wall_seconds", "val_loss")
        return {k: statistics.median(col(name, k)) for k in keys}

    ratio = [r["seed"]["tokens_per_s"] / r["nanogpt"]["tokens_per_s"] for r in rows]
    wall = [r["nanogpt"]["wall_seconds"] / r["seed"]["wall_seconds"] for r in rows]
    seed_sum, ng_sum = side("seed"), side("nanogpt")
    ng_sum["own_val_loss"] = statistics.median(col("nanogpt", "own_val_loss"))
    ng_sum["eval_iteration_seconds"] = statistics.median(col("nanogpt", "eval_iteration_seconds"))
    return {
        "status": "ok",
        "mode": "side_by_side",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "nanogpt_checkout": str(args.nanogpt),
        "nanogpt_commit": nanogpt_commit(args.nanogpt, args.nanogpt_commit),
        "device": s0["device"],
        "threads": args.threads,
        "torch": s0["torch"],
        "iters": s0["iters"],
        "timed_iterations": list(window),  # 0-based, inclusive, the same for both
        "tokens_per_iter": tokens_per_iter,
        "pairs": len(rows),
        "order": "ABBA: seed then nanoGPT in even pairs, nanoGPT then seed in odd ones",
        "config": {k: s0["config"][k] for k in SHARED_KEYS},
        "load_avg_1m_before_after": [loads[0][0], loads[1][0]],
        "seed": seed_sum,
        "nanogpt": ng_sum,
        "ratio_tokens_per_s": spread(ratio),  # seed / nanoGPT per pair: above 1, the seed is faster
        "ratio_wall": spread(wall),  # nanoGPT / seed whole-run wall per pair
        "val_loss_diff": seed_sum["val_loss"] - ng_sum["val_loss"],
        "held_out": (
            f"val_loss: mean cross-entropy over {args.eval_windows} evenly spaced windows of "
            "block_size tokens of val.bin, the same windows and code for both models; "
            f"own_val_loss: nanoGPT's estimate_loss ({args.nanogpt_eval_iters} random val batches)"
        ),
        "runs": rows,
    }
