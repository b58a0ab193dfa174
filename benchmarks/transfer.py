"""Do gains at the search budget survive a longer run? Prints JSON.

    python benchmarks/transfer.py                                  # 8 candidates, 100 -> 500 iters, 3 seeds
    python benchmarks/transfer.py --candidates 3 --iters 20 --repeats 1   # a quick look
    python benchmarks/transfer.py --engine 5                       # also: 5 generations of darwin run
    python benchmarks/transfer.py --quick                          # the smallest run that checks it works

Candidates are independent mutations of the seed by the offline mutator
(``llm.backend = heuristic``, as ``darwin run`` makes them without an API key;
the smoke test is skipped, so a broken candidate shows up as a failed run).
The seed and every candidate are trained and scored by the real, sandboxed
evaluator on the tiny preset at the search budget (``--iters``) and at
``--factor`` times it, ``--repeats`` seeds each. Reported:

- ``beat_search``: candidates whose mean held-out perplexity is below the seed's
  at the search budget; ``still_beat``: those of them still below it at the
  longer budget; ``share_still_beat`` = still_beat / beat_search;
- ``spearman``: rank correlation of mean perplexity at the two budgets over
  the seed and every candidate that ran at both;
- ``search_only``: how often a candidate is better at the search budget but
  not at the longer one (beat_search - still_beat), and ``search_only_share``
  (of beat_search);
- ``gate``: with 2+ repeats, how many pass the statistical gate at the search
  budget and how many of those also pass at the longer one (``core.confirm``);
  ``failed_confirmation`` and its share of those past the search gate;
- ``engine`` (``--engine G``): the wired path itself. ``darwin run`` for G
  generations in a scratch repository with ``budget.confirm_iters`` = factor x
  iters (the engine confirms each provisional champion against the seed, as a
  user's run does); the promotion verdict of every generation and how many
  provisional champions were better at the search budget but not at the
  confirmation budget (``failed_confirmation``), as a count and a share;
- every run's perplexity and the measured training wall time.

Training is real: on a loaded CPU one evaluation takes minutes, so say what
you ran (the ``config`` block is in the output).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent


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
    from darwin_bot.core.results import Budget, EvalResult
    from darwin_bot.llm.offline import HeuristicLLM
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


def evaluate(tree: Path, cfg: Any, iters: int, seed: int) -> dict[str, Any]:
    from darwin_bot.core.results import Budget
    from darwin_bot.evaluate import EvalOptions, evaluate_tree

    opts = EvalOptions.from_config(cfg, REPO_ROOT, seed=seed)
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


def summarize(
    runs: dict[str, dict[str, list[dict[str, Any]]]], alpha: float, repeats: int
) -> dict[str, Any]:
    """The transfer statistics from every tree's runs at ``search`` and ``long``."""
    from darwin_bot.core.confirm import promotion

    means = {a: {b: _mean(rs) for b, rs in by.items()} for a, by in runs.items()}
    seed = means["seed"]
    cands = [a for a in runs if a != "seed"]
    beat = [
        a
        for a in cands
        if None not in (means[a]["search"], seed["search"]) and means[a]["search"] < seed["search"]
    ]
    still = [
        a
        for a in beat
        if None not in (means[a]["long"], seed["long"]) and means[a]["long"] < seed["long"]
    ]
    both = [a for a in runs if None not in (means[a]["search"], means[a]["long"])]
    out: dict[str, Any] = {
        "candidates": len(cands),
        "beat_search": len(beat),
        "still_beat": len(still),
        "share_still_beat": round(len(still) / len(beat), 3) if beat else None,
        # better at the search budget but not at the longer one
        "search_only": len(beat) - len(still),
        "search_only_share": round((len(beat) - len(still)) / len(beat), 3) if beat else None,
        "spearman": spearman([means[a]["search"] for a in both], [means[a]["long"] for a in both]),
        "spearman_n": len(both),
        "means": means,
    }
    if repeats >= 2:
        ppl = {
            a: {b: [r["perplexity"] or float("nan") for r in rs] for b, rs in by.items()}
            for a, by in runs.items()
        }
        verdicts = {
            a: str(
                promotion(
                    ppl[a]["search"], ppl["seed"]["search"], ppl[a]["long"], ppl["seed"]["long"],
                    alpha, confirm_runs=repeats,
                ).verdict
            )
            for a in cands
        }  # fmt: skip
        passed = sum(v != "failed_search" for v in verdicts.values())
        failed = sum(v == "failed_confirmation" for v in verdicts.values())
        out["gate"] = {
            "verdicts": verdicts,
            "pass_search": passed,
            "pass_both": sum(v == "promoted" for v in verdicts.values()),
            "failed_confirmation": failed,
            "failed_confirmation_share": round(failed / passed, 3) if passed else None,
        }
    return out


