"""A stranger's repository, as the CI jobs meet it on GitHub (the emulator behind the proxy).

The jobs run as in :mod:`test_automerge_github` (fake evaluation results, so no
training; the gate promotes a clear winner), on repositories set up the way many
are: squash merges only with "Automatically delete head branches" on; the
setting "Allow GitHub Actions to create and approve pull requests" off; and a
select job that dies between its API calls and its push.
"""

from __future__ import annotations

from typing import Any

import pytest
from forge_emulator import Emulator, Fault
from test_automerge_github import generation_with_a_champion, start_flow, write_results
from test_generation_github import Workflow, git

pytestmark = pytest.mark.slow

ACTIONS_PR_403 = "GitHub Actions is not permitted to create or approve pull requests."


def _fresh(emulator: Emulator) -> None:
    emulator.proxy.clear()


def test_squash_only_with_auto_delete_keeps_the_chain_going(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator
) -> None:
    _fresh(emulator)
    try:
        run = generation_with_a_champion(
            tmp_path_factory.mktemp("squash"), emulator, refuse_merge=False,
            allow_merge_commit=False, allow_rebase_merge=False, delete_branch_on_merge=True,
        )  # fmt: skip
    finally:
        _fresh(emulator)
    flow: Workflow = run["flow"]
    origin, winner = run["origin"], run["winner"]
    head = run["jobs"][winner]["head"]
    assert run["selected"]["champion"] == winner
    (merge,) = run["merges"]
    assert git(origin, "rev-parse", "main") == merge
    # A squash: one parent, the champion's tree.
    assert git(origin, "rev-list", "--parents", "-n", "1", merge).split()[1:] == [
        run["main_before"]
    ]
    assert git(origin, "rev-parse", "main:seed") == git(origin, "rev-parse", f"{head}:seed")
    # The evaluated head was archived on origin before the merge could delete its branch.
    assert git(origin, "rev-parse", f"refs/darwin/archive/{winner}") == head
    # The repository deletes the merged branch whenever it likes (here: after select's push).
    git(origin, "update-ref", "-d", f"refs/heads/darwin/{winner}")
    g, jobs, _ = flow.propose()
    assert g == 2 and jobs, "the next generation starts without the champion's branch"


def test_a_select_killed_before_its_push_loses_no_lineage(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator
) -> None:
    _fresh(emulator)
    try:
        run = generation_with_a_champion(
            tmp_path_factory.mktemp("killed"), emulator, refuse_merge=False,
            kill_select_before_push=True,
        )  # fmt: skip
    finally:
        _fresh(emulator)
    killed: dict[str, Any] = run["killed"]
    assert killed["returncode"] == -9, "select was killed at its push"
    # Every API call of select was made (PRs closed, champion merged), yet no branch is gone:
    # branches change only with the push that archives them.
    assert all(killed["emulator"].values()), killed["emulator"]
    winner = run["winner"]
    assert f"refs/darwin/archive/{winner}" in killed["origin"].split()
    # The rerun of the job finished the generation: the culled are archived, then deleted.
    origin = run["origin"]
    summary_culled = [
        agent
        for agent in run["jobs"]
        if git(origin, "for-each-ref", "--format=%(refname)", f"refs/heads/darwin/{agent}") == ""
    ]
    assert summary_culled, "population 3, survivors 2: an offspring was culled"
    for agent in summary_culled:
        archived = git(origin, "rev-parse", f"refs/darwin/archive/{agent}")
        assert archived == run["jobs"][agent]["head"]
    g, jobs, _ = run["flow"].propose()
    assert g == 2 and jobs


def test_a_repository_that_refuses_actions_prs_stops_propose_before_any_push(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator
) -> None:
    _fresh(emulator)
    base = tmp_path_factory.mktemp("nopr")
    try:
        run = start_flow(base, emulator)
        flow: Workflow = run["flow"]
        emulator.proxy.inject(
            Fault(403, "POST", r"/pulls$", times=99, body={"message": ACTIONS_PR_403})
        )
        refs_before = git(run["origin"], "for-each-ref", "--format=%(refname) %(objectname)")
        repo = flow.checkout("propose-refused")
        proc = flow.attempt(
            ["propose", "--repo", str(repo)], repo, secrets=True, env={"GITHUB_ACTIONS": "true"}
        )
    finally:
        _fresh(emulator)
    assert proc.returncode == 1, proc.stderr
    assert "::error title=darwin-bot::" in proc.stdout
    assert "Allow GitHub Actions to create and approve pull requests" in proc.stdout
    after = git(run["origin"], "for-each-ref", "--format=%(refname) %(objectname)")
    assert after == refs_before, "nothing was pushed"
    # The dry run names the setting too, and writes nothing.
    emulator.proxy.inject(Fault(403, "POST", r"/pulls$", times=1, body={"message": ACTIONS_PR_403}))
    repo = flow.checkout("dry-run-refused")
    dry = flow.attempt(["propose", "--repo", str(repo), "--dry-run"], repo, secrets=True)
    assert dry.returncode == 2 and "the Actions PR setting" in dry.stderr, dry.stderr
    emulator.proxy.clear()
    mark = len(emulator.proxy.log)
    repo = flow.checkout("dry-run")
    dry = flow.attempt(["propose", "--repo", str(repo), "--dry-run"], repo, secrets=True)
    assert dry.returncode == 0, dry.stderr
    for check in ("repository", "pull requests", "issues", "the Actions PR setting", "the LLM"):
        assert f"{check}: " in dry.stderr, check
    writes = [e for e in emulator.proxy.log[mark:] if e[0] != "GET"]
    assert [(m, status) for m, _, status in writes] == [("POST", 422)], "only the probe"
    assert git(run["origin"], "for-each-ref", "--format=%(refname) %(objectname)") == after
    # With the setting on again, the same generation is proposed.
    g, jobs, _ = flow.propose()
    assert g == 1 and jobs


def test_legs_lost_by_the_infrastructure_are_evaluated_again_never_culled(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator
) -> None:
    """A leg with no result (runner offline, job cancelled in the queue) stops select with
    exit 3 before it decides or writes anything; with the result, select goes on."""
    _fresh(emulator)
    base = tmp_path_factory.mktemp("lost")
    try:
        run = start_flow(base, emulator)
        flow: Workflow = run["flow"]
        g, jobs, _ = flow.propose()
        assert g == 1 and len(jobs) >= 2
        results = base / "results-g1"
        lost, *kept = jobs
        write_results(results, kept, {job["agent"]: 20.0 for job in jobs})
        refs = git(run["origin"], "for-each-ref", "--format=%(refname) %(objectname)")
        mark = len(emulator.proxy.log)
        repo = flow.checkout("select-short")
        args = ["select", "--repo", str(repo), "--results", str(results)]
        proc = flow.attempt(args, repo, secrets=True)
        assert proc.returncode == 3, proc.stderr
        assert "left no result" in proc.stderr and lost["agent"] in proc.stderr
        assert [e for e in emulator.proxy.log[mark:] if e[0] != "GET"] == [], "no write"
        assert git(run["origin"], "for-each-ref", "--format=%(refname) %(objectname)") == refs
        write_results(results / "rerun", [lost], {lost["agent"]: 20.0})
        flow.select(results)  # the re-run legs reported: the generation is selected
    finally:
        _fresh(emulator)
