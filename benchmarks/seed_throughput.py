"""Throughput and held-out loss of the seed, alone or side by side with nanoGPT; prints JSON.

    python benchmarks/seed_throughput.py --preset tiny --iters 100 --data data/shakespeare_char
    python benchmarks/seed_throughput.py --nanogpt ~/src/nanoGPT --pairs 5 --iters 200

``seed/train.py`` runs as a subprocess under the evaluator's environment contract
(its data folder holds ``train.bin`` and ``meta.json`` only). The held-out loss is
computed here on ``val.bin`` over fixed, evenly spaced windows of ``block_size``
tokens. This is a benchmark, not the trusted evaluator: it imports the seed's own
``load()``.

With ``--nanogpt PATH`` (a checkout of karpathy/nanoGPT), the seed and nanoGPT's own
``train.py`` run in ABBA pairs (seed, nanoGPT, nanoGPT, seed, ...) at the same model,
batch, schedule and thread count; nanoGPT runs from a scratch copy of PATH whose
``data/shakespeare_char/`` is prepared from our corpus (PATH is never written to).
Both are timed the same way: each logs every iteration's wall time
(``iter N: loss L, time T ms``); the figure is the median over the same iterations,
which leaves out the warm-up and nanoGPT's evaluation iterations. Held-out loss of
both models is computed here by the same code over the same windows; nanoGPT's own
``estimate_loss`` (random val batches) is reported beside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _nanogpt as ng  # noqa: E402  (benchmarks/_nanogpt.py: nanoGPT's side, log parsing)

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
    parser.add_argument("--seed-dir", type=Path, default=SEED_DIR, help="a seed/ folder to time")
    parser.add_argument("--nanogpt", type=Path, default=None, help="a karpathy/nanoGPT checkout")
    parser.add_argument("--pairs", type=int, default=5, help="alternated pairs with --nanogpt")
    parser.add_argument("--skip", type=int, default=10, help="warm-up iterations left out")
    parser.add_argument("--nanogpt-eval-iters", type=int, default=20, help="its --eval_iters")
    parser.add_argument("--nanogpt-commit", default=None, help="recorded when PATH has no .git")
    args = parser.parse_args(argv)

    problem = check_args(args)
    if problem:
        print(f"seed_throughput: {problem}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="darwin-bench-") as tmp:
        if args.nanogpt is not None:
            report = ng.side_by_side(args, Path(tmp), SeedRunner(args, Path(tmp)))
        else:
            report = single(args, Path(tmp))
    print(json.dumps(report, indent=2))
    return 0 if report.get("status") == "ok" else 1


def check_args(args: argparse.Namespace) -> str | None:
    """A one-line description of what is wrong with the arguments, or None."""
    for name in ("train.bin", "val.bin", "meta.json"):
        if not (args.data / name).is_file():
            return f"no {name} in {args.data}; run 'darwin data prepare'"
    if not (args.seed_dir / "train.py").is_file():
        return f"no train.py in --seed-dir {args.seed_dir}"
    if args.nanogpt is not None:
        missing = [n for n in ng.NEEDED if not (args.nanogpt / n).is_file()]
        if missing:
            return f"--nanogpt {args.nanogpt} is not a nanoGPT checkout (no {', '.join(missing)})"
        if args.pairs < 1 or args.skip < 0:
            return "--pairs must be at least 1 and --skip at least 0"
    return None


def single(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """One seed run and its held-out loss (the mode without --nanogpt)."""
    report = SeedRunner(args, tmp).run(tmp / "run")
    if report["status"] != "ok":
        return report
    report.pop("iter_seconds")
    report["nanogpt"] = {"status": "not run (pass --nanogpt PATH to a nanoGPT checkout)"}
    # torch is imported only after the training run: a child forked from a process that
    # holds torch would report the parent's memory as its own peak RSS (Linux keeps the
    # high-water mark across exec).
    model = load_seed_model(args.seed_dir, tmp / "run" / "out" / "model.pt", report["device"])
    device = report["device"]
    report["val_loss"], report["val_windows"] = held_out_loss(
        lambda x: model(x.to(device)), args.data / "val.bin", model.config.block_size,
        args.eval_windows,
    )  # fmt: skip
    return report


class SeedRunner:
    """Runs seed/train.py under the DARWIN_* contract and reads what it wrote."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.data = tmp / "seed-data"  # the contract: train.bin and meta.json, no held-out data
        self.data.mkdir(exist_ok=True)
        for name in ("train.bin", "meta.json"):
            if not (self.data / name).exists():
                (self.data / name).symlink_to((args.data / name).resolve())

    def env(self, out: Path) -> dict[str, str]:
        args = self.args
        env = {k: v for k, v in os.environ.items() if not k.startswith("DARWIN_")}
        env.update(
            DARWIN_DATA=str(self.data),
            DARWIN_OUT=str(out),
            DARWIN_PRESET=args.preset,
            DARWIN_SEED=str(args.seed),
            DARWIN_DEVICE=args.device,
            DARWIN_LOG_INTERVAL="1",  # every iteration's time, as nanoGPT's log_interval=1
            PYTHONDONTWRITEBYTECODE="1",
        )
        if args.iters is not None:
            env["DARWIN_MAX_ITERS"] = str(args.iters)
        if args.threads is not None:
            env.update(ng.thread_env(args.threads), DARWIN_THREADS=str(args.threads))
        return env

    def run(self, work: Path) -> dict[str, Any]:
        """Train once in work/; the run's report (held-out loss is scored later)."""
        work.mkdir(parents=True)
        out = work / "out"
        cmd = [sys.executable, str(self.args.seed_dir / "train.py")]
        run = ng.run_measured(cmd, self.env(out), work, self.args.timeout)
        if run.rc != 0:
            return {"status": f"seed/train.py exited {run.rc}", "log_tail": run.log[-2000:]}
        train = json.loads((out / "train.json").read_text())
        on_gpu = train["device"].startswith("cuda")
        # "iter N" counts iterations done (1-based); index 0 is the first iteration
        times = {n - 1: s for n, s in ng.parse_iter_times(run.log).items()}
        return {
            "status": "ok",
            "preset": self.args.preset,
            "iters": train["iterations"],
            "tokens_per_s": train["tokens_per_s"],
            "train_seconds": train["train_seconds"],
            "wall_seconds": run.wall,
            "final_train_loss": train["final_train_loss"],
            # on GPU the child's own CUDA peak; on CPU the child's peak RSS as the kernel saw it
            "peak_mem_mb": train.get("peak_mem_mb") if on_gpu else run.maxrss_kb / 1024,
            "device": train["device"],
            "device_name": train.get("device_name", train["device"]),
            "num_params": train["num_params"],
            "flops_per_token": train["flops_per_token"],
            "threads": train["config"].get("threads"),
            "torch": train.get("torch"),
            "config": train["config"],
            "iter_seconds": [times[i] for i in sorted(times)],
            "model_path": str(out / "model.pt"),
        }

    def score(self, model_path: str, device: str) -> float:
        """The held-out loss of a model this runner trained."""
        model = load_seed_model(self.args.seed_dir, Path(model_path), device)
        return self.held_out(lambda x: model(x.to(device)), model.config.block_size)

    def held_out(self, forward: Any, block: int) -> float:
        """The held-out loss of any forward (idx -> logits), on this run's windows."""
        return held_out_loss(forward, self.args.data / "val.bin", block, self.args.eval_windows)[0]


