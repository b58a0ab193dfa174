"""The PR review section: mean ± sd, p-values, trusted cost, reported loss curves, the plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from darwin_bot.core import Metrics, Row, Status
from darwin_bot.publish.review import (
    Runs,
    Spread,
    cost_line,
    cull_reason,
    lineage_points,
    metrics_table,
    review_plot,
)
from darwin_bot.publish.review_plot import review_figure
from darwin_bot.store import Baseline, GenerationSummary

LOG = "preset tiny: 0.1M parameters\niter 10: loss 3.5000, lr 1e-3\niter 20: loss 2.9000, lr 1e-3\n"


def _metrics(ppl: float) -> Metrics:
    return Metrics(1.0, ppl, 0.1, tokens_per_s=1.0, train_seconds=1.0, peak_mem_mb=1.0)


def _baseline(ppl: float) -> Baseline:
    return Baseline(_metrics(ppl), {"perplexity": 0.1}, 3)


def _run(ppl: float, seed: int, wall: float | None = None, log: str = LOG) -> dict:
    extra = {"train_wall_s": wall} if wall is not None else {}
    return {
        "status": "ok",
        "seed": seed,
        "metrics": {"perplexity": ppl, "mfu": 0.1, "val_loss": 1.0},
        "extra": extra,
        "log_tail": log,
    }


def test_spread_is_mean_and_sample_sd() -> None:
    s = Spread.of([1.0, 2.0, 3.0])
    assert (s.mean, s.sd, s.n) == (2.0, 1.0, 3)
    assert s.text(".2f") == "2.00 ± 1.00 (n=3)"
    assert Spread.of([5.0]).text(".1f") == "5.0 (n=1)"
    assert Spread.of([]).text(".1f") == "—"


def test_metrics_table_has_three_rows_and_p_values() -> None:
    agent = Runs((_run(9.0, 0, 10.0), _run(9.1, 1, 11.0), _run(9.05, 2, 10.5)))
    parent = Runs((_run(9.5, 0), _run(9.6, 1), _run(9.55, 2)))
    base = Runs((_run(10.0, 0, 10.0), _run(10.1, 1, 10.0), _run(10.05, 2, 10.0)))
    text = "\n".join(metrics_table(agent, parent, base))
    assert "| this agent | 9.0500 ± 0.0500 (n=3)" in text
    assert "| parent | 9.5500 ± 0.0500 (n=3)" in text
    assert "| baseline (seed) | 10.0500 ± 0.0500 (n=3)" in text
    p_parent = float(text.split("vs parent ")[1].split(";")[0])
    assert 0 < p_parent < 0.01, text
    # One run on a side: no p-value, and it says why.
    single = "\n".join(metrics_table(Runs((_run(9.0, 0),)), None, base))
    assert "vs baseline — (needs 2+ runs each)" in single


def test_cost_reads_measured_wall_time_and_derives_the_ratio() -> None:
    agent = Runs((_run(9.0, 0, 12.0), _run(9.1, 1, 12.0)))
    base = Runs((_run(10.0, 0, 10.0), _run(10.1, 1, 10.0)))
    line = cost_line(agent, base)
    assert "12.0 ± 0.0 (n=2) s" in line and "cost ratio vs baseline 1.200" in line
    with_ratio = Runs(
        tuple({**r, "extra": {**r["extra"], "cost_ratio": 0.8}} for r in agent.results)
    )
    assert "cost ratio vs baseline 0.800 ± 0.000 (n=2)" in cost_line(with_ratio, base)
    assert "—" in cost_line(Runs((_run(9.0, 0),)), base)
    assert "scoring" not in line  # not measured: not shown
    scored = Runs(
        tuple({**r, "extra": {**r["extra"], "score_wall_s": 20.0}} for r in agent.results)
    )
    assert "12.0 ± 0.0 (n=2) s, scoring 20.0 ± 0.0 (n=2) s, cost ratio" in cost_line(scored, base)


def test_the_loss_curve_is_what_the_program_printed() -> None:
    assert Runs((_run(9.0, 0),)).loss_curve() == [(10, 3.5), (20, 2.9)]
    failed = {**_run(9.0, 0), "status": "failed"}
    assert Runs((failed,)).loss_curve() == []


def test_lineage_walks_first_parents_through_the_summaries() -> None:
    def gen(g: int, agent: str, ppl: float, parents: tuple[str, ...]) -> GenerationSummary:
        row = Row(agent, g, parents, fitness=0.0, metrics=_metrics(ppl))
        return GenerationSummary(g, (row,), (agent,), ())

    gens = [gen(0, "seed", 10.0, ()), gen(1, "a1", 9.5, ("seed",)), gen(2, "b2", 9.0, ("a1", "x"))]
    assert lineage_points(gens, "b2") == [("seed", 0, 10.0), ("a1", 1, 9.5), ("b2", 2, 9.0)]


def test_the_plot_is_the_same_bytes_when_drawn_twice(tmp_path: Path) -> None:
    lineage = [("seed", 0, 10.0), ("a1", 1, 9.5)]
    curves = {"a1 (this agent)": [(10, 3.5), (20, 2.9)], "seed": [(10, 3.6), (20, 3.1)]}
    a = review_plot(tmp_path / "a.png", lineage, curves, 10.0).read_bytes()
    b = review_plot(tmp_path / "b.png", lineage, curves, 10.0).read_bytes()
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and a == b


@pytest.mark.parametrize("key", ["train_wall_s", "wall_s"])
def test_wall_time_keys_are_read_tolerantly(key: str) -> None:
    run = {**_run(9.0, 0), "extra": {key: 7.0}}
    assert Runs((run,)).trusted(("train_wall_s", "wall_s")) == [7.0]
    assert json.dumps(run)  # plain data: what the evaluation cache holds


def _one_generation(tmp_path: Path):
    """A scratch repository evolved one generation with the fake evaluator and the local forge."""
    from darwin_bot.cli import make_scratch_repo
    from darwin_bot.config import from_dict
    from darwin_bot.engine import Engine
    from darwin_bot.git import GitRepo
    from darwin_bot.llm import make_llm
    from darwin_bot.publish import make_publisher
    from tests.engine.test_engine import FakeEvaluator

    root = tmp_path / "repo"
    make_scratch_repo(root, "")
    cfg = from_dict(
        {
            "evolution": {"population": 4, "survivors": 2, "seed": 3},
            "budget": {"iters": 10, "repeats": 3},
            "fitness": {"mfu_weight": 0.0},
            "llm": {"backend": "heuristic"},
        }
    )
    publisher = make_publisher(root, cfg)
    engine = Engine(
        GitRepo(root, prefix=cfg.evolution.branch_prefix),
        cfg,
        evaluator=FakeEvaluator(),
        llm_factory=lambda s: make_llm(cfg.llm, seed=s),
        publisher=publisher,
    )
    engine.run(1)
    summary = engine.summary(1)
    assert summary is not None
    leader = summary.leader
    assert leader and leader != "seed", summary.to_json()["ranking"]
    return engine, publisher, summary, leader


def test_the_leaders_pr_body_has_plot_cost_and_p_values_and_a_rerun_changes_nothing(
    tmp_path: Path,
) -> None:
    engine, publisher, summary, leader = _one_generation(tmp_path)
    prs = {p.branch: p for p in publisher.forge.list_prs(state="all")}
    body = prs[engine.repo.branch(leader)].body
    plot = f"memory/plots/{leader}.png"
    sha = engine.repo.git("log", "-1", "--format=%H", "darwin/memory", "--", plot).strip()
    assert sha, "the plot was committed by the bot"
    assert f"](memory/plots/{leader}.png@{sha[:12]})" in body
    assert "p-value (perplexity lower, one-sided Welch): vs parent" in body
    import re

    assert re.search(r"vs baseline \d[0-9.e+-]*\n", body), "a number: 3 runs a side"
    assert (
        "**Trusted cost** (measured by the harness): training wall time 1.0 ± 0.0 (n=3) s" in body
    )
    assert "cost ratio vs baseline 1.000" in body
    # The leader's parent is the seed (3 runs): the comparison is made, not "needs 2+ runs".
    assert "| parent = baseline (seed) |" in body and "needs 2+ runs" not in body
    assert re.search(r"vs parent \d[0-9.e+-]*;", body), body
    assert re.search(r"\| this agent \| [0-9.]+ ± [0-9.]+ \(n=3\) \| [+-]\d+\.\d\d% \|", body)
    # The run's fitness plot is in the memory, among the files committed with it.
    assert (engine.repo.root / "memory" / "plots" / "fitness.png").read_bytes()[
        :8
    ] == b"\x89PNG\r\n\x1a\n"
    assert "memory/plots/fitness.png" in engine.memory_files()
    # A culled agent's closed PR keeps its final metrics and says why it was culled.
    culled = [prs[engine.repo.branch(a)] for a in summary.culled if a != "seed"]
    assert culled, summary.to_json()
    for pr in culled:
        assert pr.state == "closed"
        assert "**Culled in generation 1:** " in pr.body, pr.body
        assert "only 2 survive (evolution.survivors)" in pr.body or "training run ended" in pr.body
        assert "Awaiting evaluation" not in pr.body and "| this agent |" in pr.body
    dash = publisher.forge.find_issue("dashboard", label="darwin:dashboard")
    assert dash is not None and "### LLM spend" in dash.body and "| model | calls |" in dash.body

    # The step again: same bodies, no new commit.
    head = engine.repo.git("rev-parse", "darwin/memory").strip()
    records = engine.offspring_records(1)
    publisher.selected(summary, records)
    again = {p.branch: p.body for p in publisher.forge.list_prs(state="all")}
    assert again == {b: p.body for b, p in prs.items()}
    assert engine.repo.git("rev-parse", "darwin/memory").strip() == head


def test_the_pr_shows_only_runs_of_this_evaluator_version_and_corpus(tmp_path: Path) -> None:
    """Runs scored by another evaluator version or on another corpus sit in the same folder."""
    engine, publisher, summary, leader = _one_generation(tmp_path)
    branch = engine.repo.branch(leader)
    before = next(p.body for p in publisher.forge.list_prs(state="all") if p.branch == branch)
    assert "(n=3)" in before
    cache = engine.evals.cache
    tree = engine.repo.tree_id(engine.repo.rev(branch), engine.cfg.evolution.evolvable)
    one = cache.results(tree)[0].to_dict()
    folder = cache.path(tree, 0).parent
    for stale in (
        cache.key.replace("-vfake-1-", "-v2-"),  # an older evaluator version
        cache.key.replace("-ddata_shakespeare_char", "-dother_corpus"),  # another corpus
    ):
        assert stale != cache.key
        for seed in range(3):
            planted = dict(one, seed=seed, metrics=dict(one["metrics"], perplexity=999.0))
            (folder / f"{stale}-s{seed}.json").write_text(json.dumps(planted))
    records = engine.offspring_records(1)
    publisher.selected(summary, records)
    after = next(p.body for p in publisher.forge.list_prs(state="all") if p.branch == branch)
    assert after == before
    assert "999" not in after


def test_the_seed_as_parent_is_compared_and_every_row_has_its_change() -> None:
    agent = Runs((_run(9.0, 0), _run(9.1, 1), _run(9.05, 2)))
    base = Runs((_run(10.0, 0), _run(10.1, 1), _run(10.05, 2)))
    text = "\n".join(metrics_table(agent, None, base, parent_is_seed=True))
    assert "| this agent | 9.0500 ± 0.0500 (n=3) | -9.95% |" in text
    assert "| parent = baseline (seed) | 10.0500 ± 0.0500 (n=3) | +0.00% |" in text
    vs_parent = text.split("vs parent ")[1].split(";")[0]
    assert vs_parent == text.split("vs baseline ")[1].strip() and float(vs_parent) < 0.01


def test_why_an_agent_was_culled() -> None:
    rows = tuple(Row(a, 2, ("seed",), rank=i) for i, a in enumerate("abc", 1))
    summary = GenerationSummary(2, rows, ("a",), ("b", "c"), baseline=_baseline(10.0))
    ok = Row("c", 2, ("seed",), fitness=-0.02, metrics=_metrics(10.2), rank=3)
    assert cull_reason(summary, ok) == (
        "Culled in generation 2: ranked 3 of 3 with perplexity 10.2000 "
        "(+2.00% vs the seed's 10.0000); only 1 survives (evolution.survivors)"
    )
    failed = Row("b", 2, ("seed",), status=Status.TIMEOUT, reason="past\n60 s", rank=2)
    assert cull_reason(summary, failed) == (
        "Culled in generation 2: its training run ended timeout (past 60 s)"
    )


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_the_lineage_panel_has_whole_generations_error_bars_and_the_seeds_band() -> None:
    lineage = [("seed", 0, 10.0), ("a1", 1, 9.5), ("b2", 3, 9.0)]
    curves = {"b2 (this agent)": [(10, 3.5), (20, 2.9)], "seed": [(10, 3.6), (20, 3.1), (30, 2.8)]}
    fig = review_figure(lineage, curves, 10.0, errors={"a1": 0.2, "b2": 0.1}, baseline_sd=0.3)
    fig.canvas.draw()
    left, right = fig.axes
    ticks = [t for t in left.get_xticks() if left.get_xlim()[0] <= t <= left.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    bars = [c for c in left.containers if hasattr(c, "has_yerr") and c.has_yerr]
    assert bars, "error bars from the repeats"
    (segments,) = bars[0][2]
    heights = sorted(round(abs(s[1][1] - s[0][1]) / 2, 6) for s in segments.get_segments())
    assert heights == [0.0, 0.1, 0.2]
    assert any(p.get_label().startswith("the seed's noise") for p in left.patches)
    assert {"seed", "a1", "b2"} <= set(_texts(left))
    # two logged losses are not a curve: only the seed's three points are drawn
    assert [ln.get_label() for ln in right.lines] == ["seed"]
    bare = review_figure(lineage, {"x": [(10, 3.0), (20, 2.0)]}, 10.0)
    assert "no curve to show" in " ".join(_texts(bare.axes[1])) and not bare.axes[1].lines


def _curved(ppl: float, val_loss: float, points: list[tuple[float, float]]) -> dict:
    run = _run(ppl, 0)
    run["metrics"]["val_loss"] = val_loss
    curve = [{"budget_fraction": f, "wall_s": 10 * f, "val_loss": v} for f, v in points]
    run["extra"] = {"curve": {"points": curve}}
    return run


def test_the_pr_shows_the_trusted_curves_and_when_each_reaches_the_seeds_loss() -> None:
    seed = Runs((_curved(10.0, 2.0, [(0.5, 2.4), (1.0, 2.0)]),))
    agent = Runs((_curved(9.0, 1.9, [(0.5, 2.0), (1.0, 1.9)]),))
    slow = Runs((_curved(11.0, 2.1, [(0.5, 2.5), (1.0, 2.1)]),))
    table = metrics_table(agent, slow, seed)
    assert "MFU (reported)" in table[0] and "trusted" in table[0]
    rows = {line.split("|")[1].strip(): line.split("|")[4].strip() for line in table[2:5]}
    assert rows == {
        "this agent": "0.50 (n=1)",
        "parent": "not reached (n=1)",
        "baseline (seed)": "1.00 (n=1)",
    }
    held_out = {"a1 (this agent)": agent.held_out_curve(), "seed": seed.held_out_curve()}
    fig = review_figure([("a1", 1, 9.0)], {}, 10.0, held_out=held_out, target=2.0)
    lineage, trusted, reported = fig.axes
    assert [ln.get_label() for ln in trusted.lines] == [
        "the seed's final loss",
        "a1 (this agent)",
        "seed",
    ]
    assert list(trusted.lines[1].get_xdata()) == [0.5, 1.0]
    assert "reported" in reported.get_title() and "trusted" in trusted.get_title()
