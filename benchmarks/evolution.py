"""Offline evolution vs random search at equal cost, on held-out perplexity; prints JSON.

    python benchmarks/evolution.py                  # population 8, survivors 3, 5 generations
    python benchmarks/evolution.py --quick          # smoke run: population 3, 1 generation, 20 iters

Both arms live in one scratch repository (``--workdir``, kept for inspection)
made from ``seed/`` with the heuristic (offline) mutator and the tiny preset,
and both are scored by the same sandboxed evaluator against the same baseline
runs (the seed trained ``--repeats`` times, seeds ``seed .. seed+repeats-1``).

Evolution arm
    ``Engine.run(generations)``. Its result is the final champion (the last
    agent that passed the statistical gate), else the final leader.
Random-search arm
    Independent mutations of the seed (same mutator, smoke test and repair, no
    selection, no lineage, no memory), each trained once with the evolution's
    seed, until it has spent as many full training runs as the evolution did
    minus the ``repeats - 1`` runs that confirm its best. Its result is the
    candidate with the lowest single-run perplexity.

Both arms select on perplexity alone: the benchmark's darwin.toml sets
``fitness.mfu_weight`` to ``--mfu-weight`` (0 here, 0.25 in darwin's default),
because the target is perplexity and MFU on a shared CPU mostly measures the
load of other processes (3x apart across the seed's own repeats, measured).

Each arm's result is confirmed with ``repeats`` runs and put through the same
gate as the engine's champions (``core.fitness.champion_test``, one-sided
Welch). A "training run" is one full evaluation of a distinct (tree, seed):
the engine caches results by tree id, so a duplicate candidate is free in both
arms. Smoke tests are counted separately, by the process that ran them.

The evolution arm's ``search`` is its audit from the memory's records
(``llm.evidence.audit_memory``): duplicate draws dropped before training,
edits made while exploring, and every edit whose effect the offspring's lineage
already had (``lineage_repeats``: the mutator's rule says none, unless exploring,
and those are listed apart as ``exploring_repeats``).

Search schedule and the long budget: ``--schedule halving`` (``--rungs``,
``--keep``) runs the evolution arm with successive halving (``core.schedule``);
``--long-factor F`` then trains each arm's result and the seed ``repeats``
times at F x ``--iters`` (new seeds) and reports those held-out perplexities,
each arm's p-value against the seed there and the evolution's against random
search: the figure a user's longer run sees. Compute is counted in
``compute_units`` (training iterations over ``--iters``, the seed's baseline
runs left out), and the random arm is sized to the evolution's units, so a
schedule that trains longer rungs gets fewer random candidates to match.
``benchmarks/evolution_compare.py`` compares the reports of several runs
(schedules x evolution seeds).

Windows: scored as ``darwin run`` scores. With ``DARWIN_WINDOW_SECRET`` set
(do set it: without it every evaluation draws its own windows and nothing
pairs), each generation is scored on its own secret windows, the engine
naming the generation through the counting evaluator's ``at_generation``; an
arm's result is compared with the seed on its last generation's windows, and
the long budget's runs (every arm's and the seed's) on the windows of
generation :data:`LONG_WINDOWS`, which no search reaches. A tree re-scored on a
later generation's windows from its kept graph trained nothing, so it costs no
compute units.

``--no-random`` leaves the random-search arm out: for a second report of the
same evolution seed (another schedule at the same units), whose random arm
would repeat the first's.

Resuming: run the same command with the same ``--workdir``. The evolution
continues where it stopped (``Engine.run`` is idempotent) and is saved to
``bench/evolution.json`` when done; the random search is seeded per candidate,
so its finished candidates come back from the evaluation cache.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darwin_bot.core import EvalResult, champion_test, summarize, welch_one_sided
from darwin_bot.llm import audit_memory

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
TARGET_IMPROVEMENT_PCT = 2.07  # the paper's held-out perplexity improvement (arXiv 2602.05848)
TARGET_P = 0.05
# The long budget's runs are scored on windows of a generation no search ever reaches:
# no arm was selected on them, and every report made with the same secret shares them.
LONG_WINDOWS = 1000


@dataclass
class CountingEvaluator:
    """The engine's Evaluator port, counting the runs it passes on (thread-safe).

    The engine's cache sits in front of the evaluator, so ``full`` counts the
    full training runs this process spent, not the ones it asked for.
    """

    inner: Any
    full: int = 0
    smoke: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def version(self) -> str:
        return self.inner.version

    @property
    def windows(self) -> str | None:
        """The public name of the windows scored now (None: the inner evaluator has none)."""
        return getattr(self.inner, "windows", None)

    def at_generation(self, g: int) -> None:
        """Passed on, so each generation is scored on its own windows, as ``darwin run`` scores."""
        at = getattr(self.inner, "at_generation", None)
        if at is not None:
            at(g)

    def __call__(self, tree: Path, *, seed: int, smoke: bool = False, **at: Any) -> EvalResult:
        """``at``: the budget and preset of a confirmation or schedule-rung run, passed on."""
        with self._lock:
            if smoke:
                self.smoke += 1
            else:
                self.full += 1
        return self.inner(tree, seed=seed, smoke=smoke, **at)

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.full, self.smoke


def compute_units(evals: Path, iters: int, baseline_tree: str = "") -> float:
    """Training iterations in the evaluation cache over ``iters``: runs weighted by their budget.

    The runs of ``baseline_tree`` at ``iters`` (the seed's baseline, which every
    arm shares) are left out; the seed's runs at a schedule's longer rungs count.
    A result re-scored on a later generation's windows (``extra.rescored``: the
    kept graph scored again, no training) costs nothing here, and neither do the
    long budget's runs (on :data:`LONG_WINDOWS`): they measure, they do not search.
    """
    total = 0.0
    for path in evals.glob("*/*.json") if evals.is_dir() else ():
        found = re.search(r"-iters=(\d+)-", path.name)
        if found is None or f"-g{LONG_WINDOWS}-" in path.name or rescored(path):
            continue
        n = int(found.group(1))
        if not (path.parent.name == baseline_tree.replace("+", "_") and n == iters):
            total += n / iters
    return total


def rescored(path: Path) -> bool:
    """Whether the cached result at ``path`` was re-scored from a kept graph (not trained)."""
    try:
        extra = json.loads(path.read_text(encoding="utf-8")).get("extra") or {}
    except (OSError, ValueError):
        return False
    return bool(extra.get("rescored"))


def long_runs(engine: Any, head: str, factor: int, seeds: range) -> list[EvalResult]:
    """``head`` trained at ``factor`` x the search budget, one run per seed (cached)."""
    from darwin_bot.core import Budget

    budget = Budget(iters=engine.cfg.budget.iters * factor)
    engine.evals.evaluate_all([(head, s) for s in seeds], budget=budget, what=f"{factor}x runs")
    return [engine.evals.evaluate_ref(head, s, budget=budget) for s in seeds]


def long_report(
    engine: Any, arms: dict[str, str | None], factor: int, alpha: float
) -> dict[str, Any]:
    """Each arm's result and the seed at ``factor`` x the search budget: means and p-values."""
    from darwin_bot.core import SEED_AGENT

    cfg = engine.cfg
    engine.use_windows(LONG_WINDOWS)  # every arm and the seed on one set, paired
    s0 = cfg.evolution.seed + 2000  # seeds no search run used
    seeds = range(s0, s0 + cfg.budget.repeats)
    base = perplexities(long_runs(engine, head_of(engine, SEED_AGENT), factor, seeds))
    windows = getattr(engine.evaluator, "windows", None)
    out: dict[str, Any] = {"factor": factor, "seeds": list(seeds), "windows": windows}
    out["seed_runs"] = base
    for arm, head in arms.items():
        runs = perplexities(long_runs(engine, head, factor, seeds)) if head else []
        gate = champion_test(runs, base, alpha) if runs else None
        out[arm] = {
            "runs": [p if math.isfinite(p) else None for p in runs],
            "mean_ppl": sum(runs) / len(runs) if runs and all(map(math.isfinite, runs)) else None,
            "improvement_pct": 100.0 * gate.effect_size if gate and gate.effect_size else None,
            "p_vs_seed": gate.p_value if gate else None,
        }
    e, r = out.get("evolution", {}).get("runs"), out.get("random_search", {}).get("runs")
    if e and r and None not in e + r:
        out["evolution_vs_random_p"] = welch_one_sided(e, r, "less").p_value
    return out


