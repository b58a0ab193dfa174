"""The halving schedule's rungs as CI legs: the same entrants as ``darwin run``, leg by leg.

Two scratch repositories make the same generation: one runs it locally
(``Engine.run``), the other as the workflow does (the matrix, then each leg's
plan, its jobs run by the same fake evaluator and ingested, then select with
nothing trained). Every (tree, seed, budget) the two train must be the same.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from darwin_bot.cli.eval_options import rung_budget as rung_budget_of
from darwin_bot.core import Budget
from darwin_bot.engine import DeferredEvaluator, Engine
from darwin_bot.engine.ci import CI_LEGS, rung_budget
from darwin_bot.errors import ConfigError
from darwin_bot.git import GitRepo
from darwin_bot.llm import make_llm
from tests.engine.test_engine_schedule import SEARCH, RungEvaluator, _cfg, _engine, _seed_hash
from tests.gh_expr import evaluate, truthy
from tests.test_workflows import run_action
from tests.workflow_files import ACTION, DARWIN_YML

RUNGS = (1, 2, 5)


def _budget(job: dict[str, Any]) -> Budget:
    name = job.get("budget", "search")
    if name == "search":
        return Budget(iters=SEARCH)
    return Budget(iters=SEARCH * RUNGS[int(name.removeprefix("rung-"))])


def _run_legs(engine: Engine, ev: RungEvaluator, jobs: list[dict[str, Any]]) -> None:
    """What the matrix legs do with ``jobs`` (darwin evaluate --branch, the budget the entry
    names), then what the next job does with their artifacts (ingest)."""
    results = []
    for job in jobs:
        with tempfile.TemporaryDirectory() as tmp:
            engine.repo.export(job["head"], ["seed/"], Path(tmp))
            result = ev(Path(tmp), seed=job["seed"], budget=_budget(job)).to_dict()
        result["extra"] = {**result.get("extra", {}), "head": job["head"], "agent": job["agent"]}
        result["preset"] = engine.cfg.budget.preset  # what the harness records
        results.append(result)
    engine.ingest_files(results)


def _ci_engine(root: Path) -> Engine:
    cfg = _cfg()
    return Engine(
        GitRepo(root, prefix=cfg.evolution.branch_prefix),
        cfg,
        evaluator=DeferredEvaluator(RungEvaluator.version),  # trains nothing
        llm_factory=lambda seed: make_llm(cfg.llm, seed=seed),
    )


def test_the_ci_legs_train_what_darwin_run_trains_and_select_the_same_leader(scratch) -> None:
    local_root, ci_root = scratch("local"), scratch("ci")
    seed = _seed_hash(local_root)
    local = RungEvaluator(seed)
    [expected] = _engine(local_root, _cfg(), local).run(1)

    ci, ev = _ci_engine(ci_root), RungEvaluator(seed)
    assert ci.ci.legs() == 3 == CI_LEGS
    ci.ensure_seed()
    _run_legs(ci, ev, ci.matrix(0))
    ci.baseline()
    ci.propose(1)
    _run_legs(ci, ev, ci.matrix(1))
    assert ci.confirm_jobs(1) == []  # the repairs' round: the leader is not known yet
    legs = []
    for _ in range(ci.ci.legs()):
        jobs = ci.rung_jobs(1)
        legs.append({j.get("budget") for j in jobs})
        _run_legs(ci, ev, jobs)
    assert ci.rung_jobs(1) == []  # nothing left for select to wait for
    # leg 1 trains rung 1, leg 2 rung 2, leg 3 the leader's repeats at its rung (2)
    assert legs == [{rung_budget(1)}, {rung_budget(2)}, {rung_budget(2)}]
    assert ev.calls == local.calls  # the same trees, seeds and budgets, each once
    summary = ci.select(1, confirm=False)
    assert summary.leader is not None and summary.leader == expected.leader
    assert [r.agent for r in summary.ranking] == [r.agent for r in expected.ranking]
    assert summary.champion == expected.champion


def test_a_flat_schedule_has_no_leg_and_its_leaders_repeats_go_with_the_repairs(scratch) -> None:
    engine = _engine(scratch(), _cfg("flat"), RungEvaluator("-"))
    assert engine.ci.legs() == 0 and engine.rung_jobs(1) == []


def test_more_rungs_than_the_workflow_has_legs_is_a_config_error(scratch) -> None:
    cfg = _cfg().replace("search", rungs=(1, 2, 3, 5))
    engine = _engine(scratch(), cfg, RungEvaluator("-"))
    with pytest.raises(ConfigError, match="at most 3"):
        engine.ci.legs()


def test_a_rung_leg_runs_darwin_evaluate_at_its_rung(tmp_path: Path) -> None:
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    _, (call,) = run_action(
        action, tmp_path, command="evaluate", branch="darwin/a1", budget="rung-2"
    )
    assert call["argv"][call["argv"].index("--rung") + 1] == "2"
    (tmp_path / "b").mkdir()
    ran, calls = run_action(
        action, tmp_path / "b", command="evaluate", branch="darwin/a1", budget="rung-x"
    )
    assert calls == [] and "must be search, confirm or rung-N" in ran[0][1].stdout


def test_evaluate_at_a_rung_takes_the_rungs_budget_from_the_config(tmp_path: Path) -> None:
    cfg = _cfg()
    assert rung_budget_of(cfg, 2, None, None, False) == (5 * SEARCH, None)
    with pytest.raises(ConfigError, match="has rungs 0 to 2"):
        rung_budget_of(cfg, 3, None, None, False)
    with pytest.raises(ConfigError, match="drop --iters"):
        rung_budget_of(cfg, 1, 7, None, False)
    with pytest.raises(ConfigError, match="has rungs 0 to 0"):
        rung_budget_of(_cfg("flat"), 1, None, None, False)


def _when(job: dict[str, Any], legs: str) -> bool:
    """Whether ``job`` runs when propose says ``legs`` and every job before it succeeded."""
    cond = " ".join(job["if"].split())
    assert cond.startswith("!cancelled() && ")  # runs after failed or skipped legs too
    ok = {"result": "success", "outputs": {"agents": '[{"agent": "a"}]'}}
    needs = {n: ok for n in ("repair", "corpus", *(f"rung{k}_plan" for k in (1, 2, 3)))}
    needs["propose"] = {"result": "success", "outputs": {"legs": legs}}
    return truthy(evaluate(cond.removeprefix("!cancelled() && "), {"needs": needs}))


def test_the_workflow_chains_one_plan_and_one_matrix_per_leg_and_flat_runs_none() -> None:
    jobs = yaml.safe_load(DARWIN_YML.read_text(encoding="utf-8"))["jobs"]
    for k in range(1, CI_LEGS + 1):
        plan, leg = jobs[f"rung{k}_plan"], jobs[f"rung{k}"]
        (step,) = [s for s in plan["steps"] if s.get("id") == "darwin"]
        assert step["with"]["command"] == "rung" and plan["permissions"] == {"contents": "read"}
        before = (
            ["evaluate", "repair", "reevaluate"]
            if k == 1
            else [f"rung{k - 1}_plan", f"rung{k - 1}"]
        )
        assert plan["needs"] == ["propose", *before]
        assert (
            leg["strategy"]["matrix"]["include"]
            == f"${{{{ fromJSON(needs.rung{k}_plan.outputs.agents) }}}}"
        )
        (ev,) = [s for s in leg["steps"] if s.get("with", {}).get("command") == "evaluate"]
        assert ev["with"]["budget"] == "${{ matrix.budget || 'search' }}"
        # a flat schedule (legs 0) runs no leg; [1, 2, 5] runs all three; [1, 2] two
        assert [_when(plan, n) for n in ("", "0", "2", "3")] == [False, False, k <= 2, True]
        assert _when(leg, "3")
    assert jobs["propose"]["outputs"]["legs"] == "${{ steps.darwin.outputs.legs }}"
