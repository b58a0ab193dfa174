"""The evolution loop over one repository: baseline, plan, propose, evaluate, select.

One generation is three idempotent steps, each of which the CI workflow runs
as its own job and ``darwin run`` runs in a row:

``propose(g)``
    plan the offspring (``core.generation.plan``, persisted as
    ``memory/gNNN/plan.json`` so a rerun plans the same), then for each
    offspring without a recorded outcome: mutate a worktree of its parent,
    commit with trailers, smoke-test, repair, and point ``<prefix><agent>`` at
    the result (``proposing.Propose`` with ``offspring.Breeder``). The outcome
    is written last, so a crash mid-offspring redoes only that offspring.
``evaluate(g)``
    score every proposed offspring that has no cached result for its tree
    (``evaluating.Evaluations``; ``store.state.EvalCache``: by tree id, preset,
    budget, evaluator version and corpus).
``select(g)``
    decide keep, cull and champion (``core.generation.select``), write the
    decision as a journal, then carry it out (``selecting.Select``). With a
    confirmation budget the provisional champion and the seed are first run
    there (``confirm=True`` evaluations, a cache of their own; ``confirming``).

Generation 0 is the baseline: the seed (the default branch's tree) evaluated
``budget.repeats`` times (``reseed.Reseed``). The CI side (matrix, repeat
jobs, ingest) is ``ci.CiJobs``, over the same steps. Each step is built from
the ports it needs (``engine.ports``) and holds no reference to the Engine,
which only builds and sequences them and owns the run's resume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from darwin_bot.config import Config
from darwin_bot.core import EvalResult, Metrics, Rules
from darwin_bot.engine import commits, memory_branch
from darwin_bot.engine.agents import Agents
from darwin_bot.engine.ci import CiJobs
from darwin_bot.engine.evaluating import Evaluations
from darwin_bot.engine.offspring import Breeder
from darwin_bot.engine.ports import (
    SEED_AGENT,
    Evaluator,
    Events,
    Publisher,
    Repository,
    Say,
)
from darwin_bot.engine.proposing import Propose
from darwin_bot.engine.reseed import Reseed
from darwin_bot.engine.selecting import Select
from darwin_bot.engine.verify import verify_state
from darwin_bot.program import contract_for
from darwin_bot.store import (
    GenerationSummary,
    History,
    MemoryStore,
    OffspringRecord,
    PlanItem,
    RunState,
    remove_stale_temps,
)


def _quiet(msg: str) -> None:
    """The progress of an engine built without one: nothing said."""


def _rules(cfg: Config) -> Rules:
    ev = cfg.evolution
    return Rules(
        population=ev.population,
        survivors=ev.survivors,
        crossover_rate=ev.crossover_rate,
        method=ev.selection,  # type: ignore[arg-type]
        tournament_size=ev.tournament_size,
        significance=cfg.budget.significance,
        repeats=cfg.budget.repeats,
    )


class Engine:
    """The evolution over one repository: builds the steps, sequences them, resumes a run."""

    def __init__(
        self,
        repo: Repository,
        cfg: Config,
        *,
        evaluator: Evaluator,
        llm_factory: Callable[[int], Any],
        publisher: Publisher | None = None,
        workers: int = 1,
        progress: Say | None = None,
        events: Events | None = None,
    ) -> None:
        self.repo, self.cfg, self.publisher = repo, cfg, publisher
        self.say: Say = progress or _quiet
        self.events = events or Events()
        self.state = repo.root / cfg.memory.path
        self.memory = MemoryStore(self.state)
        self.run_state = RunState(self.state)
        self.history = History(self.memory)
        self.agents = Agents(repo)
        # what an evaluation exports (and its cache key): the evolvable
        # paths and the files the program reads but never changes (nanogpt: configurator.py)
        evolvable = contract_for(cfg.program).copy_paths(cfg.evolution.evolvable)
        self.evals = Evaluations(
            repo,
            cfg,
            evaluator,
            self.agents,
            state=self.state,
            evolvable=evolvable,
            workers=workers,
            events=self.events,
            say=self.say,
        )
        self.rules = _rules(cfg)
        self.breeder = Breeder(repo, cfg, self.memory, evaluator, llm_factory)  # type: ignore[arg-type]
        self._steps(llm_factory)
        self.llm_factory = llm_factory
        if publisher is not None:
            publisher.scored_by(evaluator.version)
            self.evals.on_version = publisher.scored_by  # PR bodies: this generation's windows

    def _steps(self, llm_factory: Callable[[int], Any]) -> None:
        """The steps of a generation, each from the ports it needs (none holds the Engine)."""
        cfg, repo, publisher = self.cfg, self.repo, self.publisher
        self.proposer = Propose(
            cfg,
            self.evals,
            self.memory,
            self.history,
            self.run_state,
            self.breeder,
            rules=self.rules,
            publisher=publisher,
            events=self.events,
            say=self.say,
        )
        self.selector = Select(
            cfg,
            repo,
            self.evals,
            self.history,
            self.run_state,
            rules=self.rules,
            publisher=publisher,
            llm_factory=llm_factory,
            say=self.say,
        )
        self.reseed = Reseed(cfg, repo, self.evals, self.history, self.run_state, self.say)
        self.ci = CiJobs(self.selector)

    @property
    def evaluator(self) -> Evaluator:
        """What scores every run, smoke tests included (one evaluator, whoever holds it)."""
        return self.evals.evaluator

    @evaluator.setter
    def evaluator(self, evaluator: Evaluator) -> None:
        # The breeder smoke-tests with it: a wrapper set here (a benchmark's counter)
        # must see the smoke runs too, not only the training runs.
        self.evals.evaluator = self.breeder.evaluator = evaluator
        if self.publisher is not None:
            self.publisher.scored_by(evaluator.version)

    @property
    def llm_factory(self) -> Callable[[int], Any]:
        """What makes the LLM of a generation (and, as the spend ledger, bills it)."""
        return self._llm_factory

    @llm_factory.setter
    def llm_factory(self, factory: Callable[[int], Any]) -> None:
        self._llm_factory = self.breeder.llm_factory = self.selector.llm_factory = factory

    # -- what is recorded ----------------------------------------------------------
    def generations(self) -> list[GenerationSummary]:
        """The generation summaries, oldest first (for renderers)."""
        return list(self.history.summaries())

    def summary(self, g: int) -> GenerationSummary | None:
        return self.history.summary(g)

    def offspring_records(self, g: int) -> dict[str, OffspringRecord]:
        return self.run_state.offspring(g)

    def completed(self) -> int | None:
        """The last generation whose summary was written (None: not even the baseline)."""
        return self.memory.last_generation()

    def next_generation(self) -> int:
        """The generation a CI step works on: the one after the last recorded summary."""
        last = self.completed()
        return 0 if last is None else last + 1

    def proposed(self, g: int) -> bool:
        """Whether generation ``g`` was planned (``g`` > 0) or its seed branch made (``g`` = 0)."""
        if g == 0:
            return self.repo.rev(self.repo.branch(SEED_AGENT)) is not None
        return self.run_state.plan_path(g).exists()

    def verify(self) -> None:
        """Check the memory files and the agents they name before any work (see ``verify``)."""
        verify_state(self.repo, self.memory, self.history, self.run_state)

    def commit_memory(self, message: str | None = None) -> str | None:
        """Commit darwin's own files under the memory folder on the memory branch.

        Never on the checked-out branch (``engine.memory_branch``). Files darwin did
        not write are never committed. Without ``message`` the subject names the
        generation summaries the commit records, and nothing is committed until one
        is among the changes; the body counts what the commit carries. None when
        nothing was committed.
        """
        files, changed = self._memory_changes()
        subject = message or commits.subject(changed)
        if not changed or subject is None:
            return None
        message = f"{subject}\n\n{commits.body(changed)}"
        return memory_branch.commit(self.repo, self.cfg.memory.path, files, message, self.say)

    def memory_files(self) -> list[str]:
        """darwin's own files under the memory folder (repository-relative): all it commits.

        Records and the engine's state files, plus the two folders only darwin writes:
        ``spend/`` (the LLM ledger, one ``<session>.json`` per process) and ``plots/``
        (the PR images, ``<agent>.png``).
        """
        root = self.repo.root
        own = [*self.memory.record_files(), *self.run_state.own_files()]
        own += sorted((self.state / "spend").glob("*.json"))
        own += sorted((self.state / "plots").glob("*.png"))
        return [p.relative_to(root).as_posix() for p in own]

    def _memory_changes(self) -> tuple[list[str], list[str]]:
        """(darwin's files under the memory folder, those the memory branch does not hold)."""
        files = self.memory_files()
        return files, memory_branch.changed(self.repo, files)

    # -- the steps' views the CLI and the benchmarks use ------------------------------------
    def head(self, agent: str) -> str:
        return self.agents.head(agent)

    def seed_head(self) -> str:
        return self.agents.seed_head()

    def ensure_seed(self, base_ref: str | None = None) -> str:
        return self.agents.ensure_seed(base_ref)

    def evaluate_ref(self, ref: str, seed: int, *, confirm: bool = False) -> EvalResult:
        return self.evals.evaluate_ref(ref, seed, confirm=confirm)

    def runs(self, ref: str, seeds: range) -> list[EvalResult]:
        return self.evals.runs(ref, seeds)

    def baseline_runs(self) -> list[EvalResult]:
        return self.evals.baseline_runs()

    def baseline_metrics(self) -> Metrics:
        return self.evals.baseline_metrics()

    # -- the steps of one generation ----------------------------------------------------
    def baseline(self, base_ref: str | None = None) -> GenerationSummary:
        """Evaluate the seed ``repeats`` times and record generation 0 (idempotent)."""
        done = self.summary(0)
        if done is not None:
            return done
        self.agents.ensure_seed(base_ref)
        return self.reseed.record_seed(0)

    def plan(self, g: int) -> list[PlanItem]:
        return self.proposer.plan(g)

    def human_answers(self, g: int) -> tuple[str, tuple[str, ...]]:
        return self.proposer.human_answers(g)

    def use_windows(self, g: int) -> None:
        """Score on generation ``g``'s windows from now on (``Evaluations.use_windows``)."""
        self.evals.use_windows(g)

    def propose(self, g: int) -> list[OffspringRecord]:
        self.use_windows(max(g - 1, 0))  # the baseline the prompts quote: as last measured
        return self.proposer.propose(g)

    def publish(self, g: int) -> None:
        self.proposer.publish(g)

    def repair(self, g: int, failures: dict[str, EvalResult]) -> list[str]:
        return self.proposer.repair(g, failures)

    def evaluate(self, g: int) -> dict[str, EvalResult]:
        """Score every offspring of ``g`` that passed its smoke test (cached by tree)."""
        self.use_windows(g)
        ok = [r for r in self.offspring_records(g).values() if r.ok and r.head]
        seed = self.cfg.evolution.seed
        self.say(f"generation {g}: evaluating {len(ok)} offspring ({self.evals.workers} at a time)")
        self.agents.names.update({r.head: r.agent for r in ok if r.head})
        self.evals.evaluate_all([(r.head, seed) for r in ok], what=f"generation {g}")  # type: ignore[misc]
        return {r.agent: self.evals.evaluate_ref(r.head, seed) for r in ok}  # type: ignore[arg-type]

    def provisional_leader(self, g: int) -> str | None:
        """The agent that would lead ``g`` on the runs known now (None: the seed or nobody)."""
        return self.selector.provisional_leader(g)

    def select(self, g: int, *, confirm: bool = True) -> GenerationSummary:
        """Rank, gate, cull and record generation ``g`` (idempotent; see ``selecting``).

        ``confirm``: run what is missing here (``darwin run``); without it (the
        CI select step) only results already ingested are used.
        """
        self.use_windows(g)
        return self.selector.select(g, confirm=confirm)

    def generation(self, g: int) -> GenerationSummary:
        self.propose(g)
        self.publish(g)
        self.evaluate(g)
        return self.select(g)

    # -- the loop -----------------------------------------------------------------------
    def run(self, generations: int) -> list[GenerationSummary]:
        """Baseline if needed, then ``generations`` more generations.

        The target is written to ``memory/run.json`` first: a run killed part-way
        and started again with the same command finishes the interrupted run
        instead of adding ``generations`` more. A run is finished when it reached
        its target and its memory is committed; until then it is resumed. Call
        it with the run lock held (``darwin_bot.git.runlock``): it removes the
        worktrees and temporary files a killed run left.
        """
        self.verify()
        self.breeder.preflight()  # before the baseline's training: a bad key fails at once
        for lock in self.repo.remove_stale_locks():
            self.say(f"removed {lock}, left by a git that was killed mid-write")
        self.repo.cleanup_worktrees()
        remove_stale_temps(self.state)
        remove_stale_temps(self.repo.root / self.cfg.forge.path)
        self.reseed.warn_uncommitted()
        self.reseed.before_baseline()  # a seed fixed and committed before any baseline
        if self.summary(0) is None:
            self.events.generation(self.baseline())
        last = self.completed() or 0
        target = self.run_state.target()
        unfinished = target is not None and (target > last or bool(self._memory_changes()[1]))
        if last > 0:
            self.select(last)  # finish a selection a kill interrupted (its journal says where)
        self.commit_memory()
        if target is None or not unfinished:
            target = last + generations
            self.run_state.set_target(target)
        if self.reseed.rebaseline(last) is not None:  # a new seed committed: its own generation
            last, target = last + 1, target + 1
            self.run_state.set_target(target)
            self.commit_memory()
        out = []
        for g in range(last + 1, target + 1):
            if self.publisher is not None and self.publisher.controls().get("pause"):
                self.say("paused from the dashboard; nothing to do")
                break
            # past llm.max_usd no generation starts;
            # the factory has said why (once) and recorded it in the ledger.
            spend_stop = getattr(self.llm_factory, "stop_reason", None)
            if spend_stop is not None and spend_stop():
                break
            out.append(self.generation(g))
            self.events.generation(out[-1])  # its leaderboard, as it ends
            self.commit_memory()
        return out

    # -- CI support (the same steps, as jobs: ``ci.CiJobs``) ---------------------------------
    def matrix(self, g: int) -> list[dict[str, Any]]:
        """Evaluation jobs for generation ``g`` that have no cached result yet."""
        self.use_windows(g)
        return [{**job, "generation": g} for job in self.ci.matrix(g)]

    def confirm_jobs(self, g: int) -> list[dict[str, Any]]:
        """The repeat runs the provisional leader still needs."""
        self.use_windows(g)
        return [{**job, "generation": g} for job in self.ci.confirm_jobs(g)]

    def rung_jobs(self, g: int) -> list[dict[str, Any]]:
        """The next leg of a halving schedule (``ci.CiJobs.rung_jobs``)."""
        self.use_windows(g)
        return [{**job, "generation": g} for job in self.ci.rung_jobs(g)]

    def ingest_files(self, results: list[dict[str, Any]]) -> None:
        """Store CI evaluation results in the cache."""
        self.ci.ingest(results)