def count_full_runs(evals: Path) -> int:
    """Full training runs in the engine's evaluation cache (one file per tree and seed)."""
    return sum(1 for _ in evals.glob("*/*.json")) if evals.is_dir() else 0


def perplexities(runs: Sequence[EvalResult]) -> list[float]:
    """Perplexity of each run; a failed run is +inf so the gate refuses it."""
    return [r.metrics.perplexity if r.ok and r.metrics else float("inf") for r in runs]


def best_single_run(candidates: dict[str, EvalResult]) -> str | None:
    """The candidate with the lowest single-run perplexity (ties: the first name)."""
    ok = {k: v for k, v in candidates.items() if v.ok and v.metrics is not None}
    if not ok:
        return None
    return min(sorted(ok), key=lambda k: ok[k].metrics.perplexity)  # type: ignore[union-attr]


def arm_report(
    best: str | None,
    runs: Sequence[EvalResult],
    baseline_ppl: Sequence[float],
    alpha: float,
    *,
    training_runs: int,
    smoke_runs: int,
    wall_s: float,
    **extra: Any,
) -> dict[str, Any]:
    """One arm's JSON: its best, confirmed runs, improvement over the baseline and the gate."""
    ppl = perplexities(runs)
    gate = champion_test(ppl, baseline_ppl, alpha) if best is not None else None
    ok = bool(ppl) and all(math.isfinite(p) for p in ppl)
    return {
        "best": best,
        # JSON has no infinity: a failed run is null, and then so is the mean.
        "runs": [p if math.isfinite(p) else None for p in ppl],
        "mean_ppl": sum(ppl) / len(ppl) if ok else None,
        "improvement_pct": None
        if gate is None or gate.effect_size is None
        else 100.0 * gate.effect_size,
        "p_value": gate.p_value if gate else None,
        "passed": bool(gate and gate.passed),
        "gate": gate.reason if gate else "no candidate trained successfully",
        "training_runs": training_runs,
        "smoke_runs": smoke_runs,
        "wall_s": round(wall_s, 1),
        **extra,
    }


