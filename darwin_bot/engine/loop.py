"""The evolution loop over one repository: baseline, plan, propose, evaluate, select.

One generation is three idempotent steps, each of which the CI workflow runs
as its own job and ``darwin run`` runs in a row:

``propose(g)``
    plan the offspring (``core.generation.plan``, persisted as
    ``memory/gNNN/plan.json`` so a rerun plans the same), then for each
    offspring without a recorded outcome: mutate a worktree of its parent,
    commit with trailers, smoke-test, repair, and point ``<prefix><agent>`` at
    the result (``offspring.Breeder``). The outcome is written last, so a
    crash mid-offspring redoes only that offspring.
``evaluate(g)``
    score every proposed offspring that has no cached result for its tree
    (``state.EvalCache``: by tree id, preset, budget, evaluator version and corpus).
``select(g)``
    decide keep, cull and champion (``core.generation.select``), write the
    decision as a journal, then carry it out (``selecting``). With a
    confirmation budget the provisional champion and the seed are first run
    there (``confirm=True`` evaluations, a cache of their own; ``confirming``).

Generation 0 is the baseline: the seed (the default branch's tree) evaluated
``budget.repeats`` times. The CI side (matrix, repeat jobs, ingest) is
``engine.ci``. The engine reaches git, memory, the evaluator and the forge
only through the ports of ``engine.ports``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from darwin_bot.config import Config
from darwin_bot.core import fitness as fit
from darwin_bot.core import generation as gen
from darwin_bot.core.agent import agent_id
from darwin_bot.core.confirm import ConfirmSpec
from darwin_bot.core.results import EvalResult, Metrics
from darwin_bot.engine import ci, commits, memory_branch, reseed, selecting
from darwin_bot.engine.evaluating import Evaluations
from darwin_bot.engine.history import History
from darwin_bot.engine.offspring import Breeder
from darwin_bot.engine.ports import (
    SEED_AGENT,
    Evaluator,
    Events,
    Progress,
    Publisher,
    Repository,
    derive_seed,
)
from darwin_bot.engine.records import (
    Baseline,
    GenerationSummary,
    OffspringRecord,
    PlanItem,
)
from darwin_bot.engine.state import RunState, remove_stale_temps
from darwin_bot.engine.verify import verify_state
from darwin_bot.errors import StateError
from darwin_bot.evaluate import importable
from darwin_bot.memory import MemoryStore
from darwin_bot.program import contract_for


class Engine(Evaluations):
    """The evolution over one repository (its evaluations and caches: ``Evaluations``)."""

    def __init__(
        self,
        repo: Repository,
        cfg: Config,
        *,
        evaluator: Evaluator,
        llm_factory: Callable[[int], Any],
        publisher: Publisher | None = None,
        workers: int = 1,
        progress: Progress | None = None,
        events: Events | None = None,
    ) -> None:
        self.repo = repo
        self.cfg = cfg
        self.publisher = publisher
        self._evaluator = evaluator
        if publisher is not None:
            publisher.scored_by(evaluator.version)
        self.workers = max(1, workers)
        self.say = progress or Progress(enabled=False)
        self.events = events or Events()
        self.names: dict[str, str] = {}  # commit or branch -> agent, for progress lines
        self.state = repo.root / cfg.memory.path
        self.memory = MemoryStore(self.state)
        self.run_state = RunState(self.state)
        self.history = History(self.memory)
        # what an evaluation exports (and its cache key): the evolvable
        # paths and the files the program reads but never changes (nanogpt: configurator.py)
        self.evolvable = contract_for(cfg.program).copy_paths(cfg.evolution.evolvable)
        self.confirm_spec = ConfirmSpec.from_config(cfg.budget)  # budget None: confirmation off
        self.llm_factory = llm_factory
        self.breeder = Breeder(repo, cfg, self.memory, evaluator, llm_factory)  # type: ignore[arg-type]
        ev = cfg.evolution
        self.rules = gen.Rules(
            population=ev.population,
            survivors=ev.survivors,
            crossover_rate=ev.crossover_rate,
            method=ev.selection,  # type: ignore[arg-type]
            tournament_size=ev.tournament_size,
            significance=cfg.budget.significance,
            repeats=cfg.budget.repeats,
        )

    @property
    def evaluator(self) -> Evaluator:
        """What scores every run, smoke tests included (one evaluator, whoever holds it)."""
        return self._evaluator

    @evaluator.setter
    def evaluator(self, evaluator: Evaluator) -> None:
        # The breeder smoke-tests with it: a wrapper set here (a benchmark's counter)
        # must see the smoke runs too, not only the training runs.
        self._evaluator = self.breeder.evaluator = evaluator
        if self.publisher is not None:
            self.publisher.scored_by(evaluator.version)

    # -- what is recorded ----------------------------------------------------------
    def generations(self) -> list[dict[str, Any]]:
        """The generation summaries in their stored JSON form, oldest first (for renderers)."""
        return [s.to_json() for s in self.history.summaries()]

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
        verify_state(self)

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
        return memory_branch.commit(self, files, f"{subject}\n\n{commits.body(changed)}")

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

    # -- agents -----------------------------------------------------------------------
    def head(self, agent: str) -> str:
        """The agent's commit: its branch, or the archived head of a culled agent."""
        sha = self.repo.rev(self.repo.branch(agent)) or self.repo.archived(agent)
        if sha is None:
            raise StateError(
                f"agent {agent!r} has no branch and no archived head; run 'darwin status' "
                "for how to restore it"
            )
        self.names[sha] = agent
        return sha

    def seed_head(self) -> str:
        """The seed's commit, whether its branch survived or was culled (archived)."""
        return self.head(SEED_AGENT)

    # -- generation 0 -------------------------------------------------------------------
    def ensure_seed(self, base_ref: str | None = None) -> str:
        """The seed agent's branch, created at the default branch's head if missing."""
        name = self.repo.branch(SEED_AGENT)
        if self.repo.rev(name) is None:
            ref = base_ref or self.repo.default_branch()
            head = self.repo.rev(ref)
            if head is None:
                raise StateError(f"cannot find {ref!r} to take the seed from")
            self.repo.set_branch(SEED_AGENT, head)
        return name

    def baseline(self, base_ref: str | None = None) -> GenerationSummary:
        """Evaluate the seed ``repeats`` times and record generation 0 (idempotent)."""
        done = self.summary(0)
        if done is not None:
            return done
        self.ensure_seed(base_ref)
        return reseed.record_seed(self, 0)

    def baseline_runs(self) -> list[EvalResult]:
        """The seed's runs on the current corpus and budget (trained where missing)."""
        return self.runs(self.seed_head(), self.seeds(self.cfg.budget.repeats))

    def baseline_metrics(self) -> Metrics:
        return self.baseline_record().mean

    def baseline_record(self) -> Baseline:
        """The baseline as a generation summary records it: mean, spread and count of the runs."""
        base = fit.summarize(self.baseline_runs())
        mean = base.mean_metrics()
        if mean is None:
            raise StateError("the baseline has failed runs; delete memory/evals and rerun")
        return Baseline(mean, {k: v.std for k, v in base.metrics.items()}, base.n)

    # -- propose ------------------------------------------------------------------------
    def plan(self, g: int) -> list[PlanItem]:
        """The offspring of generation ``g``: decided and written on first call, read back after."""
        known = self.run_state.plan(g)
        if known is not None:
            return known
        prev = selecting.previous(self, g)
        pool = [r for r in prev.ranking if r.agent in prev.survivors]
        children = {r.agent: self.history.children(r.agent) for r in pool}
        rng = random.Random(derive_seed(self.cfg.evolution.seed, "plan", g))
        items = [
            PlanItem(
                agent=agent_id(g, p.index),
                index=p.index,
                kind=p.kind,
                parents=tuple(p.parents),
                parent_heads=tuple(self.head(a) for a in p.parents),
            )
            for p in gen.plan(pool, children, self.rules, rng)
        ]
        self.run_state.write_plan(g, items)
        return items

    def human_answers(self, g: int) -> tuple[str, tuple[str, ...]]:
        """The humans' answers as prompt text, and the approved imports agent code can import.

        Approved is not installed: only the humans can install, and an edit that
        imports a missing module only fails its smoke test, so none is made and
        the run says what to do.
        """
        if self.publisher is None:
            return "", ()
        context, granted = self.publisher.request_context()
        extra_imports, missing = importable.split(granted)
        if extra_imports:  # what the humans' approvals changed, said where the user looks
            self.say(
                f"generation {g}: approved requests allow import {', '.join(extra_imports)} "
                "beyond llm.allowed_imports"
            )
        if missing:
            self.say(
                f"generation {g}: approved import {importable.missing_note(', '.join(missing))}"
            )
            context += f"\nApproved but not installed yet, so not allowed: {', '.join(missing)}.\n"
        return context, extra_imports

    def propose(self, g: int) -> list[OffspringRecord]:
        """Mutate every planned offspring of ``g`` that has no outcome yet; return all outcomes."""
        self.use_windows(max(g - 1, 0))  # the baseline the prompts quote: as last measured
        context, extra_imports = self.human_answers(g)
        digest = self.memory.digest(self.cfg.memory.digest_tokens)
        baseline = self.baseline_metrics()
        todo = [i for i in self.plan(g) if not self.run_state.offspring_path(g, i.agent).exists()]
        if len(todo) < len(self.plan(g)):  # resumed: say what is kept
            self.say(f"generation {g}: {len(self.plan(g)) - len(todo)} offspring already made")
        self.events.begin(f"generation {g} offspring", len(todo), "agent")
        for item in todo:
            self.breeder.preflight()  # the LLM answers (once), before any offspring is made
            self.say(f"generation {g}: {item.kind} {item.agent} <- {', '.join(item.parents)}")
            made = self.breeder.make(
                g,
                item.to_json(),
                digest=digest,
                context=context,
                extra_imports=extra_imports,
                baseline=baseline,
                parent_metrics=self.history.metrics_of(item.parents[0]),
            )
            self.run_state.write_offspring(OffspringRecord.from_json(made))
            self.events.offspring(OffspringRecord.from_json(made))
        records = self.offspring_records(g)
        return [records[a.agent] for a in self.plan(g)]

    def publish(self, g: int) -> None:
        """Open or update the offspring's PRs and the agents' requests (after the push in CI)."""
        if self.publisher is None:
            return
        records = self.offspring_records(g)
        for rec in records.values():
            if rec.ok:
                self.publisher.offspring(rec.to_json())
        self.publisher.requests([r for rec in records.values() for r in rec.requests])

    # -- evaluate -----------------------------------------------------------------------
    def evaluate(self, g: int) -> dict[str, EvalResult]:
        """Score every offspring of ``g`` that passed its smoke test (cached by tree)."""
        self.use_windows(g)
        ok = [r for r in self.offspring_records(g).values() if r.ok and r.head]
        seed = self.cfg.evolution.seed
        self.say(f"generation {g}: evaluating {len(ok)} offspring ({self.workers} at a time)")
        self.names.update({r.head: r.agent for r in ok if r.head})
        self.evaluate_all([(r.head, seed) for r in ok], what=f"generation {g}")  # type: ignore[misc]
        return {r.agent: self.evaluate_ref(r.head, seed) for r in ok}  # type: ignore[arg-type]

    def repair(self, g: int, failures: dict[str, EvalResult]) -> list[str]:
        """Ask the LLM to fix offspring whose full evaluation failed; return the repaired agents."""
        records = self.offspring_records(g)
        repaired = []
        for agent, result in sorted(failures.items()):
            rec = records.get(agent)
            if rec is None or not rec.ok or rec.repaired_from or rec.head is None:
                continue  # one repair per offspring per generation
            parent_metrics = self.history.metrics_of(rec.parents[0])
            head = self.breeder.repair(g, rec.to_json(), result, parent_metrics)
            if head is not None:
                fixed = OffspringRecord.from_json(
                    {
                        **rec.to_json(),
                        "head": head,
                        "commits": [*rec.commits, head],
                        "repaired_from": rec.head,
                    }
                )
                self.run_state.write_offspring(fixed)
                repaired.append(agent)
        return repaired

    # -- select -------------------------------------------------------------------------
    def provisional_leader(self, g: int) -> str | None:
        """The agent that would lead ``g`` on the runs known now (None: the seed or nobody)."""
        return selecting.provisional_leader(self, g)

    def select(self, g: int, *, confirm: bool = True) -> GenerationSummary:
        """Rank, gate, cull and record generation ``g`` (idempotent; see ``selecting``).

        ``confirm``: run what is missing here (``darwin run``); without it (the
        CI select step) only results already ingested are used.
        """
        self.use_windows(g)
        return selecting.select(self, g, confirm=confirm)

    # -- the loop -----------------------------------------------------------------------
    def generation(self, g: int) -> GenerationSummary:
        self.propose(g)
        self.publish(g)
        self.evaluate(g)
        return self.select(g)

    def run(self, generations: int) -> list[GenerationSummary]:
        """Baseline if needed, then ``generations`` more generations.

        The target is written to ``memory/run.json`` first: a run killed part-way
        and started again with the same command finishes the interrupted run
        instead of adding ``generations`` more. A run is finished when it reached
        its target and its memory is committed; until then it is resumed. Call
        it with the run lock held (``darwin_bot.lock``): it removes the
        worktrees and temporary files a killed run left.
        """
        self.verify()
        self.breeder.preflight()  # before the baseline's training: a bad key fails at once
        for lock in self.repo.remove_stale_locks():
            self.say(f"removed {lock}, left by a git that was killed mid-write")
        self.repo.cleanup_worktrees()
        remove_stale_temps(self.state)
        remove_stale_temps(self.repo.root / self.cfg.forge.path)
        reseed.warn_uncommitted(self)
        reseed.before_baseline(self)  # a seed fixed and committed before any baseline
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
        if reseed.rebaseline(self, last) is not None:  # a new seed committed: its own generation
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

    # -- CI support (engine.ci) -------------------------------------------------------------
    def matrix(self, g: int) -> list[dict[str, Any]]:
        """Evaluation jobs for generation ``g`` that have no cached result yet (``ci.matrix``)."""
        self.use_windows(g)
        return [{**job, "generation": g} for job in ci.matrix(self, g)]

    def confirm_jobs(self, g: int) -> list[dict[str, Any]]:
        """The repeat runs the provisional leader still needs (``ci.confirm_jobs``)."""
        self.use_windows(g)
        return [{**job, "generation": g} for job in ci.confirm_jobs(self, g)]

    def ingest_files(self, results: list[dict[str, Any]]) -> None:
        """Store CI evaluation results in the cache (``ci.ingest``)."""
        ci.ingest(self, results)
