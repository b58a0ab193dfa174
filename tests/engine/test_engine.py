"""The evolution loop over a real git repository, with training replaced by a fake evaluator.

The fake scores a tree by a hash of its files, so these tests are fast and
exact; the real evaluator is exercised in tests/evaluate and test_run_e2e.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from darwin_bot.config import Config, from_dict
from darwin_bot.core import SEED_AGENT, Budget, EvalResult, Metrics
from darwin_bot.engine import DeferredEvaluator, Engine
from darwin_bot.errors import StateError
from darwin_bot.git import GitRepo
from darwin_bot.llm import make_llm


def _files_hash(tree: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((tree / "seed").rglob("*.py")):
        h.update(p.read_bytes())
    return h.hexdigest()


class FakeEvaluator:
    """Perplexity from the tree's hash (+ a little per-seed noise); counts every call."""

    version = "fake-1"

    def __init__(self, fail_when: set[str] | None = None, crash_after: int | None = None) -> None:
        self.calls: Counter[tuple[str, int]] = Counter()
        self.smokes = 0
        self.fail_when = fail_when or set()
        self.crash_after = crash_after

    def __call__(self, tree: Path, *, seed: int, smoke: bool = False) -> EvalResult:
        digest = _files_hash(tree)
        if smoke:
            self.smokes += 1
            if self.crash_after is not None and self.smokes > self.crash_after:
                raise KeyboardInterrupt("simulated kill")
            return EvalResult(
                "ok", "", None, "cpu", seed, Budget(iters=2), self.version, digest[:16]
            )
        self.calls[(digest, seed)] += 1
        if digest[:16] in self.fail_when:
            return EvalResult(
                "failed", "boom", None, "cpu", seed, Budget(iters=10), self.version, digest[:16]
            )
        ppl = self.perplexity(digest, seed)
        m = Metrics(
            val_loss=2.3,
            perplexity=ppl,
            mfu=0.1,
            tokens_per_s=1000.0,
            train_seconds=1.0,
            peak_mem_mb=10.0,
            train_wall_s=1.0,
        )
        return EvalResult("ok", "", m, "cpu", seed, Budget(iters=10), self.version, digest[:16])

    def perplexity(self, digest: str, seed: int) -> float:
        return 10.0 + int(digest[:6], 16) / 0xFFFFFF + 0.001 * seed


def _cfg(**evolution: object) -> Config:
    return from_dict(
        {
            "evolution": {"population": 4, "survivors": 2, "seed": 3, **evolution},
            "budget": {"iters": 10, "repeats": 3},
            "fitness": {"mfu_weight": 0.0},
            "llm": {"backend": "heuristic"},
        }
    )


def _engine(root: Path, cfg: Config, evaluator: FakeEvaluator) -> Engine:
    return Engine(
        GitRepo(root, prefix=cfg.evolution.branch_prefix),
        cfg,
        evaluator=evaluator,
        llm_factory=lambda seed: make_llm(cfg.llm, seed=seed),
    )


def _fingerprint(engine: Engine) -> dict:
    repo = engine.repo
    return {
        "branches": {a: repo.tree_id(repo.branch(a), ["seed/"]) for a in repo.agents()},
        "generations": [
            (
                g["generation"],
                g["survivors"],
                g["culled"],
                [(r["agent"], r["status"], r["perplexity"]) for r in g["ranking"]],
            )
            for g in engine.memory.generations()
        ],
        "mutations": sorted(
            (m["id"], m["summary"], m["outcome"]) for m in engine.memory.mutations()
        ),
    }


def test_a_scored_tree_is_never_trained_again(scratch) -> None:
    ev = FakeEvaluator()
    engine = _engine(scratch(), _cfg(), ev)
    engine.run(3)
    assert [g["generation"] for g in engine.memory.generations()] == [0, 1, 2, 3]
    assert ev.calls, "something was evaluated"
    assert max(ev.calls.values()) == 1, [k for k, v in ev.calls.items() if v > 1]
    # The baseline got its repeats, every proposed offspring at least one run.
    seed_tree = _files_hash_of_ref(engine, engine.head(SEED_AGENT))  # may be culled by now
    assert {s for (h, s) in ev.calls if h == seed_tree} == {3, 4, 5}


def test_an_evaluator_set_on_the_engine_also_runs_its_smoke_tests(scratch) -> None:
    """A wrapper set after construction (the evolution benchmark's counter) sees every run."""
    first, second = FakeEvaluator(), FakeEvaluator()
    engine = _engine(scratch(), _cfg(), first)
    engine.evaluator = second
    engine.run(1)
    assert second.smokes > 0 and second.calls
    assert first.smokes == 0 and not first.calls


