"""``darwin evaluate`` as a user types it: the happy path on the real seed, repeats, errors."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from darwin_bot.config import Config
from tests.conftest import REPO_ROOT, SHARED_CORPUS


def darwin(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GITHUB_TOKEN", "GH_TOKEN", "OPENAI_API_KEY")
    }
    return subprocess.run(
        [sys.executable, "-m", "darwin_bot", *args],
        capture_output=True, text=True, timeout=timeout, env={**base, **(env or {})},
    )  # fmt: skip


# The under-a-minute figure is measured in README's benchmarks, not asserted here:
# a loaded machine takes minutes.
@pytest.mark.timeout(900)
@pytest.mark.usefixtures("bwrap")
def test_real_seed_evaluates_ok_and_streams_its_iterations(tmp_path: Path):
    data = tmp_path / "data"
    if SHARED_CORPUS.exists():
        prepared = darwin("data", "prepare", "--input", str(SHARED_CORPUS), "--out", str(data))
    else:
        prepared = darwin("data", "prepare", "--synthetic", "--out", str(data))
    assert prepared.returncode == 0, prepared.stderr
    run = darwin("evaluate", str(REPO_ROOT), "--preset", "tiny", "--json", "--data", str(data),
                 "--iters", "20", "--sandbox", "bwrap", timeout=850)  # fmt: skip
    assert run.returncode == 0, run.stderr
    # not a terminal: timestamped progress lines on stderr, from the sandbox's log as it came
    progress = re.findall(r"^\S+Z \[ *[\d.]+s\] training: (\d+)/20 iter", run.stderr, re.M)
    assert progress and progress[-1] == "20", run.stderr[-2000:]
    assert [int(p) for p in progress] == sorted(int(p) for p in progress)
    result = json.loads(run.stdout)
    assert result["status"] == "ok", result["reason"] + result["log_tail"]
    m = result["metrics"]
    vocab = json.loads((data / "meta.json").read_text())["vocab_size"]
    assert 1.0 < m["perplexity"] < vocab  # trained: better than uniform guessing
    assert math.isclose(m["perplexity"], math.exp(m["val_loss"]), rel_tol=1e-9)
    assert 0 < m["mfu"] < 1 and m["tokens_per_s"] > 0 and m["peak_mem_mb"] > 0
    assert result["device"].startswith("cpu")
    assert result["extra"]["iterations"] == 20 and result["extra"]["sandbox"] == "bwrap"
    extra = result["extra"]
    assert m["train_wall_s"] > 0  # measured by the harness
    assert m["train_wall_s"] == pytest.approx(extra["train_wall_s"], abs=1e-3)
    assert "cost_ratio" in extra and result["evaluator_version"] == "6"
    # the charge: the CPU time of the sandboxes' trees, from the kernel, beside the wall time
    assert 0 < m["train_cpu_s"] == pytest.approx(extra["train_cpu_s"], abs=1e-3)
    assert m["score_cpu_s"] > 0 and extra["cost_measure"] == "cpu"
    assert extra["threads"] >= 1 and extra["train_busy"] > 0 and extra["worker_device"] == "cpu"
    assert extra["flops_per_token"] == 6 * extra["num_params"]  # from the weights, not train.json
    assert extra["causal_max_logprob_diff"] <= extra["causal_tolerance"]
    assert extra["windows"].startswith("secret") and extra["graph_nodes"] > 0
    assert len(result["tree_hash"]) == 16 and result["evaluator_version"]
    # the trusted curve: the seed saved checkpoint.pt at 0.25, 0.5, 0.75 of its 20 iterations;
    # the harness scored each on the same windows and put it where its own clock saw it
    curve = extra["curve"]
    assert curve["note"] == "" and curve["requested"] == [0.25, 0.5, 0.75]
    points = curve["points"]
    assert [p["requested"] for p in points] == [0.25, 0.5, 0.75, None]
    at = [p["budget_fraction"] for p in points]
    assert at == sorted(at) and at[-1] == 1.0
    assert all(a >= r for a, r in zip(at[:3], curve["requested"], strict=True))
    assert all(math.isfinite(p["val_loss"]) and p["reason"] == "" for p in points)
    assert points[-1]["val_loss"] == m["val_loss"]
    assert points[0]["val_loss"] > points[-1]["val_loss"]  # 5 iterations in: not as far along
    assert curve["windows"] == extra["eval_windows"] and curve["score_cpu_s"] > 0


@pytest.mark.timeout(180)  # two evaluations, each exporting its model (torch.export's import)
@pytest.mark.usefixtures("bwrap")
def test_repeats_give_runs_with_consecutive_seeds_and_their_mean_and_std(
    make_tree, evaluate, tmp_path
):
    out_file = tmp_path / "result.json"
    tree = make_tree(train="train_fake.py", model="model_table.py")
    run = evaluate(tree, "--repeats", "2", "--seed", "7", "--out", str(out_file))
    summary = run.result
    assert summary == json.loads(out_file.read_text())
    assert summary["status"] == "ok" and summary["ok_runs"] == 2
    assert [r["seed"] for r in summary["runs"]] == [7, 8] == summary["seeds"]
    losses = [r["metrics"]["val_loss"] for r in summary["runs"]]
    assert losses[0] != losses[1]  # different seeds really trained differently
    assert summary["mean"]["val_loss"] == pytest.approx(sum(losses) / 2)
    assert summary["std"]["val_loss"] == pytest.approx(abs(losses[0] - losses[1]) / math.sqrt(2))
    assert {r["tree_hash"] for r in summary["runs"]} == {summary["tree_hash"]}


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("bwrap")
def test_smoke_mode_trains_on_a_slice_and_scores_a_few_windows(make_tree, evaluate, corpus):
    result = evaluate(make_tree(train="train_fake.py", model="model_table.py"), "--smoke").result
    assert result["status"] == "ok", result
    assert result["budget"]["iters"] == Config().budget.smoke_iters
    assert result["extra"]["smoke"] is True
    assert result["extra"]["eval_windows"] == 4 and result["extra"]["causal_probes"] == 16
    full_tokens = (corpus / "train.bin").stat().st_size // 2
    assert "train.bin has 50000 tokens" in result["log_tail"] and full_tokens > 50000


def test_sandbox_none_runs_but_warns_loudly(make_tree, corpus):
    run = darwin("evaluate", str(make_tree(train="train_crash.py")), "--data", str(corpus),
                 "--sandbox", "none", "--json", "--iters", "1")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "UNCONFINED" in run.stderr
    assert json.loads(run.stdout)["status"] == "failed"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--preset", "huge"], {}, "Invalid value for '--preset'"),
        (["--data", "/nonexistent/data"], {}, "darwin data prepare"),
        (["--iters", "5", "--seconds", "3"], {}, "--iters or --seconds"),
        (["--iters", "0"], {}, "Invalid value for '--iters'"),
        ([], {"GITHUB_TOKEN": "ghp_fake"}, "refusing to run agent code with GITHUB_TOKEN"),
        ([], {"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "x"}, "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ],
)
def test_caller_errors_are_one_line_and_exit_2(make_tree, corpus, args, env, message):
    run = darwin("evaluate", str(make_tree()), "--data", str(corpus), *args, env=env, timeout=30)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_a_folder_without_a_seed_program_is_a_config_error(tmp_path, corpus):
    run = darwin("evaluate", str(tmp_path), "--data", str(corpus), timeout=30)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0  # one line
    assert "has no seed/train.py" in run.stderr
