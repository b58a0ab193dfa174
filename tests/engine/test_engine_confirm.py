"""Confirmation at a longer budget, wired into the engine: ``darwin run`` and the CI steps.

The fake evaluator's perplexity is a function of the tree and of the budget it
is asked for: the seed scores 10 at every budget; any other tree scores
``search_ppl`` at the search budget and ``confirm_ppl`` at the confirmation one
(plus a per-tree offset below 0.5).
So "better at the search budget but not at the longer one" is built exactly,
with no training and nothing that depends on timing.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import pytest

from darwin_bot.cli.progress import Reporter
from darwin_bot.cli.render import print_generation
from darwin_bot.config import Config, from_dict
from darwin_bot.core import SEED_AGENT, Budget, EvalResult, Metrics
from darwin_bot.core.confirm import Verdict
from darwin_bot.engine import DeferredEvaluator, Engine
from darwin_bot.git import GitRepo
from darwin_bot.llm import make_llm
from tests.engine.test_engine import _files_hash

SEARCH = Budget(iters=10)
CONFIRM = Budget(iters=50)


class BudgetedEvaluator:
    """Perplexity by tree and budget (+ 0.001 per seed, so the runs have a spread)."""

    version = "fake-1"

    def __init__(
        self,
        seed_hash: str,
        search_ppl: float,
        confirm_ppl: float,
        crash_after_confirm: int | None = None,
    ) -> None:
        self.seed_hash = seed_hash
        self.ppl = {SEARCH: search_ppl, CONFIRM: confirm_ppl}
        self.calls: Counter[tuple[str, int, str, str]] = Counter()
        self.crash_after_confirm = crash_after_confirm

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
        budget, preset = budget or SEARCH, preset or "tiny"
        limit = self.crash_after_confirm
        if budget == CONFIRM and limit is not None and sum(self.confirm_calls().values()) >= limit:
            raise KeyboardInterrupt("simulated kill during the confirmation runs")
        self.calls[(digest, seed, budget.key(), preset)] += 1
        # Trees other than the seed are spread apart (far more than the seed noise), so the
        # leader stays the leader after its repeat runs.
        spread = 0.5 * int(digest[:4], 16) / 0xFFFF
        base = 10.0 if digest == self.seed_hash else self.ppl[budget] + spread
        m = Metrics(
            val_loss=2.3,
            perplexity=base + 0.001 * seed,
            mfu=0.1,
            tokens_per_s=1000.0,
            train_seconds=1.0,
            peak_mem_mb=10.0,
            train_wall_s=1.0,
        )
        return EvalResult(
            "ok", "", m, "cpu", seed, budget, self.version, digest[:16], preset=preset
        )

    def confirm_calls(self) -> Counter[str]:
        """Confirmation-budget runs per tree ("seed" or "other")."""
        out: Counter[str] = Counter()
        for (digest, _, b, _), n in self.calls.items():
            if b == CONFIRM.key():
                out["seed" if digest == self.seed_hash else "other"] += n
        return out


def _cfg(confirm: bool = True) -> Config:
    budget: dict[str, object] = {"iters": SEARCH.iters, "repeats": 3}
    if confirm:
        budget |= {"confirm_iters": CONFIRM.iters, "confirm_repeats": 3}
    return from_dict(
        {
            "evolution": {"population": 4, "survivors": 2, "seed": 3},
            "budget": budget,
            "fitness": {"mfu_weight": 0.0},
            "llm": {"backend": "heuristic"},
        }
    )


def _seed_hash(root: Path) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        GitRepo(root).export("HEAD", ["seed/"], Path(tmp))
        return _files_hash(Path(tmp))


def _engine(root: Path, cfg: Config, ev: object, progress: Reporter | None = None) -> Engine:
    return Engine(
        GitRepo(root, prefix=cfg.evolution.branch_prefix),
        cfg,
        evaluator=ev,  # type: ignore[arg-type]
        llm_factory=lambda seed: make_llm(cfg.llm, seed=seed),
        progress=progress,
    )


def test_better_at_the_search_budget_only_promotes_no_champion_and_says_why(
    scratch, capsys
) -> None:
    root = scratch()
    ev = BudgetedEvaluator(_seed_hash(root), search_ppl=9.0, confirm_ppl=11.0)
    engine = _engine(root, _cfg(), ev, progress=Reporter(tty=False))
    [summary] = engine.run(1)
    assert summary.gate is not None and summary.gate.passed, "the search gate must pass here"
    assert summary.new_champion is None and summary.champion is None
    promo = summary.promotion
    assert promo is not None and promo.verdict is Verdict.FAILED_CONFIRMATION
    assert promo.search.p_value is not None and promo.search.p_value < 0.05
    assert promo.confirm is not None and promo.confirm.effect_size < 0  # type: ignore[operator]
    # Only the provisional champion and the seed ran at the confirmation budget, 3x each.
    assert ev.confirm_calls() == Counter({"seed": 3, "other": 3})
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "is not promoted" in line]
    assert len(lines) == 1, err
    assert f"{summary.gate.agent} is not promoted" in lines[0]
    assert "better at the search budget but not at the confirmation budget" in lines[0]
    # The record (validated by the schema) carries both gains and both p-values.
    stored = engine.memory.generations()[-1]["promotion"]
    assert stored["verdict"] == "failed_confirmation" and stored["passed"] is False
    assert stored["search"]["effect_size"] > 0 > stored["confirm"]["effect_size"]
    assert stored["search"]["p_value"] < 0.05 < stored["confirm"]["p_value"]
    print_generation(engine.generations()[-1])
    out = capsys.readouterr().out
    assert "promotion: failed_confirmation: not promoted: better at the search budget" in out


def test_better_at_both_budgets_is_promoted(scratch) -> None:
    root = scratch()
    ev = BudgetedEvaluator(_seed_hash(root), search_ppl=9.0, confirm_ppl=7.0)
    engine = _engine(root, _cfg(), ev)
    [summary] = engine.run(1)
    assert summary.gate is not None
    assert summary.new_champion == summary.gate.agent == summary.champion
    promo = summary.promotion
    assert promo is not None and promo.verdict is Verdict.PROMOTED
    assert promo.confirm is not None and promo.confirm.p_value < 0.05  # type: ignore[operator]
    assert promo.reason.startswith("passed at both budgets")


def test_confirmation_off_records_no_promotion_and_never_runs_the_longer_budget(scratch) -> None:
    root = scratch()
    ev = BudgetedEvaluator(_seed_hash(root), search_ppl=9.0, confirm_ppl=11.0)
    engine = _engine(root, _cfg(confirm=False), ev)
    [summary] = engine.run(1)
    assert summary.new_champion is not None  # the search gate alone decides, as before
    assert summary.promotion is None
    assert "promotion" not in engine.memory.generations()[-1]
    assert not ev.confirm_calls()


def test_a_run_killed_during_confirmation_resumes_without_retraining(scratch) -> None:
    root = scratch()
    seed_hash = _seed_hash(root)
    crashing = BudgetedEvaluator(seed_hash, 9.0, 7.0, crash_after_confirm=2)
    with pytest.raises(KeyboardInterrupt):
        _engine(root, _cfg(), crashing).run(1)
    assert crashing.confirm_calls() == Counter({"other": 2})  # the champion's first two runs
    resumed = BudgetedEvaluator(seed_hash, 9.0, 7.0)
    [summary] = _engine(root, _cfg(), resumed).run(1)
    assert summary.promotion is not None and summary.promotion.promote
    # The two runs made before the kill came from the cache: 1 + 3 left, never a search score.
    assert resumed.confirm_calls() == Counter({"seed": 3, "other": 1})
    assert max((crashing.calls + resumed.calls).values()) == 1  # each run trained once in all


def _run_jobs(root: Path, ev: BudgetedEvaluator, cfg: Config, jobs: list[dict]) -> list[dict]:
    """What the sandboxed evaluate jobs upload: one result per job, with extra.head."""
    spec_budget = Budget(iters=cfg.budget.confirm_iters) if cfg.budget.confirm_iters else None
    repo = GitRepo(root, prefix=cfg.evolution.branch_prefix)
    out = []
    for job in jobs:
        with tempfile.TemporaryDirectory() as tmp:
            repo.export(job["head"], ["seed/"], Path(tmp))
            at = {"budget": spec_budget} if job.get("budget") == "confirm" else {}
            result = ev(Path(tmp), seed=job["seed"], **at)  # type: ignore[arg-type]
        data = result.to_dict()
        data["extra"] = {"head": job["head"], "agent": job["agent"], "branch": job["branch"]}
        out.append(data)
    return out


@pytest.mark.parametrize("confirm_ppl, verdict", [(11.0, "failed_confirmation"), (7.0, "promoted")])
def test_ci_confirm_jobs_carry_the_confirmation_runs_and_select_decides_as_run_does(
    scratch, confirm_ppl: float, verdict: str
) -> None:
    cfg = _cfg()
    local_root = scratch("local")
    local = _engine(local_root, cfg, BudgetedEvaluator(_seed_hash(local_root), 9.0, confirm_ppl))
    local.baseline()
    expected = local.generation(1)

    root = scratch("ci")
    ev = BudgetedEvaluator(_seed_hash(root), 9.0, confirm_ppl)
    jobs_engine = _engine(root, cfg, ev)  # stands for the propose step and the evaluate jobs
    jobs_engine.baseline()
    jobs_engine.propose(1)
    jobs_engine.evaluate(1)
    ci = Engine(
        GitRepo(root), cfg, evaluator=DeferredEvaluator("fake-1"), llm_factory=lambda s: None
    )
    lead = ci.provisional_leader(1)
    assert lead is not None
    jobs = ci.confirm_jobs(1)
    search = sorted((j["agent"], j["seed"]) for j in jobs if "budget" not in j)
    confirm = sorted((j["agent"], j["seed"]) for j in jobs if j.get("budget") == "confirm")
    assert search == [(lead, 4), (lead, 5)]
    # At the confirmation budget: the leader and the seed, on seeds no search run used.
    seeds = (1003, 1004, 1005)
    assert confirm == sorted([(lead, s) for s in seeds] + [(SEED_AGENT, s) for s in seeds])

    results = _run_jobs(root, ev, cfg, jobs)
    ci.ingest_files(results)
    # Each result landed in the cache of the budget it was measured at.
    assert {r["budget"]["iters"] for r in results} == {SEARCH.iters, CONFIRM.iters}
    assert ci.confirm_jobs(1) == []  # everything is in: no job is asked for twice
    summary = ci.select(1, confirm=False)
    assert summary.ranking == expected.ranking
    assert summary.promotion is not None and summary.promotion.verdict == verdict
    assert summary.promotion == expected.promotion
    assert summary.new_champion == expected.new_champion
    assert summary.survivors == expected.survivors


def test_ci_select_without_the_confirmation_results_waits_and_promotes_nothing(scratch) -> None:
    cfg = _cfg()
    root = scratch()
    ev = BudgetedEvaluator(_seed_hash(root), 9.0, 7.0)
    jobs_engine = _engine(root, cfg, ev)
    jobs_engine.baseline()
    jobs_engine.propose(1)
    jobs_engine.evaluate(1)
    ci = Engine(
        GitRepo(root), cfg, evaluator=DeferredEvaluator("fake-1"), llm_factory=lambda s: None
    )
    jobs = [j for j in ci.confirm_jobs(1) if "budget" not in j]  # the confirmation legs lost
    ci.ingest_files(_run_jobs(root, ev, cfg, jobs))
    summary = ci.select(1, confirm=False)
    assert summary.gate is not None and summary.gate.passed
    assert summary.new_champion is None
    assert summary.promotion is not None
    assert summary.promotion.verdict is Verdict.AWAITING_CONFIRMATION
    assert "confirmation runs missing: 0/3 candidate, 0/3 baseline" in summary.promotion.reason


def test_confirmation_and_search_scores_never_share_a_cache_entry(scratch) -> None:
    root = scratch()
    engine = _engine(root, _cfg(), BudgetedEvaluator(_seed_hash(root), 9.0, 7.0))
    search, confirm = engine.evals.cache_at(False), engine.evals.cache_at(True)
    assert search.path("t", 3) != confirm.path("t", 3)
    head = engine.ensure_seed()
    engine.evaluate_ref(head, 3)
    tree = engine.repo.tree_id(head, engine.evals.evolvable)
    assert confirm.get(tree, 3) is None  # a search score is not a confirmation score
    engine.evaluate_ref(head, 3, confirm=True)
    got = confirm.get(tree, 3)
    assert got is not None and got.budget == CONFIRM
    assert search.get(tree, 3).budget == SEARCH  # type: ignore[union-attr]
    # Another preset at the same budget is another entry too.
    other = from_dict({**_raw(), "budget": {"confirm_iters": 10, "confirm_preset": "paper"}})
    spec_cache = _engine(root, other, BudgetedEvaluator("", 9.0, 7.0)).evals.cache_at(True)
    assert spec_cache.path("t", 3) != search.path("t", 3)


def _raw() -> dict:
    return {"evolution": {"seed": 3}, "llm": {"backend": "heuristic"}}


@pytest.mark.parametrize("confirm_ppl", [11.0, 7.0])
def test_the_dashboard_job_summary_and_champion_comment_show_both_budgets(
    scratch, confirm_ppl: float
) -> None:
    from darwin_bot.publish import make_publisher, report

    root = scratch()
    cfg = _cfg()
    publisher = make_publisher(root, cfg)
    engine = Engine(
        GitRepo(root, prefix=cfg.evolution.branch_prefix),
        cfg,
        evaluator=BudgetedEvaluator(_seed_hash(root), 9.0, confirm_ppl),  # type: ignore[arg-type]
        llm_factory=lambda s: make_llm(cfg.llm, seed=s),
        publisher=publisher,
    )
    [summary] = engine.run(1)
    assert summary.gate is not None
    lead = summary.gate.agent
    dash = publisher.forge.find_issue("dashboard", label="darwin:dashboard")
    assert dash is not None
    md = report.generation_summary_markdown(summary)
    pr = publisher.forge.get_pr(engine.repo.branch(lead))
    assert pr is not None
    comments = [c.body for c in publisher.forge.list_comments(pr.number)]
    if confirm_ppl > 10:
        why = f"`{lead}` failed_confirmation: not promoted: better at the search budget"
        assert why in dash.body and why in md
        assert not any(b.startswith("Champion of generation") for b in comments)
    else:
        [note] = [b for b in comments if b.startswith("Champion of generation 1")]
        assert "passed at both budgets: search budget perplexity" in note
        assert "confirmation budget perplexity" in note and "(p=" in note
        assert f"`{lead}` (passed at both budgets" in dash.body
        assert f"`{lead}` promoted: passed at both budgets" in md