def run_engine(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """``darwin run`` with confirmation on, in a scratch repository: each generation's verdict."""
    from darwin_bot.cli.app import build_engine
    from darwin_bot.cli.demo import make_scratch_repo
    from darwin_bot.config import load

    root = workdir / "engine-repo"
    data = (REPO_ROOT / "data" / "shakespeare_char").resolve()
    toml = (
        f"[evolution]\npopulation = {args.population}\nsurvivors = {max(1, args.population // 2)}\n"
        f'[budget]\npreset = "tiny"\niters = {args.iters}\nrepeats = {args.repeats}\n'
        f"confirm_iters = {args.iters * args.factor}\nconfirm_repeats = {args.repeats}\n"
        f'data = "{data}"\n[fitness]\nmfu_weight = 0.0\n[llm]\nbackend = "heuristic"\n'
    )
    make_scratch_repo(root, toml)
    cfg = load(root / "darwin.toml")
    engine = build_engine(root, cfg, workers=1, quiet=True)
    summaries = engine.run(args.engine)
    verdicts = {
        s.generation: {
            "leader": s.leader,  # the seed (or nobody): no provisional champion, verdict null
            "gated": s.gate.agent if s.gate else None,
            "verdict": str(s.promotion.verdict) if s.promotion else None,
            "reason": s.promotion.reason if s.promotion else "",
        }
        for s in summaries
    }
    provisional = [v for v in verdicts.values() if v["verdict"] not in (None, "failed_search")]
    failed = sum(v["verdict"] == "failed_confirmation" for v in provisional)
    return {
        "generations": args.engine,
        "population": args.population,
        "provisional_champions": len(provisional),
        "promoted": sum(v["verdict"] == "promoted" for v in provisional),
        "failed_confirmation": failed,
        "failed_confirmation_share": round(failed / len(provisional), 3) if provisional else None,
        "verdicts": verdicts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--iters", type=int, default=100, help="the search budget")
    parser.add_argument("--factor", type=int, default=5, help="the longer budget: factor x iters")
    parser.add_argument("--repeats", type=int, default=3, help="seeds per tree and budget")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--engine", type=int, default=0, metavar="G",
                        help="also run G generations of darwin run with confirmation on")  # fmt: skip
    parser.add_argument("--population", type=int, default=4, help="--engine: the population")
    parser.add_argument("--quick", action="store_true",
                        help="smallest check: 1 candidate, 5 -> 10 iters, 2 seeds, --engine 1, "
                             "population 2")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.candidates, args.iters, args.factor, args.repeats = 1, 5, 2, 2
        args.engine, args.population = 1, 2
    from darwin_bot.config import from_dict

    cfg = from_dict(
        {"budget": {"preset": "tiny", "iters": args.iters}, "llm": {"backend": "heuristic"}}
    )
    if not (REPO_ROOT / cfg.budget.data / "train.bin").exists():
        print(f"no corpus at {cfg.budget.data}; run 'darwin data prepare' first", file=sys.stderr)
        return 2
    started = time.monotonic()
    budgets = {"search": args.iters, "long": args.iters * args.factor}
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    engine: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="darwin-transfer-") as tmp:
        trees = make_candidates(Path(tmp), cfg, args.candidates, 4 * args.candidates)
        for name, tree in trees.items():
            runs[name] = {b: [] for b in budgets}
            for b, iters in budgets.items():
                for s in range(args.repeats):
                    runs[name][b].append(evaluate(tree, cfg, iters, s))
                    print(f"{name} {b} seed {s}: {runs[name][b][-1]}", file=sys.stderr, flush=True)
                    if args.out:  # what ran so far survives a run cut short
                        args.out.write_text(json.dumps({"partial": True, "runs": runs}, indent=2))
        if args.engine:
            engine = run_engine(args, Path(tmp))
    report = {
        "benchmark": "transfer",
        "config": {
            "preset": "tiny",
            "search_iters": budgets["search"],
            "long_iters": budgets["long"],
            "repeats": args.repeats,
            "candidates_asked": args.candidates,
            "mutator": "heuristic (offline), smoke test skipped",
            "alpha": args.alpha,
            "engine_generations": args.engine,
        },
        **summarize(runs, args.alpha, args.repeats),
        "engine": engine,
        "runs": runs,
        "wall_s": round(time.monotonic() - started, 1),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
