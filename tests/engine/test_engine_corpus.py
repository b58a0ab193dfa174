"""A new corpus (an approved data request, ``budget.data`` changed) is measured, never assumed.

Training is the fake evaluator of tests/engine/test_engine.py with one change: its
perplexity depends on the corpus the engine's config names, as real training
would. After the switch, nothing measured on the old corpus may be compared
with a run on the new one: the baseline and the survivors are trained again,
in ``darwin run`` and in the CI matrix alike.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from darwin_bot.config import Config
from darwin_bot.core import SEED_AGENT
from darwin_bot.engine import DeferredEvaluator, Engine
from darwin_bot.git import GitRepo
from tests.engine.test_engine import FakeEvaluator, _cfg, _engine, _files_hash_of_ref

NEW_CORPUS = "data/bigger_corpus"


class CorpusEvaluator(FakeEvaluator):
    """The fake's perplexity, 3.0 lower on the new corpus (a different, easier corpus)."""

    def __init__(self) -> None:
        super().__init__()
        self.corpus = "data/shakespeare_char"
        self.by_corpus: dict[str, list[tuple[str, int]]] = {}

    def perplexity(self, digest: str, seed: int) -> float:
        self.by_corpus.setdefault(self.corpus, []).append((digest, seed))
        return super().perplexity(digest, seed) - (3.0 if self.corpus == NEW_CORPUS else 0.0)


def _switched(cfg: Config) -> Config:
    return dataclasses.replace(cfg, budget=dataclasses.replace(cfg.budget, data=NEW_CORPUS))


def test_after_a_corpus_change_the_seed_and_the_survivors_are_trained_again(scratch) -> None:
    cfg, ev = _cfg(), CorpusEvaluator()
    root = scratch()
    engine = _engine(root, cfg, ev)
    engine.run(1)
    first = engine.summary(1)
    assert first is not None and first.data == "data/shakespeare_char"
    old_base = first.baseline
    assert old_base is not None

    ev.corpus = NEW_CORPUS
    engine = _engine(root, _switched(cfg), ev)
    second = engine.run(2)[-1]
    assert second.data == NEW_CORPUS
    seed_tree = _files_hash_of_ref(engine, engine.head(SEED_AGENT))
    new_runs = ev.by_corpus[NEW_CORPUS]
    # the baseline: every repeat seed of the seed tree again, on the new corpus
    assert sorted(s for d, s in new_runs if d == seed_tree) == [3, 4, 5]
    # every survivor of generation 1 trained again on the new corpus
    trained = {d for d, _ in new_runs}
    for agent in first.survivors:
        assert _files_hash_of_ref(engine, engine.head(agent)) in trained, agent
    # the recorded baseline is the new corpus's (3.0 lower), not generation 0's
    assert second.baseline is not None
    assert abs(old_base.mean.perplexity - second.baseline.mean.perplexity - 3.0) < 0.01
    # every row of generation 2 was measured on the new corpus: all ~3 lower than on the old
    for row in second.ranking:
        if row.ok and row.metrics is not None:
            assert row.metrics.perplexity < 8.1, row


def test_fitness_deltas_after_a_corpus_change_compare_runs_on_the_same_corpus(scratch) -> None:
    cfg, ev = _cfg(), CorpusEvaluator()
    root = scratch()
    engine = _engine(root, cfg, ev)
    engine.run(1)
    ev.corpus = NEW_CORPUS
    engine = _engine(root, _switched(cfg), ev)
    engine.run(2)
    second = engine.summary(2)  # the generation whose offspring are read below
    assert second is not None
    records = engine.offspring_records(2)
    checked = 0
    for mut in engine.memory.mutations(2):
        rec = records[mut["agent"]]
        child, parent = second.row(mut["agent"]), second.row(rec.parents[0])
        if mut["fitness_delta"] is None or child is None or parent is None or not parent.ok:
            continue
        assert abs(mut["fitness_delta"] - (child.fitness - parent.fitness)) < 1e-9
        checked += 1
    assert checked, "no offspring of generation 2 had a measured parent; the test needs one"


def test_the_ci_matrix_asks_for_the_baseline_and_the_survivors_on_a_new_corpus(scratch) -> None:
    cfg, ev = _cfg(), CorpusEvaluator()
    root = scratch()
    engine = _engine(root, cfg, ev)
    engine.run(1)
    survivors = engine.summary(1).survivors  # type: ignore[union-attr]
    ci = Engine(
        GitRepo(root), cfg, evaluator=DeferredEvaluator("fake-1"), llm_factory=lambda s: None
    )
    ev.corpus = "data/shakespeare_char"
    _engine(root, cfg, ev).propose(2)
    same = {(j["agent"], j["seed"]) for j in ci.matrix(2)}
    assert all(a not in survivors and a != SEED_AGENT for a, _ in same), same

    switched = Engine(
        GitRepo(root),
        _switched(cfg),
        evaluator=DeferredEvaluator("fake-1"),
        llm_factory=lambda s: None,
    )
    jobs = {(j["agent"], j["seed"]) for j in switched.matrix(2)}
    assert {(SEED_AGENT, s) for s in (3, 4, 5)} <= jobs
    assert {(a, 3) for a in survivors if a != SEED_AGENT} <= jobs
    assert same - {(a, s) for a, s in jobs} == set(), "the offspring are still in the matrix"


def test_a_corpus_is_part_of_the_cache_key(tmp_path: Path) -> None:
    from darwin_bot.core import Budget
    from darwin_bot.store import EvalCache

    a = EvalCache(tmp_path, "tiny", Budget(iters=10), "2", "data/shakespeare_char")
    b = EvalCache(tmp_path, "tiny", Budget(iters=10), "2", "data/other")
    c = EvalCache(tmp_path, "tiny", Budget(iters=10), "2", "/data/shakespeare_char/")
    assert a.path("t", 0) != b.path("t", 0)
    assert a.path("t", 0) == c.path("t", 0)
    assert "/" not in a.key
