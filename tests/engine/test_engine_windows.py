"""Each generation is scored on its own windows: paired within it, new for the next.

A fake evaluator stands for the trusted one: like it, it has ``at_generation``,
names its windows in ``version`` (so in the cache key), and its scores depend
on the windows (a tree scores differently on another generation's windows).
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import pytest

from darwin_bot.cli import make_scratch_repo
from darwin_bot.core import SEED_AGENT, Budget, EvalResult, Metrics
from darwin_bot.engine import DeferredEvaluator, Engine, Events
from darwin_bot.errors import StateError
from darwin_bot.git import GitRepo
from darwin_bot.llm import make_llm
from tests.engine.test_engine import FakeEvaluator, _cfg, _engine, _files_hash, _files_hash_of_ref


class WindowedEvaluator(FakeEvaluator):
    """Scores on the windows of the generation it was last told; records which per run."""

    def __init__(self) -> None:
        super().__init__()
        self.generation: int | None = None
        self.scored: Counter[tuple[str, int, int | None]] = Counter()  # (tree, seed, generation)

    def at_generation(self, g: int) -> None:
        self.generation = g

    @property
    def windows(self) -> str:
        return f"f00d-g{self.generation}"

    @property
    def version(self) -> str:  # type: ignore[override]
        return f"fake-1-w{self.windows}"

    def __call__(self, tree: Path, *, seed: int, smoke: bool = False) -> EvalResult:
        result = super().__call__(tree, seed=seed, smoke=smoke)
        if not smoke:
            self.scored[(_files_hash(tree), seed, self.generation)] += 1
            result.extra["windows"] = f"secret {self.windows}"
        return result

    def perplexity(self, digest: str, seed: int) -> float:
        return window_ppl(digest, seed, self.generation)


def window_ppl(digest: str, seed: int, generation: int | None) -> float:
    """Another generation's windows give another perplexity, by the tree and the windows."""
    return 10.0 + int(digest[:6], 16) / 0xFFFFFF + 0.001 * seed + 0.37 * (generation or 0)


@pytest.fixture(scope="module")
def two_generations(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, WindowedEvaluator]:
    root = tmp_path_factory.mktemp("windows") / "repo"
    make_scratch_repo(root, "")
    ev = WindowedEvaluator()
    engine = _engine(root, _cfg(), ev)  # type: ignore[arg-type]
    engine.run(2)
    return engine, ev


def test_every_run_of_a_generation_is_scored_on_that_generations_windows(two_generations) -> None:
    engine, ev = two_generations
    seed_tree = _files_hash_of_ref(engine, engine.head(SEED_AGENT))
    for g in (0, 1, 2):
        # the seed's repeats, the baseline of the gate, once on each generation's windows
        assert {s for (t, s, at) in ev.scored if t == seed_tree and at == g} == {3, 4, 5}, g
    assert None not in {at for (_, _, at) in ev.scored}, "no run outside a generation's windows"
    assert max(ev.scored.values()) == 1, "nothing is scored twice on the same windows"
    for g in (1, 2):
        summary = engine.summary(g)
        assert summary is not None
        # the gate's baseline is the seed on this generation's windows, not generation 0's
        expected = statistics.mean(window_ppl(seed_tree, s, g) for s in (3, 4, 5))
        assert summary.baseline.mean.perplexity == pytest.approx(expected)
        for row in summary.ranking:  # every working row was measured on these windows too
            if row.ok and row.agent != SEED_AGENT:
                tree = _files_hash_of_ref(engine, engine.head(row.agent))
                assert (tree, 3, g) in ev.scored, (g, row.agent)


