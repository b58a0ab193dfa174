"""The engine's evaluations: the search budget's and the confirmation budget's, each cached.

A tree is scored once per (preset, budget, evaluator version, corpus, seed):
the cache key (``store.state.EvalCache``) holds all five, so a confirmation run
never reuses a search-budget score, nor the other way round, and a run on a
new corpus (``budget.data`` changed after an approved data request) never
reuses a score from the old one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from darwin_bot.config import Config
from darwin_bot.core import (
    Budget,
    ConfirmSpec,
    Cost,
    EvalResult,
    Metrics,
    apply_cost_limit,
    summarize,
)
from darwin_bot.engine.agents import Agents
from darwin_bot.engine.ports import Evaluator, Events, Repository
from darwin_bot.errors import StateError
from darwin_bot.store import Baseline, EvalCache

CONFIRM_SEED_OFFSET = 1000  # confirmation seeds: evolution.seed + 1000, + 1001, ...


class Evaluations:
    """The evaluation step: agents' trees scored by the evaluator, each score cached.

    Built from the ports it needs (the repository, the evaluator, the eval store
    under ``state``); the engine and the other steps share one instance.
    """

    def __init__(
        self,
        repo: Repository,
        cfg: Config,
        evaluator: Evaluator,
        agents: Agents,
        *,
        state: Path,
        evolvable: tuple[str, ...],
        workers: int,
        events: Events,
        say: Callable[[str], None],
    ) -> None:
        self.repo = repo
        self.cfg = cfg
        self.evaluator = evaluator
        self.agents = agents
        self.state = state
        self.evolvable = evolvable
        self.workers = max(1, workers)
        self.events = events
        self.say = say
        self.confirm_spec = ConfirmSpec.from_config(cfg.budget)  # budget None: confirmation off
        # told the evaluator's version when it changes (the publisher: PR bodies read its runs)
        self.on_version: Callable[[str], None] | None = None

    def use_windows(self, g: int) -> None:
        """Score on generation ``g``'s windows from now on, and read the cache of those.

        Called before every step of ``g``, so that all its evaluations (the
        offspring, the survivors carried in, the seed the gate compares with,
        the confirmation runs) are paired; a tree scored in an earlier
        generation is scored again (the evaluator re-scores its kept graph). An
        evaluator with one set of windows for every generation has no
        ``at_generation``: nothing changes.
        """
        at = getattr(self.evaluator, "at_generation", None)
        if at is None:
            return
        at(g)
        if self.on_version is not None:
            self.on_version(self.evaluator.version)

    def seed_head(self) -> str:
        return self.agents.seed_head()

    @property
    def budget(self) -> Budget:
        return Budget(iters=self.cfg.budget.iters, seconds=self.cfg.budget.seconds)

    @property
    def cache(self) -> EvalCache:
        bu = self.cfg.budget
        return EvalCache(self.state, bu.preset, self.budget, self.evaluator.version, bu.data)

    def cache_at(self, confirm: bool, budget: Budget | None = None) -> EvalCache:
        """The search budget's cache, or the confirmation budget's (its key differs).

        ``budget``: a search schedule's rung (``core.schedule``), at the search preset.
        """
        spec = self.confirm_spec
        if budget is not None and budget != self.budget:
            bu = self.cfg.budget
            return EvalCache(self.state, bu.preset, budget, self.evaluator.version, bu.data)
        if not confirm:
            return self.cache
        if spec.budget is None:
            raise StateError("no confirmation budget: set budget.confirm_iters or confirm_seconds")
        version, data = self.evaluator.version, self.cfg.budget.data
        return EvalCache(self.state, spec.preset, spec.budget, version, data)

    def evaluate_ref(
        self, ref: str, seed: int, *, confirm: bool = False, budget: Budget | None = None
    ) -> EvalResult:
        """Evaluate the evolvable tree at ``ref`` (cached by tree id).

        ``confirm``: at the confirmation budget and preset (``budget.confirm_*``);
        ``budget``: at this budget instead of the search budget (a schedule's rung).
        """
        tree, cache = self.repo.tree_id(ref, self.evolvable), self.cache_at(confirm, budget)
        hit = cache.get(tree, seed)
        if hit is not None:
            return hit
        spec = self.confirm_spec
        with tempfile.TemporaryDirectory(prefix="darwin-eval-") as tmp:
            self.repo.export(ref, self.evolvable, Path(tmp))
            if confirm:
                result = self.evaluator(
                    Path(tmp), seed=seed, budget=spec.budget, preset=spec.preset
                )
            elif budget is not None and budget != self.budget:
                preset = self.cfg.budget.preset
                result = self.evaluator(Path(tmp), seed=seed, budget=budget, preset=preset)
            else:  # exactly the call of a search-budget run (confirmation off)
                result = self.evaluator(Path(tmp), seed=seed)
        cache.put(tree, seed, result)
        name = self.agents.names.get(ref) or ref.removeprefix(self.repo.branch(""))
        self.events.run(name, seed, result, self._seed_ppl(confirm, budget))
        return result

    def _seed_ppl(self, confirm: bool, budget: Budget | None = None) -> float | None:
        """The seed's mean perplexity at this budget, from the runs already known (display)."""
        try:
            known = self.known_runs(self.seed_head(), confirm=confirm, budget=budget)
            mean = summarize(known).mean_metrics()
        except StateError:  # no seed yet
            return None
        return mean.perplexity if mean is not None else None

    def runs(self, ref: str, seeds: range) -> list[EvalResult]:
        return [self.evaluate_ref(ref, s) for s in seeds]

    def known_runs(
        self, head: str, *, confirm: bool = False, budget: Budget | None = None
    ) -> list[EvalResult]:
        """The cached runs of ``head`` among the repeat seeds; never trains.

        ``confirm``: the confirmation budget's runs (``confirm_seeds``);
        ``budget``: a schedule rung's runs.
        """
        tree, cache = self.repo.tree_id(head, self.evolvable), self.cache_at(confirm, budget)
        seeds = self.confirm_seeds() if confirm else self.seeds(self.cfg.budget.repeats)
        found = (cache.get(tree, s) for s in seeds)
        return [r for r in found if r is not None]

    def held_runs(
        self,
        head: str,
        base: Cost | None,
        *,
        confirm: bool = False,
        budget: Budget | None = None,
    ) -> list[EvalResult]:
        """``head``'s known runs with the budget held: ``over_budget`` past the cost limit.

        The harness measured each run's cost; the limit is relative to ``base``, the
        seed's mean cost under the same budget, so it is applied where that baseline
        is known (a run over it ranks with the failures and never counts towards the
        gate). ``confirm`` and ``budget`` pick the runs as :meth:`known_runs` does.
        """
        bu = self.cfg.budget
        return [
            apply_cost_limit(r, base, bu.max_cost_ratio, bu.seconds_cost_ratio)
            for r in self.known_runs(head, confirm=confirm, budget=budget)
        ]

    def evaluate_all(
        self,
        jobs: list[tuple[str, int]],
        *,
        confirm: bool = False,
        what: str = "",
        budget: Budget | None = None,
    ) -> None:
        """Evaluate (ref, seed) pairs, ``workers`` at a time; results land in the cache.

        ``what`` names the batch in progress output ("generation 2 offspring");
        ``budget``: a schedule's rung instead of the search budget.
        """
        cache = self.cache_at(confirm, budget)
        todo = [
            (r, s) for r, s in jobs if cache.get(self.repo.tree_id(r, self.evolvable), s) is None
        ]
        kind = "confirmation runs" if confirm else "training runs"
        label = f"{what} {kind}" if what else kind
        if len(todo) < len(jobs):  # a resumed run says what it skips
            self.say(f"{label}: {len(jobs) - len(todo)} of {len(jobs)} already measured (cached)")
        if todo:
            self.events.begin(label, len(todo), "run")
        if self.workers == 1 or len(todo) < 2:
            for ref, seed in todo:
                self.evaluate_ref(ref, seed, confirm=confirm, budget=budget)
            return

        def run(job: tuple[str, int]) -> EvalResult:
            return self.evaluate_ref(*job, confirm=confirm, budget=budget)

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(run, todo))

    def seeds(self, n: int) -> range:
        s0 = self.cfg.evolution.seed
        return range(s0, s0 + n)

    def confirm_seeds(self) -> range:
        """The confirmation runs' seeds: ``confirm_repeats`` of them, none a search seed.

        Independent of the search runs (a longer run with the same seed would
        share its start), and distinct in CI, where a matrix leg is named by
        agent and seed.
        """
        s0 = self.cfg.evolution.seed + CONFIRM_SEED_OFFSET
        return range(s0, s0 + self.confirm_spec.repeats)

    # -- the baseline: the seed's runs ------------------------------------------------
    def baseline_runs(self) -> list[EvalResult]:
        """The seed's runs on the current corpus and budget (trained where missing).

        Runs still to measure are announced as their own batch, so the progress
        of the batch around them (a generation's offspring) counts only its own.
        """
        head, seeds = self.seed_head(), self.seeds(self.cfg.budget.repeats)
        tree = self.repo.tree_id(head, self.evolvable)
        missing = sum(self.cache.get(tree, s) is None for s in seeds)
        if missing:
            self.events.begin("the seed's training runs", missing, "run")
        return self.runs(head, seeds)

    def baseline_metrics(self) -> Metrics:
        return self.baseline_record().mean

    def baseline_record(self) -> Baseline:
        """The baseline as a generation summary records it: mean, spread and count of the runs."""
        base = summarize(self.baseline_runs())
        mean = base.mean_metrics()
        if mean is None:
            raise StateError("the baseline has failed runs; delete memory/evals and rerun")
        return Baseline(mean, {k: v.std for k, v in base.metrics.items()}, base.n)
