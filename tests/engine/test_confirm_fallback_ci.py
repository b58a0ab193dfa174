"""CI confirms, in one round, the agent the gate falls back to, not only the provisional leader.

The case: generation 1's leader A passed the search gate in CI, but its
confirmation runs never came (the generation ended awaiting them), so A
survives with its repeats and no champion. In generation 2, offspring B leads
on one lucky run and offspring C is close behind on one run. CI's repair step
asks for B's repeats and confirmation runs; B's repeats drop it, C then leads
with one run, and the gate falls back to A, the best agent with repeats. A's
confirmation runs must have been asked for in that same round, or select can
only say "awaiting confirmation" again.
"""

from __future__ import annotations

from pathlib import Path

from darwin_bot.core import Budget, EvalResult, Metrics
from darwin_bot.core.confirm import Verdict
from darwin_bot.engine import DeferredEvaluator, Engine
from darwin_bot.git import GitRepo
from tests.engine.test_engine import _files_hash
from tests.engine.test_engine_confirm import CONFIRM, SEARCH, _cfg, _engine, _seed_hash


class Scripted:
    """Perplexity by the order in which offspring trees are first seen, by seed and budget."""

    version = "fake-1"

    def __init__(self, seed_hash: str) -> None:
        self.seed_hash = seed_hash
        self.order: list[str] = []
        self.names: dict[str, str] = {}  # digest -> "B" or "C", set once generation 2 exists

    def _ppl(self, digest: str, seed: int, budget: Budget) -> float:
        if digest == self.seed_hash:
            return 10.0 + 0.001 * seed
        if digest not in self.order:
            self.order.append(digest)
        i = self.order.index(digest)
        if i == 0:  # A, generation 1: a real gain at both budgets
            return 9.0 + 0.001 * seed
        if budget == CONFIRM:
            return 12.0
        first = {"B": 8.5, "C": 8.9}.get(self.name(digest), 12.0)
        return first if seed == 3 else 11.0

    def name(self, digest: str) -> str:
        return self.names.get(digest, "")

    def __call__(
        self,
        tree: Path,
        *,
        seed: int,
        smoke: bool = False,
        budget: Budget | None = None,
        preset: str | None = None,
    ) -> EvalResult:
        digest = _files_hash(tree)
        if smoke:
            return EvalResult("ok", "", None, "cpu", seed, Budget(iters=2), self.version, digest)
        budget = budget or SEARCH
        m = Metrics(2.3, self._ppl(digest, seed, budget), 0.1, 1000.0, 1.0, 10.0, 1.0)
        return EvalResult(
            "ok", "", m, "cpu", seed, budget, self.version, digest[:16], preset=preset or "tiny"
        )


def _run_jobs(engine: Engine, jobs: list[dict], *, confirm_legs: bool = True) -> None:
    for job in jobs:
        confirm = job.get("budget") == "confirm"
        if confirm and not confirm_legs:
            continue
        engine.evaluate_ref(job["head"], job["seed"], confirm=confirm)


def _tree_hash(engine: Engine, agent: str) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        engine.repo.export(engine.head(agent), ["seed/"], Path(tmp))
        return _files_hash(Path(tmp))


def test_ci_confirms_the_fallback_agent_in_the_same_round(scratch) -> None:
    cfg = _cfg(confirm=True)
    root = scratch()
    ev = Scripted(_seed_hash(root))
    jobs_engine = _engine(root, cfg, ev)
    ci = Engine(
        GitRepo(root, prefix=cfg.evolution.branch_prefix),
        cfg,
        evaluator=DeferredEvaluator("fake-1"),
        llm_factory=lambda s: None,
    )
    jobs_engine.baseline()
    jobs_engine.propose(1)
    jobs_engine.evaluate(1)
    _run_jobs(jobs_engine, ci.confirm_jobs(1), confirm_legs=False)  # the confirm legs never ran
    first = ci.select(1, confirm=False)
    assert first.promotion is not None
    assert first.promotion.verdict is Verdict.AWAITING_CONFIRMATION
    a = first.gate.agent  # type: ignore[union-attr]
    assert a in first.survivors and first.new_champion is None

    jobs_engine = _engine(root, cfg, ev)  # a new job: it reads the summary select wrote
    jobs_engine.propose(2)
    kids = [r for r in jobs_engine.offspring_records(2).values() if r.ok]
    assert len(kids) >= 2, "the test needs two offspring in generation 2"
    ev.names = {_tree_hash(jobs_engine, kids[0].agent): "B"}
    ev.names[_tree_hash(jobs_engine, kids[1].agent)] = "C"
    jobs_engine.evaluate(2)

    jobs = ci.confirm_jobs(2)
    assert {j["agent"] for j in jobs if j.get("budget") == "confirm"} >= {a, kids[0].agent}
    _run_jobs(jobs_engine, jobs)
    second = ci.select(2, confirm=False)
    assert second.leader == kids[1].agent  # C leads on its one run
    assert second.gate is not None and second.gate.agent == a  # the gate falls back to A
    assert second.promotion is not None and second.promotion.verdict is Verdict.PROMOTED
    assert second.new_champion == a
