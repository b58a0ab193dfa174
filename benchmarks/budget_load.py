"""Does a busy machine change an evolution's decisions? Prints one JSON object.

    python benchmarks/budget_load.py                 # population 3, 2 generations, 30 iters
    python benchmarks/budget_load.py --hogs 3 --iters 30 --generations 2
    python benchmarks/budget_load.py --demo --corpus input.txt  # `darwin demo` as a user runs it

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

With ``--demo`` each arm is ``darwin demo`` with its defaults (3 generations,
population 5, 100 iterations, repeats 3; ``--generations`` passed on) on a fresh
directory, and the report also holds, side by side per generation, both arms'
decisions and perplexities, each arm's summary and the requests it opened. Both
arms are scored on the same secret windows (``DARWIN_WINDOW_SECRET``, else one
drawn for the run), so their perplexities compare to the digit. The machine's load average is
sampled through each arm (``loadavg``: min, mean, max of the 1-minute figure),
since "quiet" means "without the hogs", not "alone on the machine".
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from darwin_bot.cli import make_scratch_repo  # noqa: E402
from darwin_bot.program import prepare_synthetic  # noqa: E402
from darwin_bot.store import MemoryStore  # noqa: E402

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
    gens = args.generations or 2
    toml = TOML.format(population=args.population, generations=gens, iters=args.iters)
    make_scratch_repo(root, toml)
    prepare_synthetic(root / "data" / "corpus", seed=0, tokens=60_000)
    return root


def _hogs(n: int) -> list[subprocess.Popen[bytes]]:
    """Each in its own session, as the sandboxes are: with the kernel's autogroup scheduling
    a session shares the CPU as one, so hogs in one session would load the machine as one."""
    cmd = [sys.executable, "-c", "while 1: pass"]
    return [subprocess.Popen(cmd, start_new_session=True) for _ in range(n)]


def _command(root: Path, args: argparse.Namespace) -> list[str]:
    if args.demo:
        corpus = ["--corpus", str(args.corpus)] if args.corpus else ["--synthetic"]
        return [sys.executable, "-m", "darwin_bot", "demo", "--dir", str(root), *corpus,
                *(["--generations", str(args.generations)] if args.generations else [])]  # fmt: skip
    return [sys.executable, "-m", "darwin_bot", "run", "--repo", str(root),
            "--generations", str(args.generations or 2), "--workers", "1"]  # fmt: skip


class _LoadSampler(threading.Thread):
    """The 1-minute load average every few seconds while an arm runs."""

    def __init__(self, every_s: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.every_s, self.samples, self.done = every_s, [os.getloadavg()[0]], threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        s = self.samples
        return {"min": min(s), "mean": round(statistics.fmean(s), 2), "max": max(s), "n": len(s)}


def _run(root: Path, args: argparse.Namespace, hogs: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "OPENAI_API_KEY")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["DARWIN_WINDOW_SECRET"] = args.window_secret  # both arms scored on the same windows
    started, load = time.monotonic(), _LoadSampler()
    load.start()
    proc = subprocess.Popen(_command(root, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=root.parent)  # fmt: skip
    running: list[subprocess.Popen[bytes]] = []
    baseline = root / "memory" / "g000"
    try:
        while proc.poll() is None:
            if hogs and not running and (baseline / "summary.json").exists():
                running = _hogs(hogs)  # the baseline is measured: the machine gets busy now
            time.sleep(0.5)
        out, err = proc.communicate()
    finally:
        load.done.set()
        for hog in running:
            hog.kill()
            hog.wait()
    return {
        "returncode": proc.returncode,
        "stderr_tail": err.decode(errors="replace")[-1500:] if proc.returncode else "",
        "wall_s": round(time.monotonic() - started, 1),
        "hogs": hogs,
        "loadavg": load.summary(),
        **(_demo_output(out.decode(errors="replace")) if args.demo else {}),
        **_state(root),
    }


def _demo_output(stdout: str) -> dict[str, Any]:
    """The demo's summary lines and the requests it opened, as it printed them."""
    sections: dict[str, list[str]] = {}
    current = None
    for line in stdout.splitlines():
        if line.startswith("== "):
            current = line[3:]
            sections[current] = []
        elif current is not None and line.strip():
            sections[current].append(line)
    requests = next((v for k, v in sections.items() if k.startswith("requests")), [])
    return {"summary": sections.get("summary", [])[:4], "requests": requests}