def _files_hash_of_ref(engine: Engine, ref: str) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        engine.repo.export(ref, ["seed/"], Path(tmp))
        return _files_hash(Path(tmp))


def test_population_is_filled_and_survivors_are_the_branches(scratch) -> None:
    engine = _engine(scratch(), _cfg(), FakeEvaluator())
    engine.run(2)
    last = engine.memory.generations()[-1]
    assert len(last["survivors"]) == 2
    assert set(engine.repo.agents()) == set(last["survivors"])
    assert len(engine.plan(2)) == 4 - 2  # population minus the survivors carried over
    ranked = [r["agent"] for r in last["ranking"]]
    assert last["survivors"] == ranked[:2]


def test_failed_offspring_never_survive_and_keep_their_lineage(scratch) -> None:
    root = scratch()
    probe = _engine(root, _cfg(), FakeEvaluator())
    probe.baseline()
    probe.propose(1)
    failing = {
        _files_hash_of_ref(probe, r.head)[:16]
        for r in probe.offspring_records(1).values()
        if r.head
    }
    assert failing
    engine = _engine(root, _cfg(), FakeEvaluator(fail_when=failing))
    summary = engine.select(1)
    assert list(summary.survivors) == [SEED_AGENT]
    for row in summary.ranking:
        if row.agent != SEED_AGENT:
            assert row.status == "failed"
            assert row.agent in summary.culled
            assert engine.repo.archived(row.agent) is not None


def _killed_mid_generation(scratch) -> tuple[Engine, Path]:
    """A 2-generation run finished, and the same run killed in generation 1 (its root)."""
    reference = _engine(scratch("a"), _cfg(), FakeEvaluator())
    reference.run(2)
    root = scratch("b")
    crashing = _engine(root, _cfg(), FakeEvaluator(crash_after=2))
    with pytest.raises(KeyboardInterrupt):
        crashing.run(2)
    assert crashing.memory.generations()[-1]["generation"] == 0
    return reference, root


def test_a_run_killed_mid_generation_resumes_to_the_same_state(scratch) -> None:
    reference, root = _killed_mid_generation(scratch)
    resumed = _engine(root, _cfg(), FakeEvaluator())
    resumed.run(2)
    assert _fingerprint(resumed) == _fingerprint(reference)


def test_a_run_whose_git_was_killed_mid_write_resumes_past_its_lock_files(scratch) -> None:
    # A SIGKILL that lands inside 'git commit' or 'git update-ref' leaves index.lock or
    # <ref>.lock, and git then refuses every write until someone deletes it.
    reference, root = _killed_mid_generation(scratch)
    git_dir = root / ".git"
    planted = [git_dir / "index.lock", git_dir / "refs" / "heads" / "main.lock"]
    long_ago = time.time() - 60
    for lock in planted:
        lock.write_text("")
        os.utime(lock, (long_ago, long_ago))
    run_lock = git_dir / "darwin.lock"
    run_lock.write_text("")
    os.utime(run_lock, (long_ago, long_ago))
    resumed = _engine(root, _cfg(), FakeEvaluator())
    resumed.run(2)
    assert _fingerprint(resumed) == _fingerprint(reference)
    assert not any(lock.exists() for lock in planted)
    assert run_lock.exists()  # the run lock is not git's


def test_rerunning_a_finished_step_changes_nothing(scratch) -> None:
    ev = FakeEvaluator()
    engine = _engine(scratch(), _cfg(), ev)
    engine.run(1)
    before = _fingerprint(engine)
    calls = sum(ev.calls.values())
    engine.propose(1)
    engine.evaluate(1)
    engine.select(1)
    assert _fingerprint(engine) == before
    assert sum(ev.calls.values()) == calls


def test_crossover_offspring_are_two_parent_merge_commits(scratch) -> None:
    engine = _engine(
        scratch(), _cfg(crossover_rate=1.0, population=5, survivors=3), FakeEvaluator()
    )
    engine.run(2)
    plan = engine.plan(2)
    crosses = [p for p in plan if p.kind == "crossover"]
    assert crosses, plan
    for p in crosses:
        rec = engine.offspring_records(2)[p.agent]
        if rec.status != "ok":
            continue
        merge = rec.commits[0]
        parents = engine.repo.git("rev-list", "--parents", "-n", "1", merge).split()[1:]
        assert parents == list(p.parent_heads)