def verdict(evolution: dict[str, Any], random: dict[str, Any]) -> dict[str, Any]:
    """Whether the targets are met, and how the evolution compares with random search."""

    e, r = evolution["mean_ppl"], random["mean_ppl"]  # None: no working candidate
    ahead = e is not None and (r is None or e < r)
    vs = None
    if e is not None and r is not None and min(len(evolution["runs"]), len(random["runs"])) >= 2:
        vs = welch_one_sided(evolution["runs"], random["runs"], "less").p_value
    gain = evolution["improvement_pct"]
    return {
        "evolution_ahead": ahead,
        "evolution_vs_random_p": vs,
        "targets": {"improvement_pct": TARGET_IMPROVEMENT_PCT, "p": TARGET_P},
        "targets_met": {
            "improvement": gain is not None and gain >= TARGET_IMPROVEMENT_PCT,
            "significant": evolution["p_value"] is not None and evolution["p_value"] < TARGET_P,
            "ahead_of_random": ahead,
        },
    }


# ----------------------------------------------------------------------------- the arms


def head_of(engine: Any, agent: str) -> str:
    repo = engine.repo
    sha = repo.rev(repo.branch(agent)) or repo.archived(agent)
    if sha is None:
        raise SystemExit(f"evolution: agent {agent!r} has no branch and no archived head")
    return sha