def test_the_survivors_carried_in_are_scored_again_on_the_new_windows(two_generations) -> None:
    engine, ev = two_generations
    first = engine.summary(1)
    assert first is not None
    carried = [a for a in first.survivors if a != SEED_AGENT]
    assert carried, "generation 1 kept an offspring (the test needs one)"
    for agent in carried:
        tree = _files_hash_of_ref(engine, engine.head(agent))
        assert (tree, 3, 1) in ev.scored and (tree, 3, 2) in ev.scored, agent
    # and the cache holds them apart: one file per window set
    keys = {p.name for p in (engine.state / "evals").rglob("*.json")}
    assert any("-wf00d-g1-" in k for k in keys) and any("-wf00d-g2-" in k for k in keys)


def test_the_ci_matrix_names_the_generation_and_measures_the_seed_again(scratch) -> None:
    cfg = _cfg()
    root = scratch()
    jobs_engine = _engine(root, cfg, WindowedEvaluator())  # type: ignore[arg-type]
    jobs_engine.baseline()
    jobs_engine.propose(1)
    ci = Engine(
        GitRepo(root),
        cfg,
        evaluator=DeferredEvaluator("fake-1", lambda g: f"f00d-g{g}"),
        llm_factory=lambda s: None,
    )
    jobs = ci.matrix(1)
    assert {j["generation"] for j in jobs} == {1}
    # generation 0's runs of the seed are not comparable with generation 1's offspring
    assert sorted(j["seed"] for j in jobs if j["agent"] == SEED_AGENT) == [3, 4, 5]
    assert ci.matrix(0) == [], "generation 0's windows: the seed's runs are in"


def test_ci_refuses_a_result_scored_on_another_generations_windows(scratch) -> None:
    cfg = _cfg()
    root = scratch()
    _engine(root, cfg, WindowedEvaluator()).baseline()  # type: ignore[arg-type]
    ci = Engine(
        GitRepo(root),
        cfg,
        evaluator=DeferredEvaluator("fake-1", lambda g: f"f00d-g{g}"),
        llm_factory=lambda s: None,
    )
    ci.use_windows(1)
    head = ci.seed_head()
    m = Metrics(2.3, 10.0, 0.1, 1000.0, 1.0, 10.0, train_wall_s=1.0)
    stale = EvalResult("ok", "", m, "cpu", 3, Budget(iters=10), "1", "t", extra={"head": head})
    stale.extra["windows"] = "secret f00d-g0"
    with pytest.raises(StateError, match="DARWIN_WINDOW_SECRET"):
        ci.ingest_files([stale.to_dict()])
    stale.extra["windows"] = "secret f00d-g1"
    ci.ingest_files([stale.to_dict()])
    assert len(ci.evals.known_runs(head)) == 1


class CountingEvents(Events):
    """Each batch the engine announces, with the runs that ended while it was the last one."""

    def __init__(self) -> None:
        self.batches: list[list] = []  # [label, announced total, runs seen]

    def begin(self, what: str, total: int, unit: str) -> None:
        self.batches.append([what, total, 0])

    def run(self, agent: str, seed: int, result: object, baseline_ppl: float | None) -> None:
        if self.batches:
            self.batches[-1][2] += 1


def test_no_batch_counts_more_runs_than_it_announced(tmp_path: Path) -> None:
    # a new generation scores the seed again on its windows: those runs are their own batch,
    # not extra steps of the offspring's ("3/2 runs done")
    make_scratch_repo(tmp_path / "repo", "")
    cfg = _cfg()
    events = CountingEvents()
    engine = Engine(
        GitRepo(tmp_path / "repo", prefix=cfg.evolution.branch_prefix),
        cfg,
        evaluator=WindowedEvaluator(),
        llm_factory=lambda seed: make_llm(cfg.llm, seed=seed),
        events=events,
    )
    engine.run(2)
    seed_batches = [b for b in events.batches if b[0] == "the seed's training runs"]
    assert len(seed_batches) == 2, events.batches  # once for each new generation's windows
    assert all(seen == total for _, total, seen in seed_batches), events.batches
    assert all(seen <= total for _, total, seen in events.batches), events.batches
