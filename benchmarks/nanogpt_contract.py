"""karpathy/nanoGPT, unchanged, under the ``nanogpt`` contract: check, evaluate, evolve; prints JSON.

    DARWIN_NANOGPT=/path/to/nanoGPT python benchmarks/nanogpt_contract.py
    python benchmarks/nanogpt_contract.py --nanogpt PATH --iters 60 --generations 2 --population 4

Copies ``model.py``, ``train.py``, ``configurator.py`` and ``config/`` of the
checkout (nothing else, nothing edited) into a scratch git repository
(``--workdir``), writes the darwin.toml of ``darwin init --contract nanogpt``
with the ``tiny`` preset (nanoGPT README's CPU example) and a short budget,
then times, as a user types them:

1. ``darwin check`` (sandboxed smoke test);
2. ``darwin evaluate`` (one full-budget run: held-out perplexity, tokens/s);
3. ``darwin run -g N`` with the offline heuristic mutator, ranking on held-out
   perplexity (``fitness.mfu_weight = 0``: CPU timing noise must not pick the
   leader): the leader, its perplexity against the baseline's mean, the
   gate's p-value, and the files the mutation commits touched.

The corpus is ``--data`` (default: darwin's ``data/shakespeare_char``; run
``darwin data prepare`` first). nanoGPT's train.py has no seed global, so every
repeat of one tree trains identically; the spread between repeats is then the
scoring's, not the training's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("model.py", "train.py", "configurator.py", "config")


def darwin(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, "-m", "darwin_bot", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def make_repo(
    nanogpt: Path, workdir: Path, *, data: Path, iters: int, population: int,
    repeats: int = 3, smoke_iters: int = 12,
) -> Path:  # fmt: skip
    """A git repository holding nanoGPT's files as they are and the nanogpt darwin.toml."""
    from darwin_bot.program import toml_for

    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    for name in FILES:
        src = nanogpt / name
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, workdir / name)
    toml = toml_for("nanogpt")
    for old, new in (
        ("population = 10 ", f"population = {population} "),
        ("survivors = 4  ", "survivors = 2  "),
        ("iters = 100 ", f"iters = {iters} "),
        ("repeats = 3 ", f"repeats = {repeats} "),
        ("smoke_iters = 12 ", f"smoke_iters = {smoke_iters} "),
        ('data = "data/shakespeare_char"', f"data = {json.dumps(str(data.resolve()))}"),
        ("mfu_weight = 0.25", "mfu_weight = 0.0"),
        ('backend = "auto"         # auto:', 'backend = "heuristic"    # auto:'),
    ):
        assert old in toml, old
        toml = toml.replace(old, new, 1)
    (workdir / "darwin.toml").write_text(toml, encoding="utf-8")
    (workdir / ".gitignore").write_text("/.darwin/\n__pycache__/\n", encoding="utf-8")
    git = ["git", "-C", str(workdir), "-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "karpathy/nanoGPT as it is"], check=True)
    return workdir


def touched_files(repo: Path) -> list[str]:
    """Every file a darwin mutation commit (one with a Darwin-Kind trailer) changed."""
    out = subprocess.run(["git", "-C", str(repo), "log", "--all", "--grep=^Darwin-Kind:",
                          "--format=", "--name-only"], capture_output=True, text=True, check=True)  # fmt: skip
    return sorted({ln for ln in out.stdout.splitlines() if ln.strip()})


def evolution_summary(repo: Path) -> dict[str, object]:
    from darwin_bot.store import MemoryStore

    gens = MemoryStore(repo / "memory").generations()
    last = gens[-1]
    best = last.get("champion") or last.get("leader")
    row = next((r for r in last["ranking"] if r["agent"] == best), {})
    base = ((last.get("baseline") or {}).get("mean") or {}).get("perplexity")
    ppl = row.get("perplexity")
    return {
        "generations": len(gens) - 1,
        "best_agent": best,
        "champion": last.get("champion"),
        "best_perplexity": ppl,
        "baseline_perplexity": base,
        "gain_pct": None if not (ppl and base) else round(100.0 * (base - ppl) / base, 3),
        "p_value": (last.get("gate") or {}).get("p_value"),
        "ranked_agents": len(last["ranking"]),
        "files_touched_by_mutations": touched_files(repo),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nanogpt", type=Path, default=os.environ.get("DARWIN_NANOGPT"))
    parser.add_argument("--nanogpt-commit", default="", help="the commit, when PATH has no .git")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/darwin-bench-nanogpt"))
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "shakespeare_char")
    parser.add_argument("--iters", type=int, default=60)
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke-iters", type=int, default=12)
    args = parser.parse_args(argv)
    if args.nanogpt is None or not (args.nanogpt / "train.py").is_file():
        parser.error(
            "pass --nanogpt PATH (or set DARWIN_NANOGPT) to a checkout of karpathy/nanoGPT"
        )
    commit = args.nanogpt_commit or subprocess.run(
        ["git", "-C", str(args.nanogpt), "rev-parse", "HEAD"], capture_output=True, text=True,
        check=False).stdout.strip() or "unknown (not a git checkout; pass --nanogpt-commit)"  # fmt: skip
    repo = make_repo(args.nanogpt, args.workdir, data=args.data, iters=args.iters,
                     population=args.population, repeats=args.repeats,
                     smoke_iters=args.smoke_iters)  # fmt: skip
    out: dict[str, object] = {"nanogpt_commit": commit, "preset": "tiny", "iters": args.iters,
                              "population": args.population, "repeats": args.repeats}  # fmt: skip
    t0 = time.monotonic()
    check = darwin("check", str(repo), cwd=repo)
    out["check"] = {"exit": check.returncode, "seconds": round(time.monotonic() - t0, 1),
                    "misses": [ln for ln in check.stdout.splitlines() if ln.startswith("MISS")]}  # fmt: skip
    t0 = time.monotonic()
    ev = darwin("evaluate", str(repo), "--json", cwd=repo)
    result = json.loads(ev.stdout.strip().splitlines()[-1]) if ev.returncode == 0 else {}
    metrics = result.get("metrics") or {}
    out["evaluate"] = {"status": result.get("status"), "reason": result.get("reason"),
                       "perplexity": metrics.get("perplexity"), "tokens_per_s": metrics.get("tokens_per_s"),
                       "seconds": round(time.monotonic() - t0, 1)}  # fmt: skip
    if args.generations > 0:
        t0 = time.monotonic()
        run = darwin("run", "-g", str(args.generations), "--repo", str(repo), "--quiet", cwd=repo)
        out["run"] = {"exit": run.returncode, "seconds": round(time.monotonic() - t0, 1),
                      **(evolution_summary(repo) if run.returncode == 0 else {"stderr": run.stderr[-800:]})}  # fmt: skip
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
