"""The memory ablation (DARWIN's, with statistics): memory fed to the mutator vs withheld; prints JSON.

    python benchmarks/memory_ablation.py                      # 5 evolution seeds, tiny preset
    python benchmarks/memory_ablation.py --seeds 2 --generations 2 --population 3 --iters 20

For each evolution seed, both arms start from one scratch repository made from
``seed/`` (tiny preset, the offline ``heuristic`` mutator, tiny Shakespeare
when prepared at ``data/shakespeare_char``, else the synthetic corpus):
generation 0 (the seed trained ``--repeats`` times) is run once and the
repository is copied, so both arms share the baseline and its runs. Then:

memory arm
    ``Engine.run(generations)`` as ``darwin run`` does it: the mutator gets the
    memory as typed evidence (credit per edit, lineage, failures) and the
    digest.
no-memory arm
    the same, with ``Breeder.use_memory = False``: no evidence, no digest, edits
    drawn uniformly from those that apply (the mutator before issue 12).

Both select on perplexity alone (``fitness.mfu_weight = 0``: MFU on a shared
CPU measures the load). An arm's result is its *champion gain*: the relative
held-out perplexity improvement of the final generation's leader (the best
agent that trained) over the seed's mean, ``(seed - leader) / seed``. The
difference is memory minus no-memory, paired by evolution seed; the p-value is
the two-sided paired t-test over seeds (scipy), with the Wilcoxon signed-rank
p-value alongside. Each arm also reports its search audit from the records
(``llm.evidence.audit_memory``): ``duplicates``, the offspring draws dropped as
duplicate work before any smoke test or training (each would have cost one full
training run), ``exploring_edits``, and ``lineage_repeats``, the edits whose
effect the offspring's lineage already had (the memory arm's rule says none
unless exploring; the no-memory arm does not know its lineage).

``--landscape`` swaps training for a known fitness landscape (a tree's
perplexity falls by a fixed fraction for each helpful edit it carries, rises
for each harmful one, plus 1 % hash noise): seconds per generation instead of
minutes, to check that the learning machinery exploits what the memory says.
It measures the mechanism, not whether the memory helps real training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="independent evolution seeds")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--population", type=int, default=4)
    ap.add_argument("--survivors", type=int, default=2)
    ap.add_argument("--generations", type=int, default=3)
    ap.add_argument("--iters", type=int, default=40, help="training iterations (tiny preset)")
    ap.add_argument("--repeats", type=int, default=2, help="baseline runs of the seed")
    ap.add_argument("--synthetic", action="store_true", help="synthetic corpus (offline)")
    ap.add_argument("--workdir", type=Path, default=None, help="kept for inspection")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--landscape", action="store_true", help="known fitness landscape, no training")
    return ap.parse_args(argv)


# Marker text of an edit in the tree -> its effect on perplexity (a fraction).
HELPS = {"rsqrt(x.pow(2)": 0.06, "QK-norm": 0.04, "torch.relu(": 0.03, "linear decay": 0.02}
HURTS = {"in parallel": 0.05, "silu": 0.03, "tanh": 0.04, "untied": 0.02}


class Landscape:
    """An evaluator with a known answer (``--landscape``): no training, nothing measured."""

    version = "landscape-1"

    def __call__(self, tree: Path, *, seed: int, smoke: bool = False) -> Any:
        from darwin_bot.core import Budget, EvalResult, Metrics

        text = "".join(p.read_text() for p in sorted((tree / "seed").rglob("*.py")))
        digest = hashlib.sha256(text.encode()).hexdigest()
        if smoke:
            return EvalResult("ok", "", None, "cpu", seed, Budget(iters=2), self.version, "")
        factor = 1.0 - sum(v for k, v in HELPS.items() if k in text)
        factor += sum(v for k, v in HURTS.items() if k in text)
        factor *= 1 + 0.01 * (int(digest[:4], 16) / 0xFFFF - 0.5)
        m = Metrics(2.3, 10.0 * factor, 0.1, 1000.0, 1.0, 10.0)
        return EvalResult("ok", "", m, "cpu", seed, Budget(iters=10), self.version, digest[:16])


def _corpus(dest: Path, synthetic: bool, seed: int) -> str:
    from darwin_bot.cli import prepare_corpus

    prepared = REPO_ROOT / "data" / "shakespeare_char"
    if not synthetic and (prepared / "train.bin").is_file():
        shutil.copytree(prepared.resolve(), dest)
        return f"tiny Shakespeare from {prepared}"
    return prepare_corpus(dest, None, True, seed)


def _engine(root: Path, use_memory: bool, landscape: bool = False) -> Any:
    from darwin_bot.cli import build_engine
    from darwin_bot.config import load

    evaluator = Landscape() if landscape else None
    engine = build_engine(root, load(root / "darwin.toml"), quiet=True, evaluator=evaluator)
    engine.breeder.use_memory = use_memory
    return engine


def champion_gain(engine: Any) -> dict[str, Any]:
    """The final leader's relative perplexity gain over the seed's mean (measured)."""
    gens = engine.memory.generations()
    base = gens[0]["baseline"]["mean"]["perplexity"]
    final = gens[-1]
    rows = [r for r in final["ranking"] if r["status"] == "ok" and r.get("perplexity")]
    best = min(rows, key=lambda r: r["perplexity"])
    return {
        "leader": best["agent"],
        "leader_perplexity": best["perplexity"],
        "seed_perplexity": base,
        "gain": (base - best["perplexity"]) / base,
        "champion": final.get("champion"),
    }


def _count(engine: Any) -> dict[str, Any]:
    from darwin_bot.llm import audit_memory

    return audit_memory(engine.memory).as_json()


COST_LIMIT_OFF = 1000.0


def run_seed(args: argparse.Namespace, seed: int, work: Path) -> dict[str, Any]:
    from darwin_bot.cli import make_scratch_repo, scratch_toml

    toml = scratch_toml(
        population=args.population,
        survivors=args.survivors,
        generations=args.generations,
        seed=seed,
        iters=args.iters,
        repeats=args.repeats,
        mfu_weight=0.0,
        # The arms run one after the other on a shared CPU: a wall-time cost limit would
        # read the load, not the program (the offline mutator never touches the budget).
        max_cost_ratio=COST_LIMIT_OFF,
        header="benchmarks/memory_ablation.py",
    )
    base = work / f"s{seed}" / "base"
    make_scratch_repo(base, toml)
    corpus = _corpus(base / "data" / "corpus", args.synthetic, seed)
    _engine(base, True, args.landscape).baseline()  # generation 0 once, for both arms
    out: dict[str, Any] = {"seed": seed, "corpus": corpus}
    for arm, use in (("memory", True), ("no_memory", False)):
        root = work / f"s{seed}" / arm
        shutil.copytree(base, root, symlinks=True)
        started = time.monotonic()
        engine = _engine(root, use, args.landscape)
        engine.run(args.generations)
        out[arm] = {
            **champion_gain(engine),
            **_count(engine),
            "wall_s": round(time.monotonic() - started, 1),
        }
        print(f"memory_ablation: seed {seed} {arm}: gain {out[arm]['gain']:+.4f}", file=sys.stderr)
    return out


def statistics_of(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean gain per arm, the paired difference and its p-values."""
    mem = [s["memory"]["gain"] for s in per_seed]
    nomem = [s["no_memory"]["gain"] for s in per_seed]
    diffs = [a - b for a, b in zip(mem, nomem, strict=True)]
    out: dict[str, Any] = {
        "memory_mean_gain": statistics.fmean(mem),
        "no_memory_mean_gain": statistics.fmean(nomem),
        "difference_mean": statistics.fmean(diffs),
        "differences": diffs,
        "p_value": None,
        "p_value_wilcoxon": None,
        "test": "two-sided paired t-test over evolution seeds (scipy.stats.ttest_rel)",
    }
    if len(diffs) >= 2 and any(d != diffs[0] for d in diffs):
        from scipy import stats

        out["p_value"] = float(stats.ttest_rel(mem, nomem).pvalue)
        if any(diffs):
            out["p_value_wilcoxon"] = float(stats.wilcoxon(mem, nomem).pvalue)
    out["memory_ahead"] = out["difference_mean"] > 0
    out["verdict"] = verdict(diffs, out["p_value"])
    return out