def load_seed_model(seed_dir: Path, path: Path, device: str) -> Any:
    """Import seed_dir/model.py by path (not as a package) and call its load()."""
    sys.dont_write_bytecode = True  # leave no __pycache__ in seed/
    spec = importlib.util.spec_from_file_location("darwin_seed_model", seed_dir / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load(str(path), device)


def held_out_loss(forward: Any, val_path: Path, block: int, windows: int) -> tuple[float, int]:
    """(mean next-token cross-entropy in nats, windows used) over evenly spaced windows.

    forward maps idx (b, block) to logits (b, block, vocab); the windows depend only on
    the length of val.bin, block and windows, so two models see the very same tokens.
    """
    import torch

    val = torch.from_numpy(np.fromfile(val_path, dtype=np.uint16).astype(np.int64))
    n = min(windows, (len(val) - 1) // block)
    starts = torch.linspace(0, len(val) - block - 1, n).long()  # fixed, deterministic
    offsets = torch.arange(block)
    total, count = 0.0, 0
    for chunk in starts.split(32):
        idx = chunk[:, None] + offsets  # (b, block)
        with torch.no_grad():
            logits = forward(val[idx]).float()  # (b, block, vocab)
        y = val[idx + 1].to(logits.device)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"
        )
        total += loss.item()
        count += y.numel()
    return total / count, n


if __name__ == "__main__":
    sys.exit(main())
