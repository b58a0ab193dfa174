"""Programs that try to game the score, through ``darwin evaluate`` with the bubblewrap sandbox.

Each class of the threat model gets its hostile programs; each must gain nothing
against an honest program of the same kind: rejected, timeout or over_budget, or
a score no better than the honest one.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

# Generous: each evaluation starts two sandboxes that import torch, and exports the
# model, which takes half a minute on a loaded 2-core machine.
pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("bwrap")]


@pytest.fixture(autouse=True)
def shared_windows(monkeypatch):
    """One window secret for the module: hostile and honest runs are scored on the same text."""
    monkeypatch.setenv("DARWIN_WINDOW_SECRET", "tamper-tests")


def _smart(make_tree, evaluate, strategy: str, positions: str = "") -> dict:
    tree = make_tree(train="train_counts.py", model="model_peek_smart.py",
                     target=f"{strategy}\n{positions}")  # fmt: skip
    return evaluate(tree).result


def test_an_honest_model_passes_the_probes_and_its_score_is_the_bar(make_tree, evaluate):
    honest = _smart(make_tree, evaluate, "none")
    assert honest["status"] == "ok", honest["reason"] + honest["log_tail"]
    extra = honest["extra"]
    assert extra["causal_probes"] >= 512 and extra["probe_suffixes"] == "held-out"
    assert extra["causal_max_logprob_diff"] <= extra["causal_tolerance"]
    assert extra["eval_windows"] == 64 and extra["windows"].startswith("secret")
    assert extra["sources"]["perplexity"].startswith("measured")
    assert extra["sources"]["mfu"].startswith("reported")
    assert 1.0 < honest["metrics"]["perplexity"] < 65


@pytest.mark.parametrize("strategy", ["compare", "stateful", "splice", "count"])
def test_peekers_that_look_at_their_inputs_from_python_cannot_be_scored(
    make_tree, evaluate, strategy
):
    # Reading argv or files, keeping Python state, looping over rows in numpy: none of it
    # is a tensor operation, so none of it is in the graph that is scored.
    result = _smart(make_tree, evaluate, strategy)
    assert result["status"] == "rejected", (strategy, result["reason"])
    assert "cannot be exported" in result["reason"] and result["metrics"] is None


def test_a_model_that_peeks_at_one_fixed_position_is_rejected_for_certain(make_tree, evaluate):
    # q = 1/63: the probes' cuts go through every position, so the peek is always seen
    result = _smart(make_tree, evaluate, "fraction", "40")
    assert result["status"] == "rejected", result["reason"]
    assert "not causal" in result["reason"]


def test_a_note_left_by_the_agents_code_is_left_in_training_only(make_tree, evaluate):
    result = evaluate(make_tree(train="train_counts.py", model="model_leave.py")).result
    log = result["log_tail"]
    assert result["status"] == "ok", result["reason"]
    training, _, scoring = log.partition("--- scoring ---")
    assert "LEAVE WROTE" in training and "LEAVE" not in scoring, log  # no agent code scores
    assert "LEAVE FOUND" not in log, log


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_logits_are_rejected(make_tree, evaluate, bad):
    result = evaluate(make_tree(train="train_counts.py", model="model_nan.py", target=bad)).result
    assert result["status"] == "rejected" and "non-finite" in result["reason"]


def test_frames_forged_by_the_agents_code_never_reach_the_scorer(make_tree, evaluate):
    # Its forward writes fake frames into every pipe it has; it runs only while training
    # exports it, so the scorer reads what the graph computes: the honest table's score.
    forged = evaluate(make_tree(train="train_counts.py", model="model_garbage.py")).result
    honest = evaluate(make_tree(train="train_counts.py", model="model_table.py")).result
    assert forged["status"] == honest["status"] == "ok", (forged["reason"], honest["reason"])
    assert forged["metrics"]["perplexity"] == honest["metrics"]["perplexity"]


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
def test_training_moved_into_load_is_paid_for_as_training(make_tree, evaluate, tmp_path):
    # The agent's load() runs where the model is exported, in the training process:
    # a program that trains there instead of in train.py pays for it as training.
    honest = evaluate(make_tree(train="train_counts.py", model="model_table.py")).result
    assert honest["status"] == "ok", honest["reason"]
    quick = make_tree(train="train_stash.py", model="model_load_train.py", target="0")
    moved = evaluate(quick).result
    assert moved["status"] == "ok", moved["reason"]  # what it would gain, measured:
    assert moved["metrics"]["perplexity"] < honest["metrics"]["perplexity"]
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(honest))
    slow = make_tree(train="train_stash.py", model="model_load_train.py", target="300",
                     timeout_s=400.0)  # fmt: skip
    cheat = evaluate(slow, "--baseline", str(baseline)).result
    assert cheat["status"] == "over_budget", cheat["reason"]
    assert "training used more than" in cheat["reason"], cheat["reason"]
    assert "baseline's mean CPU time" in cheat["reason"]
    extra = cheat["extra"]
    assert extra["train_cpu_s"] < 0.5 * 300  # stopped long before its 300 CPU s in load()


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


# ------------------------------------------------------------ classes of evaluator v4


@pytest.mark.slow
def test_a_model_that_keeps_state_between_calls_is_rejected(make_tree, evaluate):
    result = evaluate(make_tree(model="model_keep_state.py", timeout_s=120.0)).result
    assert result["status"] == "rejected", result["reason"]
    assert "mutate no buffer" in result["reason"] and result["metrics"] is None


@pytest.mark.slow
def test_a_relay_finds_no_held_out_text_where_agent_code_runs(make_tree, evaluate):
    relay = evaluate(make_tree(model="model_relay.py", timeout_s=120.0)).result
    honest = evaluate(make_tree(timeout_s=120.0)).result
    assert relay["status"] == honest["status"] == "ok", (relay["reason"], honest["reason"])
    training, _, scoring = relay["log_tail"].partition("--- scoring ---")
    assert "RELAY" in training and "found=[]" in training, training  # it ran, and found nothing
    assert "RELAY" not in scoring and "STASHED" not in relay["log_tail"]
    assert relay["metrics"]["perplexity"] == honest["metrics"]["perplexity"]  # same windows


@pytest.mark.slow
def test_memorised_public_windows_buy_nothing_on_secret_windows(make_tree, evaluate, corpus):
    """The fixed windows are public: a model that embeds them wins there, and only there."""
    import numpy as np

    from darwin_bot.evaluate import WINDOW_SEED, choose_windows, windows

    val = np.fromfile(corpus / "val.bin", dtype=np.uint16)
    T, available = 64, (len(val) - 1) // 64
    fixed = choose_windows(available, 64, WINDOW_SEED)
    rows = "\n".join(" ".join(map(str, val[w * T : w * T + T + 1])) for w in fixed)
    tree = make_tree(model="model_embed_windows.py", target=rows, timeout_s=120.0)
    public = evaluate(tree, "--fixed-windows").result
    secret = evaluate(tree).result
    honest = evaluate(make_tree(timeout_s=120.0)).result
    assert public["status"] == secret["status"] == honest["status"] == "ok"
    loss = {k: math.log(r["metrics"]["perplexity"]) for k, r in
            (("public", public), ("secret", secret), ("honest", honest))}  # fmt: skip
    assert loss["public"] < 0.2 * loss["honest"]  # the attack, were the windows public
    # On secret windows it gains at most the share of them it happens to know.
    drawn = choose_windows(available, 64, windows.seed_of("tamper-tests"))
    known = len(set(drawn.tolist()) & set(fixed.tolist())) / 64
    assert loss["secret"] >= (1 - known) * loss["honest"] - 1e-6, (loss, known)
