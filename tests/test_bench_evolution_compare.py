"""Equal compute in benchmarks/evolution.py, and the cross-report comparison of evolution_compare.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_compute_units_weigh_runs_by_budget_and_leave_the_shared_baseline_out(tmp_path) -> None:
    evo = _load("evolution")
    evals = tmp_path / "evals"
    files = {
        "seed_tree": [
            "tiny-iters=20-v4-dx-s0",
            "tiny-iters=20-v4-dx-s1",
            "tiny-iters=100-v4-dx-s0",
        ],
        "child": ["tiny-iters=20-v4-dx-s0", "tiny-iters=40-v4-dx-s0"],
    }
    for tree, names in files.items():
        (evals / tree).mkdir(parents=True)
        for n in names:
            (evals / tree / f"{n}.json").write_text("{}")
    # the seed's 20-iteration baseline is shared; its 100-iteration rung run is not
    assert evo.compute_units(evals, 20, "seed+tree") == 5 + 1 + 2
    assert evo.compute_units(evals, 20) == 2 + 5 + 1 + 2
    assert evo.compute_units(tmp_path / "none", 20) == 0


def _report(schedule: str, seed: int, evo: list[float], rnd: list[float]) -> dict:
    return {
        "config": {"schedule": schedule, "seed": seed},
        "evolution": {"compute_units": 10.0},
        "random_search": {"compute_units": 9},
        "long": {
            "seed_runs": [10.0, 10.0],
            "evolution": {"runs": evo},
            "random_search": {"runs": rnd},
        },
    }


def test_compare_pools_runs_relative_to_each_reports_seed() -> None:
    cmp = _load("evolution_compare")
    reports = [
        _report("flat", 0, [9.9, 10.0, 9.95], [10.1, 10.2, 10.0]),
        _report("halving", 0, [9.0, 9.1, 8.9], [10.1, 10.0, 10.2]),
        _report("halving", 1, [9.2, 9.0, 9.1], [10.0, 10.3, 10.1]),
    ]
    out = cmp.compare(reports)
    arms = out["arms"]
    assert arms["halving"]["mean_ratio"] == pytest.approx(0.905)
    assert arms["halving"]["evolution_seeds"] == [0, 1] and len(arms["random"]["ratios"]) == 9
    assert arms["flat"]["units"] == [10.0] and arms["random"]["units"] == [9, 9, 9]
    assert out["p_values"]["halving < flat"] < 0.01 < out["p_values"]["flat < halving"]
    assert out["p_values"]["halving < random"] < 0.01
    assert cmp.main([]) == 2


def test_compare_takes_random_search_from_the_reports_that_ran_it() -> None:
    cmp = _load("evolution_compare")
    flat = _report("flat", 0, [9.9, 10.0], [10.1, 10.2])
    halving = {**_report("halving", 0, [9.0, 9.2], []), "random_search": None}
    out = cmp.compare([flat, halving])
    assert out["arms"]["random"]["ratios"] == pytest.approx([1.01, 1.02])  # the flat report's only
    assert out["per_seed"]["0"] == pytest.approx({"flat": 0.995, "halving": 0.91, "random": 1.015})
