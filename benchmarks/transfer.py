"""Do gains at the search budget survive longer runs? Prints JSON.

    python benchmarks/transfer.py                                  # 8 candidates, 1x..10x of 100 iters
    python benchmarks/transfer.py --iters 50 --factors 1,2,3,5,10 --repeats 2 \\
        --thin 3 --sparse 10 --jobs 2 --cache transfer-cache --out transfer.json  # a loaded 2-core CPU
    python benchmarks/transfer.py --quick                          # the smallest run that checks it works

Candidates are independent mutations of the seed by the offline mutator
(``llm.backend = heuristic``, as ``darwin run`` makes them without an API key;
the smoke test is skipped, so a broken candidate shows up as a failed run).
The seed and every candidate are trained and scored by the real, sandboxed
evaluator on the tiny preset at each budget ``factor x --iters`` (``--factors``),
``--repeats`` seeds each (``--thin`` factors: 1 seed; ``--sparse`` factors: 1 seed
on the seed and the first ``--sparse-trees - 1`` candidates only, to save the longest runs).
Every tree is scored on the same fixed held-out windows, so two trees' runs
with the same seed differ only by their program. Reported per budget:

- ``spearman_vs_ref`` / ``spearman_vs_longest``: rank correlation of the trees'
  mean perplexity at that budget with the reference budget (``--ref``, the one
  champions are judged at: 5x) and with the longest budget measured;
- ``false_negatives``: candidates not better than the seed at that budget (the
  search rejects them) that pass the statistical gate (``core.fitness``,
  one-sided Welch, ``--alpha``) against the seed at the reference budget;
  ``false_positives``: candidates better than the seed there that are not
  better at the reference budget;
- ``keep``: for a keep fraction (1/2, 1/3), whether the trees ranked best at
  that budget contain the best tree at the reference budget, and how much
  worse (percent perplexity at the reference) the best kept tree is:
  what a successive-halving rung at that budget would lose;
- ``schedules``: each search schedule of ``core.schedule`` replayed on these
  measurements at equal compute (the reference tree it would pick, its loss);
- every run's perplexity and the measured training wall time.

Training is real: on a loaded CPU one evaluation takes minutes, so say what
you ran (the ``config`` block is in the output). ``--cache DIR`` keeps every
finished run (keyed by the tree's content, budget and seed), so an interrupted
measurement resumes where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
KEEP_FRACTIONS = (0.5, 1 / 3)


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rho (average ranks for ties); None with fewer than 3 pairs or no spread."""
    if len(x) < 3:
        return None

    def ranks(v: list[float]) -> np.ndarray:
        a = np.asarray(v, dtype=float)
        order = a.argsort()
        r = np.empty(len(a))
        r[order] = np.arange(1, len(a) + 1)
        for value in np.unique(a):  # ties share their mean rank
            r[a == value] = r[a == value].mean()
        return r

    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def make_candidates(workdir: Path, cfg: Any, n: int, max_tries: int) -> dict[str, Path]:
    """``n`` trees, each the seed mutated once by the offline mutator (distinct mutator seeds)."""
    from darwin_bot.core import Budget, EvalResult
    from darwin_bot.llm import HeuristicLLM
    from darwin_bot.mutation import MutationContext, mutate_tree
    from darwin_bot.paths import seed_source

    def smoke(tree: Path) -> EvalResult:  # skipped: the real evaluation will tell
        return EvalResult("ok", "smoke skipped", None, "", 0, Budget(iters=0), "transfer", "")

    out: dict[str, Path] = {"seed": workdir / "seed-tree"}
    shutil.copytree(
        seed_source(), out["seed"] / "seed", ignore=shutil.ignore_patterns("__pycache__")
    )
    k = 0
    while len(out) - 1 < n and k < max_tries:
        k += 1
        tree = workdir / f"cand-{k:02d}"
        shutil.copytree(out["seed"], tree)
        ctx = MutationContext(f"t{k:02d}", 1, ("seed",), None, None, seed=k)
        summaries: list[str] = []
        outcome = mutate_tree(
            tree,
            ctx,
            HeuristicLLM(seed=k),
            cfg,
            commit=lambda a, s=summaries: s.append(a.summary) or "",
            smoke=smoke,
        )
        if outcome.status == "ok" and summaries:
            out[f"t{k:02d}: {summaries[-1][:60]}"] = tree
        else:
            shutil.rmtree(tree)
    return out


