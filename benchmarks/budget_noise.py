"""Run-to-run noise of the two budget kinds on this machine; prints one JSON object.

    python benchmarks/budget_noise.py --iters 100 --seconds 60 --repeats 3

The seed is evaluated ``--repeats`` times (seeds 0, 1, ...) under an iteration
budget and under a wall-clock budget with ``darwin evaluate --json --sandbox
bwrap``, as ``darwin run`` evaluates its baseline. For each kind: the mean,
standard deviation and coefficient of variation of the held-out perplexity, of
the measured training wall time, and of the iterations the program did. The
perplexity's spread is what the champion gate has to see through; the wall
time's is what ``budget.max_cost_ratio`` has to leave room for.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def spread(values: list[float]) -> dict[str, float]:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(mean, 4), "std": round(std, 4), "cv": round(std / mean, 4) if mean else 0}


def run_kind(data: Path, budget: list[str], repeats: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "OPENAI_API_KEY")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    cmd = [sys.executable, "-m", "darwin_bot", "evaluate", str(REPO_ROOT), "--json", "--data",
           str(data), "--sandbox", "bwrap", "--repeats", str(repeats), "--seed", "0", *budget]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-300:]}
    runs = json.loads(proc.stdout)["runs"]
    ok = [r for r in runs if r["status"] == "ok"]
    out: dict[str, Any] = {
        "budget": budget,
        "ok_runs": len(ok),
        "statuses": [r["status"] for r in runs],
    }
    if ok:
        out["perplexity"] = spread([r["metrics"]["perplexity"] for r in ok])
        out["train_wall_s"] = spread([r["extra"]["train_wall_s"] for r in ok])
        out["iterations"] = spread([float(r["extra"]["iterations"]) for r in ok])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "shakespeare_char")
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if not (args.data / "val.bin").is_file():
        print(
            f"budget_noise: no val.bin in {args.data}; run 'darwin data prepare'", file=sys.stderr
        )
        return 2
    start = time.monotonic()
    out = {
        "note": "shared 2-core CPU: the load of other work is part of the noise",
        "load_average": os.getloadavg()[0],
        "iters": run_kind(args.data, ["--iters", str(args.iters)], args.repeats),
        "seconds": run_kind(args.data, ["--seconds", str(args.seconds)], args.repeats),
    }
    out["wall_s"] = round(time.monotonic() - start, 1)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