def _state(root: Path) -> dict[str, Any]:
    memory = MemoryStore(root / "memory")
    decisions = [
        {
            "generation": s["generation"],
            "ranking": [(r["agent"], r["status"]) for r in s["ranking"]],
            "perplexity": {r["agent"]: _round(r.get("perplexity")) for r in s["ranking"]},
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


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _side_by_side(quiet: dict[str, Any], loaded: dict[str, Any]) -> list[dict[str, Any]]:
    """Per generation, each arm's decisions next to the other's, and whether they agree."""
    rows = []
    for q, lo in zip(quiet["decisions"], loaded["decisions"], strict=False):
        arms = {"quiet": q, "loaded": lo}
        row: dict[str, Any] = {"generation": q["generation"]}
        for key in ("ranking", "survivors", "culled", "champion"):
            row[key] = {arm: d[key] for arm, d in arms.items()}
            row[f"same_{key}"] = q[key] == lo[key]
        row["perplexity"] = {arm: d["perplexity"] for arm, d in arms.items()}
        rows.append(row)
    return rows


def _figures(quiet: dict[str, Any], loaded: dict[str, Any]) -> dict[str, Any]:
    """Per (tree, seed) evaluated in both arms: each figure, quiet then loaded."""
    both = sorted(set(quiet["evals"]) & set(loaded["evals"]))
    keys = (*FIGURES, "cost_ratio")
    return {k: {f: [quiet["evals"][k].get(f), loaded["evals"][k].get(f)] for f in keys}
            for k in both}  # fmt: skip


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


def _decided(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The decisions alone (perplexities are compared beside them, not as decisions)."""
    return [{k: v for k, v in d.items() if k != "perplexity"} for d in run["decisions"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=int, default=3)
    parser.add_argument("--generations", type=int, default=None,
                        help="default 2; with --demo the demo's own (3)")  # fmt: skip
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--hogs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--demo", action="store_true", help="each arm is `darwin demo` (defaults)")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="with --demo: tiny Shakespeare input.txt (else --synthetic)")  # fmt: skip
    parser.add_argument("--rerun", choices=["quiet", "loaded"], action="append", default=None,
                        help="with --workdir: run only this arm again, read the other's records")  # fmt: skip
    args = parser.parse_args(argv)
    # one secret for both arms (as CI's repository secret is for every job): each demo
    # directory would otherwise draw its own windows, and the arms' perplexities differ
    args.window_secret = os.environ.get("DARWIN_WINDOW_SECRET") or secrets.token_hex(32)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="darwin-budget-load-"))
    runs = {}
    for name, hogs in (("quiet", 0), ("loaded", args.hogs)):
        if args.rerun and name not in args.rerun:
            kept = work / f"{name}.json"  # what that arm's own run recorded, if it did
            recorded = json.loads(kept.read_text()) if kept.is_file() else {"hogs": hogs}
            runs[name] = {**recorded, "reused": True, **_state(work / name)}
            continue
        if (work / name).exists():
            shutil.rmtree(work / name)
        root = (work / name) if args.demo else _scratch(work / name, args)
        runs[name] = _run(root, args, hogs)
        (work / f"{name}.json").write_text(json.dumps(runs[name]))
        print(json.dumps({name: runs[name]}), file=sys.stderr, flush=True)
    quiet, loaded = runs["quiet"], runs["loaded"]
    same = _decided(quiet) == _decided(loaded)
    report = {"same_decisions": same, "noise_loaded_over_quiet": _noise(quiet, loaded),
              "side_by_side": _side_by_side(quiet, loaded), "figures": _figures(quiet, loaded),
              "runs": runs, "workdir": str(work)}  # fmt: skip
    print(json.dumps(report, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