def content_key(tree: Path) -> str:
    """A short hash of the tree's program files: the run cache's key for that tree."""
    h = hashlib.sha256()
    for f in sorted((tree / "seed").rglob("*.py")):
        h.update(f.relative_to(tree).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def evaluate(tree: Path, cfg: Any, iters: int, seed: int, threads: int | None) -> dict[str, Any]:
    from darwin_bot.core import Budget
    from darwin_bot.evaluate import EvalOptions, evaluate_tree

    opts = EvalOptions.from_config(cfg, REPO_ROOT, seed=seed, windows="fixed", threads=threads)
    r = evaluate_tree(tree, dataclasses.replace(opts, budget=Budget(iters=iters)))
    ppl = r.metrics.perplexity if r.ok and r.metrics else None
    return {
        "status": str(r.status),
        "perplexity": ppl,
        "train_wall_s": r.extra.get("train_wall_s"),
        "reason": r.reason[:200],
    }


def _mean(runs: list[dict[str, Any]]) -> float | None:
    vals = [r["perplexity"] for r in runs if r["perplexity"] is not None]
    return float(np.mean(vals)) if vals and len(vals) == len(runs) else None


def _ppl(runs: list[dict[str, Any]]) -> list[float]:
    return [r["perplexity"] if r["perplexity"] is not None else float("inf") for r in runs]


def keep_loss(means: dict[str, dict[int, float | None]], cands: list[str], f: int, ref: int,
              frac: float) -> dict[str, Any] | None:  # fmt: skip
    """What keeping the best ``frac`` of the candidates at budget ``f`` loses at ``ref``."""
    both = [a for a in cands if None not in (means[a][f], means[a][ref])]
    if len(both) < 2:
        return None
    k = max(1, int(np.ceil(frac * len(both))))
    kept = sorted(both, key=lambda a: (means[a][f], a))[:k]
    best = min(both, key=lambda a: (means[a][ref], a))
    got = min(means[a][ref] for a in kept)  # type: ignore[type-var]
    return {
        "keep": k,
        "of": len(both),
        "kept_best": best in kept,
        "loss_pct": round(100.0 * (got / means[best][ref] - 1.0), 2),  # type: ignore[operator]
    }


def budget_stats(runs: dict[str, dict[int, list[dict[str, Any]]]], f: int, ref: int,
                 longest: int, alpha: float) -> dict[str, Any]:  # fmt: skip
    """One budget's transfer figures against the reference and the longest budget."""
    from darwin_bot.core import champion_test

    means = {a: {b: _mean(rs) for b, rs in by.items()} for a, by in runs.items()}
    seed = means["seed"]
    cands = [a for a in runs if a != "seed"]

    def rho(other: int) -> tuple[float | None, int]:
        both = [a for a in runs if None not in (means[a][f], means[a][other])]
        return spearman([means[a][f] for a in both], [means[a][other] for a in both]), len(both)

    ran = [a for a in cands if None not in (means[a][f], seed[f])]
    beat = [a for a in ran if means[a][f] < seed[f]]  # type: ignore[operator]
    better_ref = [
        a for a in cands if None not in (means[a][ref], seed[ref]) and means[a][ref] < seed[ref]
    ]  # type: ignore[operator]
    significant = [
        a for a in cands if champion_test(_ppl(runs[a][ref]), _ppl(runs["seed"][ref]), alpha).passed
    ]
    false_neg = [a for a in significant if a not in beat]
    rho_ref, n_ref = rho(ref)
    rho_long, n_long = rho(longest)
    return {
        "spearman_vs_ref": rho_ref,
        "spearman_vs_ref_n": n_ref,
        "spearman_vs_longest": rho_long,
        "spearman_vs_longest_n": n_long,
        "beat_seed": len(beat),
        "significant_at_ref": len(significant),
        "false_negatives": false_neg,
        "false_negative_rate": round(len(false_neg) / len(significant), 3) if significant else None,
        "false_positives": [a for a in beat if a not in better_ref],
        "keep": {f"{frac:.2f}": keep_loss(means, cands, f, ref, frac) for frac in KEEP_FRACTIONS},
    }


def summarize(runs: dict[str, dict[int, list[dict[str, Any]]]], ref: int,
              alpha: float) -> dict[str, Any]:  # fmt: skip
    """The transfer statistics of every budget (keys: budget factors)."""
    factors = sorted(next(iter(runs.values())))
    longest = factors[-1]
    return {
        "ref_factor": ref,
        "longest_factor": longest,
        "means": {a: {str(b): _mean(rs) for b, rs in by.items()} for a, by in runs.items()},
        "budgets": {str(f): budget_stats(runs, f, ref, longest, alpha) for f in factors},
        "replay": replay(runs, ref),
    }


# (name, rungs as budget factors, keep, offspring): groups of about equal compute, in units of
# one run at the search budget (flat 1x with 8 offspring = 8 units)
REPLAYS = (
    ("flat 1x, 8 offspring", (1,), 0.5, 8),
    ("flat 2x, 4 offspring", (2,), 0.5, 4),
    ("flat 5x, 2 offspring", (5,), 0.5, 2),
    ("halving 1x,2x keep 1/2, 4 offspring", (1, 2), 0.5, 4),
    ("halving 1x,5x keep 1/4, 4 offspring", (1, 5), 0.25, 4),
    ("flat 2x, 8 offspring", (2,), 0.5, 8),
    ("flat 3x, 5 offspring", (3,), 0.5, 5),
    ("flat 5x, 3 offspring", (5,), 0.5, 3),
    ("halving 1x,2x keep 1/2, 8 offspring", (1, 2), 0.5, 8),
    ("halving 1x,5x keep 1/2, 4 offspring", (1, 5), 0.5, 4),
    ("halving 1x,2x,5x keep 1/2, 4 offspring", (1, 2, 5), 0.5, 4),
    ("halving 1x,5x keep 1/4, 8 offspring", (1, 5), 0.25, 8),
    ("flat 3x, 8 offspring", (3,), 0.5, 8),
    ("flat 5x, 5 offspring", (5,), 0.5, 5),
    ("halving 1x,5x keep 1/3, 8 offspring", (1, 5), 1 / 3, 8),
    ("halving 1x,2x,5x keep 1/2, 8 offspring", (1, 2, 5), 0.5, 8),
    ("halving 1x,5x keep 1/2, 8 offspring", (1, 5), 0.5, 8),
)


def replay(runs: dict[str, dict[int, list[dict[str, Any]]]], ref: int) -> dict[str, Any]:
    """Each schedule of ``REPLAYS`` replayed on the measured runs, over every pool of offspring.

    A schedule decides on the seed-0 runs (as the engine's rungs do) and its
    pick is judged by its seed-1 run at the reference budget, a run it never
    saw (judging it on the runs it chose by would favour the long budgets).
    Reported per schedule: its cost, the mean reference perplexity of its pick,
    how often the pick beats the seed there, and how often it is the pool's best.
    """
    from itertools import combinations

    from darwin_bot.core import Schedule, ScheduleKind, standing

    def ppl(a: str, f: int, s: int) -> float | None:
        rs = runs[a].get(f, [])
        return rs[s]["perplexity"] if len(rs) > s else None

    cands = [a for a in runs if a != "seed" and ppl(a, ref, 1) is not None]
    seed_ref = ppl("seed", ref, 1)
    out: dict[str, Any] = {}
    for name, rungs, keep, n in REPLAYS:
        if n > len(cands) or any(ppl(a, f, 0) is None for a in cands for f in rungs):
            continue  # a budget not measured, or too few candidates
        sched = Schedule(ScheduleKind.HALVING, rungs, keep)
        picks = []
        for pool in combinations(cands, n):
            results = [
                {a: -p for a in pool if (p := ppl(a, f, 0)) is not None} for f in rungs
            ]  # fitness: higher is better
            pick = standing(sched, results, list(pool))[0]
            best = min(pool, key=lambda a: ppl(a, ref, 1))  # type: ignore[arg-type, return-value]
            picks.append((ppl(pick, ref, 1), pick == best))
        vals = [p for p, _ in picks]
        out[name] = {
            "cost_units": sched.cost(n),
            "pools": len(picks),
            "mean_ref_ppl": round(float(np.mean(vals)), 4),
            "beats_seed_share": round(float(np.mean([v < seed_ref for v in vals])), 3)
            if seed_ref is not None
            else None,
            "picks_pool_best_share": round(float(np.mean([b for _, b in picks])), 3),
        }
    return {"seed_ref_ppl": seed_ref, "judged_on": f"seed 1 at {ref}x", "schedules": out}


def measure(trees: dict[str, Path], cfg: Any, args: argparse.Namespace,
            factors: list[int]) -> dict[str, dict[int, list[dict[str, Any]]]]:  # fmt: skip
    """Every (tree, budget, seed) run, ``--jobs`` at a time, cached under ``--cache``."""
    names = list(trees)
    jobs = [  # the reference budget first: a run cut short still has something to compare with
        (name, f, s)
        for f in sorted(factors, key=lambda f: (f != args.ref, f))
        for name in (names[: args.sparse_trees] if f in args.sparse else names)
        for s in range(1 if f in args.thin | args.sparse else args.repeats)
    ]
    runs: dict[str, dict[int, list[dict[str, Any]]]] = {n: {f: [] for f in factors} for n in trees}
    done: dict[tuple[str, int, int], dict[str, Any]] = {}
    lock = threading.Lock()
    keys = {name: content_key(tree) for name, tree in trees.items()}
    threads = 1 if args.jobs > 1 else None  # parallel runs share the cores

    def one(job: tuple[str, int, int]) -> None:
        name, f, s = job
        path = args.cache / f"{keys[name]}-i{args.iters * f}-s{s}.json" if args.cache else None
        if path is not None and path.is_file():
            res = json.loads(path.read_text(encoding="utf-8"))
        else:
            res = evaluate(trees[name], cfg, args.iters * f, s, threads)
            if path is not None and res["perplexity"] is not None:
                path.write_text(json.dumps(res) + "\n", encoding="utf-8")
        with lock:
            done[job] = res
            print(f"{name} {f}x seed {s}: {res}", file=sys.stderr, flush=True)

    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(one, jobs))
    for name, f, s in jobs:
        runs[name][f].append(done[(name, f, s)])
    return runs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--iters", type=int, default=100, help="the search budget (1x)")
    parser.add_argument("--factors", default="1,2,3,5,10", help="budgets, as multiples of --iters")
    parser.add_argument("--ref", type=int, default=5, help="the factor champions are judged at")
    parser.add_argument("--repeats", type=int, default=3, help="seeds per tree and budget")
    parser.add_argument("--thin", default="", help="factors run with 1 seed only (e.g. 10)")
    parser.add_argument("--sparse", default="",
                        help="factors run with 1 seed on --sparse-trees trees only (e.g. 10)")  # fmt: skip
    parser.add_argument("--sparse-trees", type=int, default=4,
                        help="--sparse: the seed and the first N-1 candidates")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (1 thread each)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--cache", type=Path, default=None, help="keep finished runs here")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--quick", action="store_true",
                        help="smallest check: 1 candidate, 5 iters x 1,2, 2 seeds")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.candidates, args.iters, args.factors, args.repeats, args.ref = 1, 5, "1,2", 2, 2
    try:
        args.factors = sorted({int(f) for f in args.factors.split(",")})
        args.thin = {int(f) for f in args.thin.split(",") if f}
        args.sparse = {int(f) for f in args.sparse.split(",") if f}
    except ValueError:
        parser.error("--factors and --thin are comma-separated whole numbers, e.g. 1,2,5")
    if args.ref not in args.factors or args.ref in args.thin | args.sparse:
        parser.error("--ref must be one of --factors and not --thin (the gate needs repeats)")
    if args.repeats < 2 or args.jobs < 1 or args.iters < 1:
        parser.error("--repeats must be at least 2, --jobs and --iters at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from darwin_bot.config import from_dict

    cfg = from_dict(
        {"budget": {"preset": "tiny", "iters": args.iters}, "llm": {"backend": "heuristic"}}
    )
    if not (REPO_ROOT / cfg.budget.data / "train.bin").exists():
        print(f"no corpus at {cfg.budget.data}; run 'darwin data prepare' first", file=sys.stderr)
        return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="darwin-transfer-") as tmp:
        trees = make_candidates(Path(tmp), cfg, args.candidates, 4 * args.candidates)
        runs = measure(trees, cfg, args, args.factors)
    report = {
        "benchmark": "transfer",
        "config": {
            "preset": "tiny",
            "search_iters": args.iters,
            "factors": args.factors,
            "thin_factors": sorted(args.thin),
            "sparse_factors": sorted(args.sparse),
            "sparse_trees": args.sparse_trees,
            "repeats": args.repeats,
            "candidates_asked": args.candidates,
            "mutator": "heuristic (offline), smoke test skipped",
            "windows": "fixed",
            "alpha": args.alpha,
            "jobs": args.jobs,
        },
        **summarize(runs, args.ref, args.alpha),
        "runs": {a: {str(f): rs for f, rs in by.items()} for a, by in runs.items()},
        "wall_s": round(time.monotonic() - started, 1),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