def run_evolution(engine: Any, counter: CountingEvaluator, generations: int) -> dict[str, Any]:
    """The evolution arm; its report is saved, so a resumed benchmark does not evolve again."""
    from darwin_bot.core import SEED_AGENT

    cfg = engine.cfg
    saved = engine.repo.root / "bench" / "evolution.json"
    if saved.exists():
        return json.loads(saved.read_text(encoding="utf-8"))
    seeds = range(cfg.evolution.seed, cfg.evolution.seed + cfg.budget.repeats)
    _, smoke0 = counter.snapshot()
    t0 = time.monotonic()
    done = engine.completed() or 0
    if done < generations:  # resumes an interrupted run up to the same target
        engine.run(generations - done)
    engine.use_windows(generations)  # the champion and the seed on its last generation's windows
    seed_tree = engine.repo.tree_id(head_of(engine, SEED_AGENT), cfg.evolution.evolvable)
    units = compute_units(engine.state / "evals", cfg.budget.iters, seed_tree)
    # a run resumed with fewer --generations than it was started with stops there
    summaries = [s for s in engine.memory.generations() if 0 < s["generation"] <= generations]
    last = summaries[-1]
    best = last.get("champion") or last.get("leader")
    runs = engine.runs(head_of(engine, best), seeds)  # already cached when it was confirmed
    base_runs = engine.baseline_runs()
    report = arm_report(
        best,
        runs,
        perplexities(base_runs),
        cfg.budget.significance,
        training_runs=count_full_runs(engine.state / "evals") - len(base_runs),
        smoke_runs=counter.snapshot()[1] - smoke0,
        wall_s=time.monotonic() - t0,
        champion=last.get("champion"),
        leader=last.get("leader"),
        head=head_of(engine, best) if best else None,
        compute_units=round(units, 2),
        schedule=cfg.search.schedule,
        search=audit_memory(engine.memory).as_json(),
        generations=[
            {
                "generation": s["generation"],
                "leader": s.get("leader"),
                "champion": s.get("champion"),
                "leader_ppl": next(
                    (r["perplexity"] for r in s["ranking"] if r["agent"] == s.get("leader")), None
                ),
            }
            for s in summaries
        ],
    )
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def mutate_once(engine: Any, parent: str, ctx: Any) -> str | None:
    """One mutation of ``parent`` as the engine makes it (smoke test and repair included).

    Returns the commit of the candidate, or None when the mutation was rejected.
    """
    from darwin_bot.mutation import mutate_tree

    repo, cfg = engine.repo, engine.cfg
    heads: list[str] = []
    with repo.worktree(parent) as wt:

        def commit(attempt: Any) -> str:
            message = f"random search {ctx.agent}: {attempt.summary}"
            heads.append(repo.commit_worktree(wt, message, allowed=cfg.evolution.evolvable))
            return heads[-1]

        def smoke(tree: Path) -> EvalResult:
            return engine.evaluator(tree, seed=ctx.seed, smoke=True)

        outcome = mutate_tree(
            wt, ctx, engine.llm_factory(ctx.seed), cfg, commit=commit, smoke=smoke
        )
    return heads[-1] if outcome.status == "ok" and heads else None


