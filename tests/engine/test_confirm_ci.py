"""The CI legs of confirmation: the action's ``budget`` input and ``darwin evaluate --confirm``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from darwin_bot.cli.eval_options import SECRET_VARS
from tests.test_workflows import run_action
from tests.workflow_files import ACTION, DARWIN_YML


def _action() -> dict:
    return yaml.safe_load(ACTION.read_text(encoding="utf-8"))


def test_a_confirmation_leg_runs_darwin_evaluate_with_confirm(tmp_path: Path) -> None:
    _, (call,) = run_action(_action(), tmp_path, command="evaluate", branch="darwin/a1",
                            budget="confirm")  # fmt: skip
    assert call["argv"] == [
        "evaluate", "agent", "--branch", "darwin/a1", "--out", "result.json",
        "--sandbox", "bwrap", "--confirm", "--config", "darwin.toml",
    ]  # fmt: skip
    (tmp_path / "b").mkdir()
    _, (plain,) = run_action(_action(), tmp_path / "b", command="evaluate", branch="darwin/a1")
    assert "--confirm" not in plain["argv"]


def test_the_action_refuses_an_unknown_budget(tmp_path: Path) -> None:
    ran, calls = run_action(_action(), tmp_path, command="evaluate", branch="darwin/a",
                            budget="long")  # fmt: skip
    ((_, proc),) = ran
    assert (
        proc.returncode == 1 and "input 'budget' must be search, confirm or rung-N" in proc.stdout
    )
    assert calls == []


def test_the_reevaluate_legs_pass_the_matrix_budget() -> None:
    jobs = yaml.safe_load(DARWIN_YML.read_text(encoding="utf-8"))["jobs"]
    step = next(
        s for s in jobs["reevaluate"]["steps"] if s.get("with", {}).get("command") == "evaluate"
    )
    assert step["with"]["budget"] == "${{ matrix.budget || 'search' }}"


@pytest.mark.parametrize(
    ("toml", "args", "message"),
    [
        ("", ["--confirm"], "--confirm needs budget.confirm_iters"),
        ("[budget]\nconfirm_iters = 50\n", ["--confirm", "--iters", "5"], "--confirm takes its"),
    ],
)
def test_evaluate_confirm_without_a_confirmation_budget_is_one_line_exit_2(
    tmp_path: Path, toml: str, args: list[str], message: str
) -> None:
    from darwin_bot.cli import make_scratch_repo

    make_scratch_repo(tmp_path / "r", toml)
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    res = subprocess.run(
        [sys.executable, "-m", "darwin_bot", "evaluate", str(tmp_path / "r"), *args],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1
