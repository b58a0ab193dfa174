"""The pure parts of benchmarks/evolution.py: run counting, picking, the JSON verdict."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from darwin_bot.core import Budget, EvalResult, Metrics

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "evolution.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_evolution", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def result(ppl: float | None, seed: int = 0) -> EvalResult:
    metrics = (
        None
        if ppl is None
        else Metrics(
            val_loss=math.log(ppl),
            perplexity=ppl,
            mfu=0.01,
            tokens_per_s=1000.0,
            train_seconds=1.0,
            peak_mem_mb=100.0,
        )
    )
    return EvalResult(
        status="ok" if ppl is not None else "failed",
        reason="" if ppl is not None else "crashed",
        metrics=metrics,
        device="cpu",
        seed=seed,
        budget=Budget(iters=10),
        evaluator_version="test",
        tree_hash="t",
    )


class FakeEvaluator:
    version = "fake-1"

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, tree: Path, *, seed: int, smoke: bool = False) -> EvalResult:
        self.calls.append((seed, smoke))
        return result(10.0 + seed, seed)


def test_counting_evaluator_counts_full_and_smoke_runs_apart(bench, tmp_path):
    inner = FakeEvaluator()
    counter = bench.CountingEvaluator(inner)
    assert counter.version == "fake-1"  # the engine's cache key must not change
    assert counter(tmp_path, seed=2).metrics.perplexity == 12.0
    counter(tmp_path, seed=3, smoke=True)
    counter(tmp_path, seed=4)
    assert counter.snapshot() == (2, 1)
    assert inner.calls == [(2, False), (3, True), (4, False)]


def test_counting_evaluator_passes_the_generation_on(bench, tmp_path):
    """The engine names each generation through ``at_generation``: it must reach the scorer."""

    class Windowed(FakeEvaluator):
        generation: int | None = None

        def at_generation(self, g: int) -> None:
            self.generation = g

        @property
        def windows(self) -> str:
            return f"w-g{self.generation}"

    inner = Windowed()
    counter = bench.CountingEvaluator(inner)
    counter.at_generation(3)
    assert inner.generation == 3 and counter.windows == "w-g3"
    bench.CountingEvaluator(FakeEvaluator()).at_generation(1)  # one set of windows: no-op
    assert bench.CountingEvaluator(FakeEvaluator()).windows is None


def test_compute_units_weigh_budgets_and_skip_the_baseline_and_rescores(bench, tmp_path):
    evals = tmp_path / "evals"
    files = {
        "seed/tiny-iters=50-v5-wab-g1-dx-s0.json": {},  # the shared baseline: free
        "seed/tiny-iters=100-v5-wab-g1-dx-s0.json": {},  # the seed at a 2x rung: 2 units
        "aaa/tiny-iters=50-v5-wab-g1-dx-s0.json": {"extra": {}},  # 1 unit
        "aaa/tiny-iters=50-v5-wab-g2-dx-s0.json": {"extra": {"rescored": True}},  # no training
        "bbb/tiny-iters=250-v5-wab-g1-dx-s0.json": {"extra": {"rescored": False}},  # 5 units
        "bbb/tiny-iters=250-v5-wab-g1000-dx-s2000.json": {"extra": {}},  # the long measurement
    }
    for name, body in files.items():
        (evals / name).parent.mkdir(parents=True, exist_ok=True)
        (evals / name).write_text(json.dumps(body))
    assert bench.compute_units(evals, 50, "seed") == pytest.approx(8.0)
    assert bench.compute_units(tmp_path / "none", 50) == 0.0


def test_best_single_run_skips_failed_runs(bench):
    runs = {"a": result(9.0), "b": result(None), "c": result(8.5), "d": result(8.5)}
    assert bench.best_single_run(runs) == "c"  # tie broken by name
    assert bench.best_single_run({"x": result(None)}) is None
    assert bench.best_single_run({}) is None


def test_arm_report_measures_improvement_and_gate_against_the_baseline(bench):
    base = [10.0, 10.1, 9.9]
    good = [result(9.0), result(9.1), result(8.9)]
    rep = bench.arm_report(
        "agent", good, base, 0.05, training_runs=7, smoke_runs=9, wall_s=12.34, extra=1
    )
    assert rep["mean_ppl"] == pytest.approx(9.0)
    assert rep["improvement_pct"] == pytest.approx(10.0)
    assert rep["passed"] is True and rep["p_value"] < 0.05
    assert (rep["training_runs"], rep["smoke_runs"], rep["wall_s"], rep["extra"]) == (7, 9, 12.3, 1)

    noisy = bench.arm_report(
        "agent",
        [result(9.9), result(10.2), result(9.8)],
        base,
        0.05,
        training_runs=1,
        smoke_runs=0,
        wall_s=0,
    )
    assert noisy["passed"] is False and noisy["p_value"] > 0.05

    failed = bench.arm_report(
        "agent", [result(9.0), result(None)], base, 0.05, training_runs=2, smoke_runs=0, wall_s=0
    )
    assert failed["passed"] is False and failed["runs"] == [9.0, None]
    assert failed["mean_ppl"] is None

    none = bench.arm_report(None, [], base, 0.05, training_runs=3, smoke_runs=3, wall_s=0)
    assert none["passed"] is False and none["mean_ppl"] is None and none["p_value"] is None


def test_verdict_compares_arms_and_targets(bench):
    base = [10.0, 10.1, 9.9]

    def arm(ppl: list[float]) -> dict:
        runs = [result(p) for p in ppl]
        return bench.arm_report("x", runs, base, 0.05, training_runs=3, smoke_runs=0, wall_s=0)

    strong, weak = arm([9.0, 9.05, 8.95]), arm([9.9, 9.95, 9.85])
    v = bench.verdict(strong, weak)
    assert v["evolution_ahead"] is True
    assert v["evolution_vs_random_p"] < 0.05
    assert v["targets_met"] == {"improvement": True, "significant": True, "ahead_of_random": True}
    assert v["targets"] == {"improvement_pct": 2.07, "p": 0.05}

    v = bench.verdict(weak, strong)
    assert v["evolution_ahead"] is False
    assert v["targets_met"]["improvement"] is False  # 1.5% < 2.07%

    nothing = bench.arm_report(None, [], base, 0.05, training_runs=3, smoke_runs=0, wall_s=0)
    assert bench.verdict(weak, nothing)["evolution_ahead"] is True
    assert bench.verdict(nothing, weak)["evolution_ahead"] is False


def test_count_full_runs_counts_one_file_per_tree_and_seed(bench, tmp_path):
    evals = tmp_path / "memory" / "evals"
    assert bench.count_full_runs(evals) == 0  # no cache yet
    for tree, seeds in (("aaa", (0, 1, 2)), ("bbb", (0,))):
        (evals / tree).mkdir(parents=True)
        for s in seeds:
            (evals / tree / f"tiny-iters=20-v1-s{s}.json").write_text("{}")
    (evals / "bbb" / "notes.txt").write_text("not a result")
    assert bench.count_full_runs(evals) == 4


def test_setup_repo_refuses_a_workdir_made_with_other_settings(bench, tmp_path):
    args = bench.parse_args(["--synthetic", "--workdir", str(tmp_path / "w"), "--quick"])
    root = args.workdir
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "setup.json").write_text('{"toml": "old", "corpus": "synthetic"}')
    assert bench.setup_repo(root, "old", args) == "synthetic"  # same settings: resumed
    with pytest.raises(SystemExit, match="other settings"):
        bench.setup_repo(root, "new", args)
    with pytest.raises(SystemExit, match="not a benchmark"):
        bench.setup_repo(tmp_path, "old", args)
    assert (args.population, args.generations, args.iters) == (3, 1, 20)  # --quick


@pytest.mark.parametrize(
    "argv",
    [["--population", "3", "--survivors", "3"], ["--repeats", "1"], ["--corpus", "/nonexistent"]],
)
def test_parse_args_rejects_bad_settings(bench, argv, capsys):
    with pytest.raises(SystemExit) as err:
        bench.parse_args([*argv, "--workdir", "/tmp/unused"])
    assert err.value.code == 2
    assert "error:" in capsys.readouterr().err