ALPHA, POWER = 0.05, 0.8


def seeds_needed(diffs: list[float]) -> int | None:
    """Evolution seeds a paired t-test needs to detect the observed mean difference.

    At ``ALPHA`` (two-sided) with ``POWER``, taking the observed mean and spread of
    the per-seed differences as the truth (the normal approximation plus 2 for
    the t-distribution's heavier tails); None when the spread or the mean is 0.
    """
    from scipy import stats

    if len(diffs) < 2:
        return None
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    if mean == 0 or sd == 0:
        return None
    z = stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER)
    return max(len(diffs), math.ceil((z * sd / abs(mean)) ** 2) + 2)


def verdict(diffs: list[float], p: float | None) -> dict[str, Any]:
    """Whether the run shows a difference at ``ALPHA``, and if not, what would."""
    if p is not None and p < ALPHA:
        better = "memory" if statistics.fmean(diffs) > 0 else "no_memory"
        return {"significant": True, "better_arm": better, "needs": None, "seeds_needed": None}
    n = seeds_needed(diffs)
    if n is None:
        needs = (
            "the arms did not differ on any seed (or only one seed ran): run more seeds "
            "(--seeds 5 or more) and longer evolutions (--generations, --iters) so the "
            "memory has evaluated edits to learn from"
        )
    else:
        needs = (
            f"about {n} evolution seeds (--seeds {n}) for a {int(100 * POWER)} % chance of "
            f"p < {ALPHA} if the observed mean difference ({statistics.fmean(diffs):+.4f}) and "
            f"spread ({statistics.stdev(diffs):.4f}) are real; longer evolutions "
            "(--generations, --iters) give the memory more evaluated edits to learn from, "
            "which may change the difference itself"
        )
    return {"significant": False, "better_arm": None, "needs": needs, "seeds_needed": n}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="darwin-bench-ablation-"))
    started = time.monotonic()
    per_seed = [run_seed(args, args.first_seed + i, work) for i in range(args.seeds)]
    report = {
        "benchmark": "memory_ablation",
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        | {"max_cost_ratio": COST_LIMIT_OFF},
        "workdir": str(work),
        "per_seed": per_seed,
        **statistics_of(per_seed),
        "duplicates_dropped": {
            arm: sum(s[arm]["duplicates"] for s in per_seed) for arm in ("memory", "no_memory")
        },
        "lineage_repeats": {
            arm: sum(len(s[arm]["lineage_repeats"]) for s in per_seed)
            for arm in ("memory", "no_memory")
        },
        "wall_s": round(time.monotonic() - started, 1),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