def test_the_ci_evaluator_never_runs_agent_code(scratch) -> None:
    cfg = _cfg()
    engine = Engine(
        GitRepo(scratch()),
        cfg,
        evaluator=DeferredEvaluator("1"),
        llm_factory=lambda s: make_llm(cfg.llm, seed=s),
    )
    with pytest.raises(StateError, match="never runs agent code"):
        engine.baseline()
    jobs = engine.matrix(0)
    assert [(j["agent"], j["seed"]) for j in jobs] == [("seed", 3), ("seed", 4), ("seed", 5)]


def test_ci_steps_confirm_the_leader_in_the_same_generation_as_darwin_run(scratch) -> None:
    cfg = _cfg()
    local = _engine(scratch("local"), cfg, FakeEvaluator())
    local.baseline()
    expected = local.generation(1)

    # CI: propose and evaluate as the jobs would, then select without running anything.
    root = scratch("ci")
    jobs_engine = _engine(root, cfg, FakeEvaluator())  # stands for the sandboxed evaluate jobs
    jobs_engine.baseline()
    jobs_engine.propose(1)
    jobs_engine.evaluate(1)
    ci = Engine(
        GitRepo(root), cfg, evaluator=DeferredEvaluator("fake-1"), llm_factory=lambda s: None
    )
    jobs = ci.confirm_jobs(1)
    lead = ci.provisional_leader(1)
    assert lead is not None, "with this seed an offspring leads; the test needs that case"
    assert {j["agent"] for j in jobs} == {lead}
    assert sorted(j["seed"] for j in jobs) == [4, 5]  # seed 3 ran in the first round
    for job in jobs:  # the reevaluate jobs
        jobs_engine.evaluate_ref(job["head"], job["seed"])
    summary = ci.select(1, confirm=False)
    assert summary.ranking == expected.ranking
    assert summary.gate == expected.gate
    assert summary.survivors == expected.survivors


class LuckyFirstRuns(FakeEvaluator):
    """Offspring scored by the order they are first seen: the first two are lucky on seed 3.

    Offspring 0: 8.6 on its first run, 9.0 on its repeats (a real gain, mean 8.87).
    Offspring 1: 8.7 on its first run, 11.0 on its repeats (one lucky run).
    Any later offspring: 12.0. The seed tree keeps the base class's ~10.x.
    """

    def __init__(self, seed_digest: str) -> None:
        super().__init__()
        self.seed_digest = seed_digest
        self.order: list[str] = []

    def perplexity(self, digest: str, seed: int) -> float:
        if digest == self.seed_digest:
            return super().perplexity(digest, seed)
        if digest not in self.order:
            self.order.append(digest)
        first, repeat = {0: (8.6, 9.0), 1: (8.7, 11.0)}.get(self.order.index(digest), (12, 12))
        return first if seed == 3 else repeat


def test_a_confirmed_gain_behind_a_lucky_single_run_is_promoted_by_run_and_by_ci(scratch) -> None:
    # Confirming the first leader drops it behind another offspring's one lucky
    # run; the gate must then test the confirmed agent, in darwin run and in CI alike.
    cfg = _cfg()
    root = scratch("local")
    seed_digest = _files_hash_of_ref(_engine(root, cfg, FakeEvaluator()), "HEAD")
    local = _engine(root, cfg, LuckyFirstRuns(seed_digest))
    local.baseline()
    expected = local.generation(1)
    assert expected.leader is not None and expected.leader != expected.new_champion
    lead = next(r for r in expected.ranking if r.agent == expected.leader)
    assert lead.n_runs == 1 and lead.metrics is not None and lead.metrics.perplexity == 8.7
    assert expected.gate is not None and expected.gate.passed
    assert expected.new_champion == expected.gate.agent
    champ = next(r for r in expected.ranking if r.agent == expected.new_champion)
    assert champ.n_runs == 3 and champ.p_value is not None and champ.p_value < 0.05

    root = scratch("ci")
    jobs_engine = _engine(root, cfg, LuckyFirstRuns(seed_digest))
    jobs_engine.baseline()
    jobs_engine.propose(1)
    jobs_engine.evaluate(1)
    ci = Engine(
        GitRepo(root), cfg, evaluator=DeferredEvaluator("fake-1"), llm_factory=lambda s: None
    )
    for job in ci.confirm_jobs(1):
        jobs_engine.evaluate_ref(job["head"], job["seed"])
    summary = ci.select(1, confirm=False)
    assert summary.gate == expected.gate and summary.new_champion == expected.new_champion
    assert summary.ranking == expected.ranking
