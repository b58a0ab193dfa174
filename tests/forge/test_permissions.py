"""The permission-enforcing proxy: job tokens parsed from a workflow, refused as GitHub refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from forge_harness import GitHubHarness
from permissions import NOT_ACCESSIBLE, Enforcer, Level, job_permissions

from darwin_bot.errors import ForgeAuthError

SHA = "a" * 40
REPO = "/repos/octo/evo"


def workflow(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wf.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_named_permissions_leave_the_rest_none(tmp_path: Path) -> None:
    wf = workflow(
        tmp_path,
        "permissions: {}\njobs:\n  a:\n    permissions:\n      contents: write\n"
        "  b:\n    permissions: read-all\n  c: {}\n",
    )
    a = job_permissions(wf, "a")
    assert a["contents"] is Level.WRITE and a["metadata"] is Level.READ
    assert a["statuses"] is a["issues"] is a["pull-requests"] is Level.NONE
    assert set(job_permissions(wf, "b").values()) == {Level.READ}
    assert set(job_permissions(wf, "c").values()) == {Level.NONE, Level.READ}  # from `{}`


def test_a_job_without_permissions_anywhere_is_refused(tmp_path: Path) -> None:
    wf = workflow(tmp_path, "jobs:\n  a:\n    runs-on: x\n")
    with pytest.raises(AssertionError, match="states no permissions"):
        job_permissions(wf, "a")


def enforcer(pulls: set[int] = frozenset(), **grants: str) -> Enforcer:
    levels = {k.replace("_", "-"): Level.parse(v) for k, v in grants.items()}
    return Enforcer(levels, lambda _o, _n, number: number in pulls, lambda _o, _n, c: c // 100)


def test_statuses_need_statuses_write() -> None:
    assert (
        not enforcer(contents="write", pull_requests="write")
        .check("POST", f"{REPO}/statuses/{SHA}")
        .allowed
    )
    assert enforcer(statuses="write").check("POST", f"{REPO}/statuses/{SHA}").allowed
    assert enforcer(statuses="read").check("GET", f"{REPO}/commits/{SHA}/status").allowed


def test_issue_endpoints_take_the_permission_of_what_the_number_is() -> None:
    only_prs = enforcer(pulls={7}, pull_requests="write")
    assert only_prs.check("POST", f"{REPO}/issues/7/comments").allowed  # 7 is a PR
    assert not only_prs.check("POST", f"{REPO}/issues/8/comments").allowed  # 8 is an issue
    assert not only_prs.check("PATCH", f"{REPO}/issues/comments/812").allowed  # on issue 8
    assert only_prs.check("PATCH", f"{REPO}/issues/comments/712").allowed  # on PR 7
    assert not only_prs.check("GET", f"{REPO}/issues?state=all").allowed  # listing: issues


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/user"), ("GET", f"{REPO}/collaborators"), ("DELETE", REPO)],
)
def test_anything_without_a_rule_is_refused(method: str, path: str) -> None:
    grants = {scope: "write" for scope in ("contents", "issues", "pull_requests", "statuses")}
    assert not enforcer(**grants).check(method, path).allowed


def test_the_proxy_answers_githubs_403_and_the_forge_maps_it(github: GitHubHarness) -> None:
    head = github.make_branch("darwin/g001-000", "lr = 2e-3\n")
    proxy = github.emulator.proxy
    proxy.serve_statuses()
    no_statuses = {"contents": Level.WRITE, "pull-requests": Level.WRITE, "metadata": Level.READ}
    forge = github.make_forge(token=proxy.grant("select", no_statuses))
    with pytest.raises(ForgeAuthError, match=NOT_ACCESSIBLE):
        forge.set_status(head, "darwin/fitness", "success", "rank 1/1")
    ((job, method, path, status, need),) = [e for e in proxy.job_log if e[3] == 403]
    assert (job, method, status, need) == ("select", "POST", 403, "statuses: write")
    assert proxy.log[-1] == (method, path, 403)
    granted = github.make_forge(
        token=proxy.grant("select", {**no_statuses, "statuses": Level.WRITE})
    )
    granted.set_status(head, "darwin/fitness", "success", "rank 1/1")
    assert [s.state for s in granted.get_statuses(head)] == ["success"]
