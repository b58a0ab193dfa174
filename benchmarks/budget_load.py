"""Does a busy machine change an evolution's decisions? Prints one JSON object.

    python benchmarks/budget_load.py                 # population 3, 2 generations, 30 iters
    python benchmarks/budget_load.py --hogs 3 --iters 30 --generations 2

The same small evolution (heuristic mutator, tiny preset, the default cost
limit ``budget.max_cost_ratio``) runs twice from the same start: once as the
machine is, and once with ``--hogs`` CPU-bound processes that start as soon as
generation 0 (the baseline) is recorded and run to the end, as on a machine
that gets busy later. Each run is ``darwin run`` on its own scratch repository.

It prints, per run, every generation's decisions (statuses, survivors, culled,
champion) and every evaluation's measured figures (training and scoring CPU
and wall time, busy share, cost ratio); then whether the decisions agree, and
per tree and seed evaluated in both runs, the loaded over the quiet ratio of
each figure (the noise that load adds to it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from darwin_bot.cli.demo import make_scratch_repo  # noqa: E402
from darwin_bot.program.corpus import prepare_synthetic  # noqa: E402
from darwin_bot.store.memory import MemoryStore  # noqa: E402

TOML = """\
[evolution]
population = {population}
survivors = 2
generations = {generations}
seed = 7

[budget]
preset = "tiny"
iters = {iters}
repeats = 2
smoke_iters = 2
data = "data/corpus"

[fitness]
mfu_weight = 0.0   # MFU is throughput, which the load changes by design

[llm]
backend = "heuristic"

[sandbox]
timeout_s = 600.0
smoke_timeout_s = 300.0
"""

FIGURES = ("train_cpu_s", "train_wall_s", "score_cpu_s", "score_wall_s")


def _scratch(root: Path, args: argparse.Namespace) -> Path:
    toml = TOML.format(population=args.population, generations=args.generations, iters=args.iters)
    make_scratch_repo(root, toml)
    prepare_synthetic(root / "data" / "corpus", seed=0, tokens=60_000)
    return root


def _hogs(n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(n)]


def _run(root: Path, args: argparse.Namespace, hogs: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "OPENAI_API_KEY")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    cmd = [sys.executable, "-m", "darwin_bot", "run", "--repo", str(root),
           "--generations", str(args.generations), "--workers", "1"]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    running: list[subprocess.Popen[bytes]] = []
    baseline = root / "memory" / "g000"
    try:
        while proc.poll() is None:
            if hogs and not running and (baseline / "summary.json").exists():
                running = _hogs(hogs)  # the baseline is measured: the machine gets busy now
            time.sleep(0.5)
        _, err = proc.communicate()
    finally:
        for hog in running:
            hog.kill()
            hog.wait()
    return {
        "returncode": proc.returncode,
        "stderr_tail": err.decode(errors="replace")[-1500:] if proc.returncode else "",
        "wall_s": round(time.monotonic() - started, 1),
        "hogs": hogs,
        "loadavg_end": os.getloadavg()[0],
        **_state(root),
    }


def _state(root: Path) -> dict[str, Any]:
    memory = MemoryStore(root / "memory")
    decisions = [
        {
            "generation": s["generation"],
            "ranking": [(r["agent"], r["status"]) for r in s["ranking"]],
            "survivors": s["survivors"],
            "culled": s["culled"],
            "champion": s.get("champion"),
        }
        for s in memory.generations()
    ]
    evals = {}
    for path in sorted((root / "memory").rglob("evals/*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        extra = data.get("extra") or {}
        key = f"{path.parent.name[:10]}/s{data.get('seed')}"
        evals[key] = {
            "status": data.get("status"),
            **{f: extra.get(f) for f in (*FIGURES, "train_busy", "contended", "cost_ratio")},
        }
    return {"decisions": decisions, "evals": evals}


def _noise(quiet: dict[str, Any], loaded: dict[str, Any]) -> dict[str, Any]:
    """Loaded over quiet, per figure, over the (tree, seed) pairs both runs evaluated."""
    out: dict[str, Any] = {}
    both = sorted(set(quiet["evals"]) & set(loaded["evals"]))
    for figure in FIGURES:
        ratios = [
            loaded["evals"][k][figure] / quiet["evals"][k][figure]
            for k in both
            if (quiet["evals"][k].get(figure) or 0) > 0
            and (loaded["evals"][k].get(figure) or 0) > 0
        ]
        if ratios:
            out[figure] = {"n": len(ratios), "min": round(min(ratios), 3),
                           "median": round(statistics.median(ratios), 3),
                           "max": round(max(ratios), 3)}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=3)
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--hogs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--rerun", choices=["quiet", "loaded"], action="append", default=None,
                        help="with --workdir: run only this arm again, read the other's records")  # fmt: skip
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="darwin-budget-load-"))
    runs = {}
    for name, hogs in (("quiet", 0), ("loaded", args.hogs)):
        if args.rerun and name not in args.rerun:
            runs[name] = {"reused": True, "hogs": hogs, **_state(work / name)}
            continue
        if (work / name).exists():
            shutil.rmtree(work / name)
        runs[name] = _run(_scratch(work / name, args), args, hogs)
        print(json.dumps({name: runs[name]}), file=sys.stderr, flush=True)
    same = runs["quiet"]["decisions"] == runs["loaded"]["decisions"]
    report = {"same_decisions": same, "noise_loaded_over_quiet": _noise(runs["quiet"], runs["loaded"]),
              "runs": runs, "workdir": str(work)}  # fmt: skip
    print(json.dumps(report, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