def run_random_search(
    engine: Any, counter: CountingEvaluator, budget_runs: int, seed: int, generation: int
) -> dict[str, Any]:
    """Independent mutations of the seed, one run each, then ``repeats`` runs of the best.

    Candidates are drawn until ``budget_runs`` distinct (tree, seed) runs were asked for,
    and scored, with the seed they are compared with, on ``generation``'s windows.
    """
    from darwin_bot.core import SEED_AGENT
    from darwin_bot.engine import derive_seed
    from darwin_bot.mutation import MutationContext

    cfg = engine.cfg
    engine.use_windows(generation)
    seeds = range(cfg.evolution.seed, cfg.evolution.seed + cfg.budget.repeats)
    seed_head = head_of(engine, SEED_AGENT)
    base = engine.baseline_metrics()
    _, smoke0 = counter.snapshot()
    t0 = time.monotonic()
    scores: dict[str, EvalResult] = {}
    spent: set[tuple[str, int]] = set()
    rejected = 0

    def tree(head: str) -> str:
        return engine.repo.tree_id(head, cfg.evolution.evolvable)

    # A run of rejections must not loop forever: at most 3 candidates per training run.
    for i in range(3 * max(1, budget_runs)):
        if len(spent) >= budget_runs:
            break
        ctx = MutationContext(
            agent=f"rs{i:03d}",
            generation=1,
            parents=(SEED_AGENT,),
            parent_metrics=base,
            baseline_metrics=base,
            seed=derive_seed(seed, "random-search", i),
        )
        head = mutate_once(engine, seed_head, ctx)
        if head is None:
            rejected += 1
            continue
        scores[head] = engine.evaluate_ref(head, seeds[0])
        spent.add((tree(head), seeds[0]))
        engine.say(f"random search {ctx.agent}: perplexity {perplexities([scores[head]])[0]:.3f}")
    best = best_single_run(scores)
    runs = engine.runs(best, seeds) if best else []
    spent.update((tree(best), s) for s in seeds if best)
    return arm_report(
        best,
        runs,
        perplexities(engine.baseline_runs()),
        cfg.budget.significance,
        head=best,
        compute_units=len(spent),
        training_runs=len(spent),
        smoke_runs=counter.snapshot()[1] - smoke0,
        wall_s=time.monotonic() - t0,
        candidates=len(scores),
        rejected=rejected,
    )


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=None, help=f"default: {DEFAULT_CORPUS}")
    ap.add_argument("--synthetic", action="store_true", help="synthetic corpus (offline)")
    ap.add_argument("--population", type=int, default=8)
    ap.add_argument("--survivors", type=int, default=3)
    ap.add_argument("--generations", type=int, default=5)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--mfu-weight",
        type=float,
        default=0.0,
        help="fitness weight of MFU (darwin's default: 0.25); 0 because the target is "
        "perplexity and MFU on a shared CPU measures the neighbours' load",
    )
    ap.add_argument(
        "--max-cost-ratio",
        type=float,
        default=None,
        help="budget.max_cost_ratio (default: darwin's); 1000 turns the wall-time cost limit "
        "off, for a CPU shared with other work, where it would read the load",
    )
    ap.add_argument("--schedule", choices=("flat", "halving"), default="flat")
    ap.add_argument("--rungs", default="1,2,5", help="--schedule halving: budget multipliers")
    ap.add_argument("--keep", type=float, default=0.5, help="--schedule halving: share advancing")
    ap.add_argument("--long-factor", type=int, default=5,
                    help="also train each arm's result and the seed at this x --iters (0: off)")  # fmt: skip
    ap.add_argument("--no-random", action="store_true",
                    help="no random-search arm (another report of the same seed has it)")  # fmt: skip
    ap.add_argument("--workdir", type=Path, default=None, help="scratch repo (default: a temp dir)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    ap.add_argument("--quick", action="store_true", help="population 3, 1 generation, 20 iters")
    args = ap.parse_args(argv)
    if args.quick:
        args.population, args.survivors, args.generations, args.iters = 3, 1, 1, 20
    if not 1 <= args.survivors < args.population:
        ap.error("--survivors must be at least 1 and smaller than --population")
    if args.generations < 1 or args.iters < 1:
        ap.error("--generations and --iters must be at least 1")
    if args.repeats < 2:
        ap.error("--repeats must be at least 2 (the gate needs repeated runs)")
    if args.corpus is None and not args.synthetic:
        if DEFAULT_CORPUS.is_file():
            args.corpus = DEFAULT_CORPUS
        else:
            print(f"evolution: no {DEFAULT_CORPUS}; using --synthetic", file=sys.stderr)
            args.synthetic = True
    if args.corpus is not None and not args.corpus.is_file():
        ap.error(f"--corpus {args.corpus}: no such file")
    if args.workdir is None:
        args.workdir = Path(tempfile.mkdtemp(prefix="darwin-bench-evolution-")) / "repo"
    return args


def setup_repo(root: Path, toml: str, args: argparse.Namespace) -> str:
    """Create the scratch repository and its corpus, or reuse one made with the same settings.

    Returns a description of the corpus.
    """
    from darwin_bot.cli import make_scratch_repo, prepare_corpus

    setup = root / "bench" / "setup.json"
    if root.exists():
        if not setup.is_file():
            raise SystemExit(
                f"evolution: --workdir {root} exists and is not a benchmark; pass a new one"
            )
        known = json.loads(setup.read_text(encoding="utf-8"))
        if known["toml"] != toml:
            raise SystemExit(
                f"evolution: --workdir {root} was made with other settings; pass a new one"
            )
        return known["corpus"]
    make_scratch_repo(root, toml)
    corpus = prepare_corpus(root / "data" / "corpus", args.corpus, args.synthetic, args.seed)
    setup.parent.mkdir(parents=True)
    setup.write_text(json.dumps({"toml": toml, "corpus": corpus}) + "\n", encoding="utf-8")
    return corpus


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from darwin_bot.cli import build_engine, scratch_toml
    from darwin_bot.config import load

    root: Path = args.workdir
    alpha = TARGET_P
    toml = scratch_toml(
        header="benchmarks/evolution.py",
        population=args.population,
        survivors=args.survivors,
        generations=args.generations,
        seed=args.seed,
        iters=args.iters,
        repeats=args.repeats,
        significance=alpha,
        mfu_weight=args.mfu_weight,
        max_cost_ratio=args.max_cost_ratio,
    )
    if args.schedule == "halving":
        toml += f'\n[search]\nschedule = "halving"\nrungs = [{args.rungs}]\nkeep = {args.keep}\n'
    corpus = setup_repo(root, toml, args)
    print(
        f"evolution: scratch repository {root} ({corpus}); resume with --workdir", file=sys.stderr
    )
    engine = build_engine(root, load(root / "darwin.toml"))
    counter = CountingEvaluator(engine.evaluator)
    engine.evaluator = counter

    t0 = time.monotonic()
    engine.baseline()
    engine.use_windows(0)  # the baseline as generation 0 measured it, on a resumed run too
    baseline_wall = time.monotonic() - t0
    base_runs = engine.baseline_runs()
    base_ppl = perplexities(base_runs)
    evolution = run_evolution(engine, counter, args.generations)
    # Equal cost: the random arm also confirms its best with repeats runs, and
    # those (repeats - 1 new ones) come out of the same budget.
    units = evolution.get("compute_units", evolution["training_runs"])
    budget = max(1, int(units) - (args.repeats - 1))
    random_search = (
        None
        if args.no_random
        else run_random_search(engine, counter, budget, args.seed, args.generations)
    )
    arms = {"evolution": evolution.get("head")}
    if random_search is not None:
        arms["random_search"] = random_search.get("head")
    long = long_report(engine, arms, args.long_factor, alpha) if args.long_factor else None

    summary = summarize(base_runs).perplexity
    report = {
        "config": {
            "population": args.population,
            "survivors": args.survivors,
            "generations": args.generations,
            "iters": args.iters,
            "repeats": args.repeats,
            "seed": args.seed,
            "mfu_weight": args.mfu_weight,
            "max_cost_ratio": args.max_cost_ratio,
            "schedule": args.schedule,
            "rungs": args.rungs if args.schedule == "halving" else None,
            "keep": args.keep if args.schedule == "halving" else None,
            "long_factor": args.long_factor,
            "preset": "tiny",
            "llm": "heuristic",
            "corpus": corpus,
            "workdir": str(root),
        },
        "device": base_runs[0].device,
        "baseline": {
            "mean": summary.mean if summary else None,
            "std": summary.std if summary else None,
            "n": len(base_ppl),
            "runs": base_ppl,
            "training_runs": len(base_runs),
            "wall_s": round(baseline_wall, 1),
        },
        "evolution": evolution,
        "random_search": random_search,
        "long": long,
        **(verdict(evolution, random_search) if random_search is not None else {}),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
