"""Programs that try to game the score, through ``darwin evaluate`` with the bubblewrap sandbox.

Each class of the threat model gets its hostile programs; each must gain nothing
against an honest program of the same kind: rejected, timeout or over_budget, or
a score no better than the honest one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Generous: each evaluation starts three sandboxes that import torch, which takes
# half a minute on a loaded 2-core machine.
pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("bwrap")]


def _smart(make_tree, evaluate, strategy: str, positions: str = "") -> dict:
    tree = make_tree(train="train_counts.py", model="model_peek_smart.py",
                     target=f"{strategy}\n{positions}")  # fmt: skip
    return evaluate(tree).result


def test_an_honest_model_passes_the_twins_and_its_score_is_the_bar(make_tree, evaluate):
    honest = _smart(make_tree, evaluate, "none")
    assert honest["status"] == "ok", honest["reason"] + honest["log_tail"]
    extra = honest["extra"]
    assert extra["twin_pairs"] >= 128 and extra["twin_suffixes"] == "held-out"
    assert extra["twin_max_logprob_diff"] <= extra["twin_tolerance"]
    assert extra["eval_windows"] == 64 and len(extra["score_walls_s"]) == 2
    assert extra["sources"]["perplexity"].startswith("measured")
    assert extra["sources"]["mfu"].startswith("reported")
    assert 1.0 < honest["metrics"]["perplexity"] < 65


@pytest.mark.parametrize("strategy", ["compare", "stateful", "splice", "count"])
def test_peekers_that_try_to_tell_twins_from_scored_windows_are_rejected(
    make_tree, evaluate, strategy
):
    result = _smart(make_tree, evaluate, strategy)
    assert result["status"] == "rejected", (strategy, result["reason"])
    assert "not causal" in result["reason"] and result["metrics"] is None


def test_a_model_that_peeks_at_a_small_fraction_of_positions_is_rejected(make_tree, evaluate):
    # q = 4/63 of the positions: caught with probability 1 - (59/63)^128 > 0.9997
    result = _smart(make_tree, evaluate, "fraction", "5 21 40 58")
    assert result["status"] == "rejected", result["reason"]
    assert "not causal" in result["reason"]


def test_a_note_for_the_other_scoring_sandbox_is_never_found(make_tree, evaluate):
    result = evaluate(make_tree(train="train_counts.py", model="model_leave.py")).result
    log = result["log_tail"]
    assert result["status"] == "ok", result["reason"]
    sections = log.split("--- scoring ")[1:]
    assert len(sections) == 2 and all("LEAVE WROTE /tmp" in s for s in sections)  # both ran it
    assert "LEAVE FOUND" not in log, log
    assert "LEAVE WROTE /sandbox" not in log  # nothing but /tmp is writable


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_logits_are_rejected(make_tree, evaluate, bad):
    result = evaluate(make_tree(train="train_counts.py", model="model_nan.py", target=bad)).result
    assert result["status"] == "rejected" and "non-finite" in result["reason"]


def test_forged_frames_from_inside_the_worker_rank_as_failures(make_tree, evaluate):
    result = evaluate(make_tree(train="train_counts.py", model="model_garbage.py")).result
    assert result["status"] in ("rejected", "failed"), result
    assert result["metrics"] is None


@pytest.mark.parametrize(
    ("lie", "message"),
    [("tokens", "peak FLOP/s"), ("params", "saved weights hold"), ("seconds", "process ran")],
)
def test_a_lying_training_report_is_rejected(make_tree, evaluate, lie, message):
    result = evaluate(make_tree(train="train_lie.py", target=lie, timeout_s=120.0)).result
    assert result["status"] == "rejected", result["reason"]
    assert "lying report" in result["reason"] and message in result["reason"]


def test_an_honest_report_gives_mfu_from_the_weights(make_tree, evaluate):
    result = evaluate(make_tree(timeout_s=120.0)).result
    assert result["status"] == "ok", result["reason"]
    extra = result["extra"]
    assert extra["num_params"] == extra["matrix_params"] == 65 * 65  # the bigram's table
    assert extra["flops_per_token"] == 6 * 65 * 65
    assert 0 < result["metrics"]["mfu"] < 1


@pytest.mark.timeout(900)
def test_ignoring_the_iteration_budget_is_over_budget_against_the_baseline(
    make_tree, evaluate, tmp_path
):
    honest = evaluate(make_tree(timeout_s=120.0), "--iters", "5")
    assert honest.result["status"] == "ok", honest.result["reason"]
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(honest.result))
    tree = make_tree(train="train_ignore_iters.py", allowance_s=2.0, timeout_s=600.0)
    cheat = evaluate(tree, "--iters", "5", "--baseline", str(baseline)).result
    figures = {k: v for k, v in cheat["extra"].items() if "cpu" in k or "cost" in k}
    assert cheat["status"] == "over_budget", figures
    assert "baseline's mean CPU time" in cheat["reason"] and "stopped" in cheat["reason"]
    cpu = honest.result["extra"]["train_cpu_s"]
    assert cheat["extra"]["baseline_train_cpu_s"] == pytest.approx(cpu, abs=1e-3)
    assert cheat["extra"]["cost_ratio"] > 1.5 and cheat["extra"]["cost_measure"] == "cpu"
    # stopped at its CPU budget, long before the 10000x it would have trained
    assert cheat["extra"]["train_cpu_s"] < 4 * cpu + 10
    # the honest program again, the machine busier than when the baseline was measured:
    # three CPU-bound processes join; ok all the same (CPU time is its work)
    hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(3)]
    try:
        same = evaluate(make_tree(timeout_s=300.0), "--iters", "5", "--baseline", str(baseline))
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert same.result["status"] == "ok", same.result["reason"]
    assert same.result["extra"]["cost_ratio"] < 1.5


@pytest.mark.timeout(600)
def test_training_moved_into_load_is_paid_for_as_scoring(make_tree, evaluate, tmp_path):
    # The agent's load() runs in the scoring sandboxes: a program that trains there
    # instead of in train.py gets a better model from a training run that looks cheap.
    honest = evaluate(make_tree(train="train_counts.py", model="model_table.py")).result
    assert honest["status"] == "ok", honest["reason"]
    quick = make_tree(train="train_stash.py", model="model_load_train.py", target="0")
    moved = evaluate(quick).result
    assert moved["status"] == "ok", moved["reason"]  # what it would gain, measured:
    assert moved["metrics"]["perplexity"] < honest["metrics"]["perplexity"]
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(honest))
    # Against the baseline, load() is held to what the cost limit leaves after training.
    slow = make_tree(train="train_stash.py", model="model_load_train.py", target="300",
                     timeout_s=400.0)  # fmt: skip
    cheat = evaluate(slow, "--baseline", str(baseline)).result
    assert cheat["status"] == "over_budget", cheat["reason"]
    assert "scoring was stopped" in cheat["reason"] and "load()" in cheat["reason"]
    extra = cheat["extra"]
    assert extra["baseline_score_cpu_s"] == pytest.approx(honest["extra"]["score_cpu_s"])
    assert extra["score_wall_s"] < 0.5 * 300  # stopped long before its 300 CPU s in load()


def test_a_baseline_from_another_budget_is_a_caller_error(make_tree, evaluate, tmp_path, corpus):
    from tests.evaluate.test_evaluate_cli import darwin

    honest = evaluate(make_tree(train="train_counts.py", model="model_table.py")).result
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(honest))
    run = darwin("evaluate", str(make_tree()), "--data", str(corpus), "--iters", "7",
                 "--baseline", str(baseline), timeout=60)  # fmt: skip
    assert run.returncode == 2 and "evaluate under the same" in run.stderr, run.stderr
    assert run.stderr.strip().count("\n") == 0  # one line


def test_a_program_that_never_stops_is_killed_at_the_seconds_budget(make_tree, evaluate):
    tree = make_tree(train="train_loop.py", allowance_s=3.0, timeout_s=900.0)
    run = evaluate(tree, "--seconds", "2")
    assert run.result["status"] == "timeout"
    assert "budget of 2 s + 3 s allowance" in run.result["reason"]
    assert run.result["extra"]["train_wall_limit_s"] == 5.0
    assert run.seconds < 5 + 3 + 20  # limit + kill grace + start-up, not timeout_s = 900
