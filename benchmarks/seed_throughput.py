"""Throughput and held-out loss of the seed training program; prints one JSON object.

    python benchmarks/seed_throughput.py --preset tiny --iters 100 --data data/shakespeare_char
    python benchmarks/seed_throughput.py --nanogpt ~/src/nanoGPT   # also time nanoGPT itself

``seed/train.py`` runs as a subprocess under the evaluator's environment contract
(its data folder holds ``train.bin`` and ``meta.json`` only). The held-out loss is
then computed here on ``val.bin`` over fixed, evenly spaced windows. This is a
benchmark, not the trusted evaluator: it imports the seed's own ``load()``.

With ``--nanogpt PATH`` (a checkout of karpathy/nanoGPT), nanoGPT's ``train.py``
is timed at the same model, batch and schedule, from its per-iteration log lines.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED_DIR = REPO_ROOT / "seed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "paper", "nanogpt"])
    parser.add_argument("--iters", type=int, default=None, help="default: the preset's")
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "shakespeare_char")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--eval-windows", type=int, default=256, help="held-out windows to score")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per training run")
    parser.add_argument("--nanogpt", type=Path, default=None, help="a karpathy/nanoGPT checkout")
    args = parser.parse_args(argv)

    for name in ("train.bin", "val.bin", "meta.json"):
        if not (args.data / name).is_file():
            print(
                f"seed_throughput: no {name} in {args.data}; run 'darwin data prepare'",
                file=sys.stderr,
            )
            return 2
    # torch is imported only after the training runs: a child forked from a process that
    # holds torch would report the parent's memory as its own peak RSS (Linux keeps the
    # high-water mark across exec).
    with tempfile.TemporaryDirectory(prefix="darwin-bench-") as tmp:
        report = run_seed(args, Path(tmp))
        if report["status"] != "ok":
            print(json.dumps(report, indent=2))
            return 1
        if args.nanogpt is None:
            report["nanogpt"] = {"status": "not run (pass --nanogpt PATH to a nanoGPT checkout)"}
        else:
            report["nanogpt"] = run_nanogpt(args, report["device"], report["config"], Path(tmp))
        model = load_seed_model(Path(tmp) / "out" / "model.pt", report["device"])
        val_loss, windows = held_out_loss(model, args.data / "val.bin", args.eval_windows)
    report.update(val_loss=val_loss, val_windows=windows)
    print(json.dumps(report, indent=2))
    return 0


def run_seed(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Train the seed under the DARWIN_* contract; its report, before held-out scoring."""
    data = tmp / "data"  # the contract: train.bin and meta.json, no held-out data
    data.mkdir()
    for name in ("train.bin", "meta.json"):
        (data / name).symlink_to((args.data / name).resolve())
    out = tmp / "out"
    env = {
        **os.environ,
        "DARWIN_DATA": str(data),
        "DARWIN_OUT": str(out),
        "DARWIN_PRESET": args.preset,
        "DARWIN_SEED": str(args.seed),
        "DARWIN_DEVICE": args.device,
    }
    if args.iters is not None:
        env["DARWIN_MAX_ITERS"] = str(args.iters)
    if args.threads is not None:
        env["DARWIN_THREADS"] = str(args.threads)
    cmd = [sys.executable, str(SEED_DIR / "train.py")]
    rc, wall, maxrss_kb, log = run_measured(cmd, env, REPO_ROOT, args.timeout)
    if rc != 0:
        return {"status": f"seed/train.py exited {rc}", "log_tail": log[-2000:]}
    train = json.loads((out / "train.json").read_text())
    on_gpu = train["device"].startswith("cuda")
    return {
        "status": "ok",
        "preset": args.preset,
        "iters": train["iterations"],
        "tokens_per_s": train["tokens_per_s"],
        "train_seconds": train["train_seconds"],
        "wall_seconds": wall,
        "final_train_loss": train["final_train_loss"],
        # on GPU the child's own CUDA peak; on CPU the child's peak RSS as the kernel saw it
        "peak_mem_mb": train.get("peak_mem_mb") if on_gpu else maxrss_kb / 1024,
        "device": train["device"],
        "device_name": train.get("device_name", train["device"]),
        "num_params": train["num_params"],
        "flops_per_token": train["flops_per_token"],
        "threads": train["config"].get("threads"),
        "torch": train.get("torch"),
        "config": train["config"],
    }


def run_measured(
    cmd: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> tuple[int, float, int, str]:
    """Run cmd; return (exit code, wall seconds, the child's peak RSS in KiB, its output)."""
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
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    return proc.returncode, wall, usage.ru_maxrss, text


def load_seed_model(path: Path, device: str) -> Any:
    """Import seed/model.py by path (not as a package) and call its load()."""
    sys.dont_write_bytecode = True  # leave no __pycache__ in seed/
    spec = importlib.util.spec_from_file_location("darwin_seed_model", SEED_DIR / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load(str(path), device)


def held_out_loss(model: Any, val_path: Path, windows: int) -> tuple[float, int]:
    """(mean next-token cross-entropy in nats, windows used) over evenly spaced windows."""
    import torch

    device = next(model.parameters()).device
    val = torch.from_numpy(np.fromfile(val_path, dtype=np.uint16).astype(np.int64))
    block = model.config.block_size
    n = min(windows, (len(val) - 1) // block)
    starts = torch.linspace(0, len(val) - block - 1, n).long()  # fixed, deterministic
    offsets = torch.arange(block)
    total, count = 0.0, 0
    for chunk in starts.split(32):
        idx = chunk[:, None] + offsets  # (b, block)
        x, y = val[idx].to(device), val[idx + 1].to(device)
        with torch.no_grad():
            logits = model(x).float()  # (b, block, vocab)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"
        )
        total += loss.item()
        count += y.numel()
    return total / count, n


def run_nanogpt(
    args: argparse.Namespace, device: str, config: dict[str, Any], tmp: Path
) -> dict[str, Any]:
    """Time karpathy/nanoGPT's train.py at the seed's configuration, from its log lines."""
    checkout = args.nanogpt.resolve()
    needed = ("train.py", "model.py", "configurator.py")
    missing = [name for name in needed if not (checkout / name).is_file()]
    if missing:
        return {"status": f"not a nanoGPT checkout: no {', '.join(missing)} in {checkout}"}
    # nanoGPT reads data/<dataset>/ and configurator.py relative to its working directory
    work = tmp / "nanogpt"
    dataset = work / "data" / "darwin_bench"
    dataset.mkdir(parents=True)
    for name in needed:
        (work / name).symlink_to(checkout / name)
    for name in ("train.bin", "val.bin"):
        (dataset / name).symlink_to((args.data / name).resolve())
    meta = json.loads((args.data / "meta.json").read_text())
    itos = dict(enumerate(meta["itos"]))
    with open(dataset / "meta.pkl", "wb") as f:
        pickle.dump({"vocab_size": meta["vocab_size"], "itos": itos, "stoi": meta["stoi"]}, f)
    iters = config["max_iters"]
    flags = {
        "dataset": "darwin_bench",
        "out_dir": str(work / "out"),
        "device": device,
        "dtype": "bfloat16" if config.get("bf16") else "float32",
        "compile": False,
        "wandb_log": False,
        "always_save_checkpoint": False,
        "eval_interval": iters + 1,  # evaluates once, at iteration 0, which is not timed
        "eval_iters": 1,
        "log_interval": 1,
        "max_iters": iters,
        "lr_decay_iters": iters,
        **{
            k: config[k]
            for k in (
                "n_layer", "n_head", "n_embd", "block_size", "batch_size", "dropout", "bias",
                "learning_rate", "min_lr", "weight_decay", "beta1", "beta2", "grad_clip",
                "warmup_iters", "gradient_accumulation_steps",
            )
        },
    }  # fmt: skip
    cmd = [sys.executable, "train.py", *(f"--{k}={v}" for k, v in flags.items())]
    rc, wall, maxrss_kb, log = run_measured(cmd, dict(os.environ), work, args.timeout)
    if rc != 0:
        return {"status": f"nanoGPT train.py exited {rc}", "log_tail": log[-2000:]}
    # "iter N: loss L, time T ms, mfu M%": iteration 0 holds the evaluation, so skip it
    times = [
        float(ms) / 1000
        for it, ms in re.findall(r"^iter (\d+): loss [\d.]+, time ([\d.]+)ms", log, re.M)
        if int(it) > 0
    ]
    if not times:
        return {"status": "no 'iter N: ... time Xms' lines in nanoGPT's output"}
    tokens_per_iter = config["batch_size"] * config["block_size"]
    tokens_per_iter *= config["gradient_accumulation_steps"]
    seconds = sum(times)
    return {
        "status": "ok",
        "iters": len(times),
        "train_seconds": seconds,
        "tokens_per_s": len(times) * tokens_per_iter / seconds if seconds > 0 else math.nan,
        "wall_seconds": wall,
        "peak_mem_mb": maxrss_kb / 1024,
    }


if __name__ == "__main__":
    sys.exit(main())
