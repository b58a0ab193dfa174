"""darwin.yml held to the rules GitHub runs it by.

* The concurrency group, the event filter and the dispatch chain are evaluated
  (tests/gh_expr.py) on every kind of event: no generation can be dropped.
* Third-party actions are pinned to commit SHAs with version comments, and
  Dependabot keeps them current.
* The optional GitHub App token has each job's own permissions; no step hides a
  failure (`continue-on-error`); the evaluate jobs sandbox with bubblewrap.
* The GPU runner's pre-job hook refuses every job that is not darwin.yml on the
  default branch (fork PRs included).
* The config refuses a matrix over GitHub's 256 jobs.

Each token's permissions against each REST endpoint are enforced in tests/forge/
(permissions.py), on the jobs as they run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import github_events
from tests.gh_expr import evaluate, truthy
from tests.workflow_files import (
    ACTION,
    DARWIN_YML,
    DEPENDABOT,
    RUNNER_HOOK,
    WORKFLOWS,
    WRITE,
    is_checkout,
    is_darwin_step,
    is_self_hosted,
    load,
    permissions,
    texts,
    written_workflow,
)


@pytest.fixture(scope="module", params=["darwin.yml", "written by darwin init --github"])
def darwin(request: pytest.FixtureRequest) -> dict[str, Any]:
    """darwin-bot's own workflow, and the one a user's repository gets: the same rules."""
    return load(DARWIN_YML) if request.param == "darwin.yml" else written_workflow()


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    return load(ACTION)


# ----------------------------------------------------------------------------- concurrency


REPO = "octo/evo"
GENERATION_GROUP = f"darwin-generation-{REPO}"


def event(name: str, run_id: int = 7, ref: str = "refs/heads/main", actor: str = "alice",
          sender: str = "User", **payload: Any) -> dict[str, Any]:  # fmt: skip
    """The contexts of a run started by ``name``, its payload in the shape GitHub sends."""
    if name == "schedule":
        body = github_events.schedule()  # no repository, no sender
    elif name == "workflow_dispatch":
        body = github_events.workflow_dispatch(ref=ref, who=github_events.sender(actor, sender))
    else:
        body = github_events.of(name, **payload, who=github_events.sender(actor, sender))
    github = {
        "event_name": name, "repository": REPO, "run_id": run_id, "ref": ref,
        "actor": actor, "event": body,
    }  # fmt: skip
    inputs = {"generations": 3, "population": ""} if name == "workflow_dispatch" else {}
    return {"github": github, "inputs": inputs}


def issue_event(action: str, labels: list[str], label: str = "", **kw: Any) -> dict[str, Any]:
    return event("issues", action=action, labels=labels, label=label, **kw)


REQUEST = "darwin:request"
EVENTS = {
    "schedule": (event("schedule"), True),
    "dispatch on the default branch": (event("workflow_dispatch"), True),
    "dispatch on another branch": (event("workflow_dispatch", ref="refs/heads/x"), False),
    "a human approves a request": (
        issue_event("labeled", [REQUEST, "darwin:approved"], "darwin:approved"), True),
    "a human declines a request": (
        issue_event("labeled", [REQUEST, "darwin:declined"], "darwin:declined"), True),
    "a human closes a request": (issue_event("closed", [REQUEST]), True),
    "another label on a request": (issue_event("labeled", [REQUEST, "bug"], "bug"), False),
    "approved on an unrelated issue": (
        issue_event("labeled", ["darwin:approved"], "darwin:approved"), False),
    "an unrelated issue closed": (issue_event("closed", ["bug"]), False),
    "the bot labels its own request": (
        issue_event("labeled", [REQUEST, "darwin:approved"], "darwin:approved",
                    actor="github-actions[bot]", sender="Bot"), False),
    "an App bot closes a request": (
        issue_event("closed", [REQUEST], actor="darwin-app[bot]", sender="Bot"), False),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_only_generations_join_the_generation_group(darwin: dict[str, Any], name: str) -> None:
    """The group expression and propose's `if` agree on every kind of event."""
    ctx, runs = EVENTS[name]
    group = evaluate(darwin["concurrency"]["group"], ctx)
    assert truthy(evaluate(darwin["jobs"]["propose"]["if"], ctx)) is runs, name
    if runs:
        assert group == GENERATION_GROUP
    else:
        # A group of its own (its run id): it cannot wait behind, nor displace, a generation.
        assert group == f"darwin-skip-{ctx['github']['run_id']}"
        other = dict(ctx, github={**ctx["github"], "run_id": 8})
        assert evaluate(darwin["concurrency"]["group"], other) != group


def test_concurrency_and_the_chain_cannot_drop_a_generation(darwin: dict[str, Any]) -> None:
    """Reasoned from the file: every run that joins the group runs, in order, and the chain
    always hands on to a run that joins it.

    1. A pending run is cancelled only by `cancel-in-progress` (off) or, with the default
       `queue: single`, by a newer pending run; `queue: max` keeps up to 100 pending.
    2. Only generations join the group (test above), so issue traffic cannot fill it.
    3. The chain keeps at most one run pending: select dispatches one run, once, at its end.
    4. That run is a dispatch on the default branch, which (2) puts in the group.
    """
    conc = darwin["concurrency"]
    assert conc["cancel-in-progress"] is False
    assert conc["queue"] == "max"
    assert all("concurrency" not in job for job in darwin["jobs"].values())

    dispatchers = [
        (name, step)
        for name, job in darwin["jobs"].items()
        for step in job["steps"]
        if "gh workflow run" in step.get("run", "")
    ]
    assert [name for name, _ in dispatchers] == ["select"], "one dispatch, in select"
    ((_, step),) = dispatchers
    steps = darwin["jobs"]["select"]["steps"]
    at = steps.index(step)
    assert steps[at - 1].get("id") == "select", "dispatch right after the select step"
    assert step["run"].count("gh workflow run") == 1
    # The dispatch goes to the default branch: the new run joins the generation group.
    assert step["env"]["REF"] == "${{ needs.propose.outputs.default-branch }}"
    chained = event("workflow_dispatch", run_id=99, ref="refs/heads/main")
    assert evaluate(darwin["concurrency"]["group"], chained) == GENERATION_GROUP
    # It fires for every chained run but the last, and never for other events.
    for remaining, fires in ((3, True), (2, True), (1, False)):
        ctx = event("workflow_dispatch")
        ctx["inputs"]["generations"] = remaining
        assert truthy(evaluate(step["if"], ctx)) is fires
    assert not truthy(evaluate(step["if"], event("schedule")))
    # A GITHUB_TOKEN may start a run by dispatch only (docs: "events triggered by the
    # GITHUB_TOKEN, with the exception of workflow_dispatch and repository_dispatch,
    # will not create a new workflow run"), which needs actions: write.
    assert step["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert permissions(darwin["jobs"]["select"])["actions"] == WRITE


# ----------------------------------------------------------------------------- pins


# What each pin was when it was made: `git rev-parse <tag>` in a fetch of the action's
# repository. Dependabot moves SHA and comment together; this test then wants both here too.
PINNED = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/setup-node": ("820762786026740c76f36085b0efc47a31fe5020", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/download-artifact": ("3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c", "v8.0.1"),
    "actions/create-github-app-token": ("1b10c78c7865c340bc4f6099eb2f838309f1e8c3", "v3.1.1"),
    "actions/cache": ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
}
_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")


def uses_lines(path: Path) -> list[tuple[str, str]]:
    """(``owner/repo@ref``, what follows it on the line) for every `uses:` in the file."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _USES.match(line)
        if m and not m.group("ref").startswith("./"):
            found.append((m.group("ref"), m.group("rest").strip()))
    return found


@pytest.mark.parametrize("path", [*sorted(WORKFLOWS.glob("*.yml")), ACTION], ids=lambda p: p.name)
def test_third_party_actions_are_pinned_to_a_commit_with_its_version(path: Path) -> None:
    """Organisations can require SHA pins; a tag can be moved, a commit cannot."""
    lines = uses_lines(path)
    assert lines, path.name
    for ref, rest in lines:
        action, _, sha = ref.partition("@")
        assert action in PINNED, f"{path.name}: {action} is not a known, pinned action"
        want_sha, version = PINNED[action]
        assert re.fullmatch(r"[0-9a-f]{40}", sha), f"{path.name}: {ref} is not pinned to a SHA"
        assert (sha, rest) == (want_sha, f"# {version}"), f"{path.name}: {ref} {rest}"
    # Every pin the parsed YAML sees is one of the lines checked above.
    parsed = {t for t in texts(load(path)) if re.fullmatch(r"[\w.-]+/[\w.-]+@\S+", t)}
    assert parsed == {ref for ref, _ in lines}


def test_dependabot_updates_the_pinned_actions() -> None:
    config = load(DEPENDABOT)
    assert config["version"] == 2
    (update,) = [u for u in config["updates"] if u["package-ecosystem"] == "github-actions"]
    assert update["directory"] == "/"  # .github/workflows and the root action.yml
    assert update["schedule"]["interval"] in ("daily", "weekly")


def test_ci_evaluates_in_bubblewrap_or_not_at_all(
    darwin: dict[str, Any], action: dict[str, Any]
) -> None:
    """`--sandbox bwrap` (no fallback to a weaker backend) unless an input says otherwise."""
    assert action["inputs"]["sandbox"]["default"] == "bwrap"
    evaluate_step = next(s for s in action["runs"]["steps"] if s.get("id") == "evaluate")
    assert '--sandbox "$SANDBOX"' in evaluate_step["run"]
    for name in ("evaluate", "reevaluate"):
        (step,) = [s for s in darwin["jobs"][name]["steps"] if is_darwin_step(s)]
        assert step["with"]["sandbox"] == "bwrap", name


# ----------------------------------------------------------------------------- tokens


APP_STEP = "app"
TOKEN = "${{ steps.app.outputs.token || secrets.GITHUB_TOKEN }}"


def test_app_token_is_optional_and_scoped_to_the_jobs_permissions(darwin: dict[str, Any]) -> None:
    """With an App, its token replaces the GITHUB_TOKEN: the same permissions, no more."""
    for name, job in darwin["jobs"].items():
        apps = [s for s in job["steps"] if s.get("id") == APP_STEP]
        if is_self_hosted(job) or WRITE not in permissions(job).values():
            # The GPU runner, and the read-only corpus job: nothing to write with.
            assert apps == [], f"{name}: an App token in a job that writes nothing"
            continue
        (app,) = apps
        assert app["if"] == "vars.DARWIN_APP_ID != ''"
        assert str(app["uses"]).startswith("actions/create-github-app-token@")
        scoped = {
            k.removeprefix("permission-"): v
            for k, v in app["with"].items()
            if k.startswith("permission-")
        }
        # actions: write is for the dispatch, which uses the GITHUB_TOKEN (see select).
        wanted = {k: v for k, v in permissions(job).items() if k != "actions"}
        assert scoped == wanted, name
        steps = job["steps"]
        repo = next(s for s in steps if is_checkout(s) and s["with"].get("path") == "repo")
        assert steps.index(app) < steps.index(repo)
        assert repo["with"]["token"] == TOKEN, f"{name}: the push uses the same token"
        (darwin_step,) = [s for s in steps if is_darwin_step(s)]
        assert darwin_step["with"]["github-token"] == TOKEN


def _identity(job: dict[str, Any], app_slug: str, tmp_path: Path) -> tuple[str, str]:
    """Run the job's git-identity step with bash in a scratch repository, the App's token
    given an ``app_slug`` (or none): the (user.name, user.email) it sets."""
    (step,) = [s for s in job["steps"] if "git config user.name" in s.get("run", "")]
    app = {"outputs": {"app-slug": app_slug, "token": "ghs_app"}} if app_slug else {}
    ctx = {"steps": {APP_STEP: app}, "secrets": {"GITHUB_TOKEN": "ghs_job"}}
    env = {k: str(evaluate(str(v), ctx)) for k, v in step["env"].items()}
    fake = tmp_path / "bin"
    fake.mkdir(parents=True)
    # gh as GitHub answers GET /users/{login}: the App's bot user, by its id.
    (fake / "gh").write_text(
        '#!/bin/sh\n[ "$*" = "api users/$BOT_LOGIN --jq .id" ] && [ "$GH_TOKEN" = ghs_app ]'
        " && echo 1234567\n",
        encoding="utf-8",
    )
    (fake / "gh").chmod(0o755)
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, timeout=30)
    path = f"{fake}:{os.environ['PATH']}"
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", step["run"]],
        cwd=repo, env={**env, "PATH": path, "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr

    def get(key: str) -> str:
        cmd = ["git", "config", "--local", key]
        return subprocess.run(cmd, cwd=repo, capture_output=True, text=True).stdout.strip()

    return get("user.name"), get("user.email")


@pytest.mark.parametrize("name", ["propose", "repair", "select"])
def test_commits_name_the_account_that_pushes_them(
    darwin: dict[str, Any], name: str, tmp_path: Path
) -> None:
    """The App's bot when its token pushes (the bot-login the darwin step gets), else
    github-actions[bot]; each with the noreply address GitHub links to that account."""
    job = darwin["jobs"][name]
    steps = job["steps"]
    (step,) = [s for s in steps if "git config user.name" in s.get("run", "")]
    (app,) = [s for s in steps if s.get("id") == APP_STEP]
    (darwin_step,) = [s for s in steps if is_darwin_step(s)]
    assert steps.index(app) < steps.index(step) < steps.index(darwin_step)
    assert "github-actions[bot]" not in step["run"].split("git config")[-1]
    login = darwin_step["with"]["bot-login"].removesuffix(" || '' }}")
    assert step["env"]["BOT_LOGIN"] == f"{login} || 'github-actions[bot]' }}}}"
    assert step["env"]["GH_TOKEN"] == TOKEN
    assert _identity(job, "darwin-app", tmp_path / "app") == (
        "darwin-app[bot]", "1234567+darwin-app[bot]@users.noreply.github.com",
    )  # fmt: skip
    assert _identity(job, "", tmp_path / "job") == (
        "github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com",
    )  # fmt: skip


def test_jobs_with_a_write_token_install_only_through_the_action(darwin: dict[str, Any]) -> None:
    """The action's install is the one pinned by .github/constraints.txt (test_workflows.py):
    no job that can write installs anything on its own."""
    writers = [n for n, j in darwin["jobs"].items() if WRITE in permissions(j).values()]
    assert set(writers) == {"propose", "repair", "select"}
    for name in writers:
        for step in darwin["jobs"][name]["steps"]:
            run = step.get("run", "")
            assert not re.search(r"\b(pip|pip3|uv|pipx|conda|poetry)\b", run), f"{name}: {run}"
        assert any(is_darwin_step(s) for s in darwin["jobs"][name]["steps"]), name


def test_downloads_fail_loudly(darwin: dict[str, Any]) -> None:
    for name, job in darwin["jobs"].items():
        for step in job["steps"]:
            assert "continue-on-error" not in step, f"{name}: {step.get('name')}"
    assert all("continue-on-error" not in job for job in darwin["jobs"].values())


def test_select_may_set_the_fitness_status(darwin: dict[str, Any]) -> None:
    # POST /repos/{o}/{r}/statuses/{sha} needs statuses: write (tests/forge/permissions.py).
    assert permissions(darwin["jobs"]["select"])["statuses"] == WRITE


# ----------------------------------------------------------------------------- the GPU runner


def run_hook(
    tmp_path: Path, payload: dict[str, Any] | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """The hook as the runner starts it; ``payload``: the event file (a dispatch's by default)."""
    path = tmp_path / "event.json"
    body = payload if payload is not None else github_events.workflow_dispatch()
    path.write_text(json.dumps(body), encoding="utf-8")
    base = {
        "PATH": os.environ["PATH"],
        "DARWIN_RUNNER_REPOSITORY": "octo/evo",
        "GITHUB_REPOSITORY": "octo/evo",
        "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_EVENT_PATH": str(path),
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_WORKFLOW_REF": "octo/evo/.github/workflows/darwin.yml@refs/heads/main",
    }
    base.update(env)
    return subprocess.run(
        ["bash", "-e", str(RUNNER_HOOK)], env=base, capture_output=True, text=True, timeout=30
    )


HOOK_EVENTS = {
    "workflow_dispatch": github_events.workflow_dispatch(),
    "schedule": github_events.schedule(),  # no `repository` in a schedule's payload
    "issues": github_events.issues("labeled", ["darwin:request", "darwin:approved"],
                                   "darwin:approved"),
}  # fmt: skip


@pytest.mark.parametrize("event_name", sorted(HOOK_EVENTS))
def test_runner_hook_accepts_darwin_on_the_default_branch(tmp_path: Path, event_name: str) -> None:
    proc = run_hook(tmp_path, HOOK_EVENTS[event_name], GITHUB_EVENT_NAME=event_name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "accepted" in proc.stdout


def test_runner_hook_takes_the_default_branch_from_the_runner_first(tmp_path: Path) -> None:
    """DARWIN_RUNNER_DEFAULT_BRANCH, when set, is the authority for every event."""
    other = {"GITHUB_WORKFLOW_REF": "octo/evo/.github/workflows/darwin.yml@refs/heads/dev",
             "GITHUB_REF": "refs/heads/dev"}  # fmt: skip
    for name, payload in HOOK_EVENTS.items():
        env = {"GITHUB_EVENT_NAME": name, "DARWIN_RUNNER_DEFAULT_BRANCH": "main", **other}
        proc = run_hook(tmp_path, payload, **env)
        assert proc.returncode != 0 and "is not octo/evo" in proc.stdout, name
        proc = run_hook(tmp_path, payload, **{**env, "DARWIN_RUNNER_DEFAULT_BRANCH": "dev"})
        assert proc.returncode == 0, (name, proc.stdout)


def test_runner_hook_refuses_a_workflow_run_event(tmp_path: Path) -> None:
    """workflow_run runs with the base repository's rights on another run's outcome: never
    on this runner, even from darwin.yml on the default branch."""
    proc = run_hook(tmp_path, github_events.workflow_run(), GITHUB_EVENT_NAME="workflow_run")
    assert proc.returncode != 0 and "event workflow_run may not run" in proc.stdout


def test_runner_hook_refuses_a_payload_without_a_default_branch(tmp_path: Path) -> None:
    # A dispatch always names its repository; one that does not is not GitHub's.
    proc = run_hook(tmp_path, {"inputs": {}}, GITHUB_EVENT_NAME="workflow_dispatch")
    assert proc.returncode != 0 and "cannot tell the default branch" in proc.stdout


@pytest.mark.parametrize(
    ("env", "why"),
    [
        # A fork's PR runs its own workflow files from the merge ref.
        (
            {"GITHUB_EVENT_NAME": "pull_request",
             "GITHUB_WORKFLOW_REF": "octo/evo/.github/workflows/evil.yml@refs/pull/3/merge"},
            "event pull_request",
        ),
        ({"GITHUB_EVENT_NAME": "pull_request_target"}, "event pull_request_target"),
        (
            {"GITHUB_WORKFLOW_REF": "octo/evo/.github/workflows/darwin.yml@refs/heads/x"},
            "is not octo/evo/.github/workflows/darwin.yml@refs/heads/main",
        ),
        (
            {"GITHUB_WORKFLOW_REF": "octo/evo/.github/workflows/other.yml@refs/heads/main"},
            "is not octo/evo/.github/workflows/darwin.yml@refs/heads/main",
        ),
        ({"GITHUB_REPOSITORY": "mallory/evo"}, "repository mallory/evo is not octo/evo"),
        ({"DARWIN_RUNNER_REPOSITORY": ""}, "DARWIN_RUNNER_REPOSITORY is not set"),
    ],
)  # fmt: skip
def test_runner_hook_refuses_everything_else(tmp_path: Path, env: dict[str, str], why: str) -> None:
    proc = run_hook(tmp_path, **env)
    assert proc.returncode != 0
    assert (
        proc.stdout.startswith("::error title=darwin runner::refusing this job")
        and why in proc.stdout
    )


# ----------------------------------------------------------------------------- the corpus


CORPUS_ARTIFACT = "darwin-corpus-${{ github.run_id }}"
LEGS = ("evaluate", "reevaluate")


def _steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith(f"{action}@")]


def test_the_corpus_is_prepared_once_by_darwin_from_the_config(darwin: dict[str, Any]) -> None:
    """budget.data is read by `darwin data ensure` (the action's corpus command), never
    written into the workflow, and uploaded once per run for the legs."""
    jobs = darwin["jobs"]
    for name, job in jobs.items():
        assert not any("shakespeare" in t for t in texts(job)), f"{name} hard-codes the corpus"
    corpus = jobs["corpus"]
    assert permissions(corpus) == {"contents": "read"} and corpus["needs"] == "propose"
    assert not any("secrets." in t for t in texts(corpus))
    (step,) = [s for s in corpus["steps"] if is_darwin_step(s)]
    assert step["with"]["command"] == "corpus" and "data" not in step["with"]
    (upload,) = _steps_using(corpus, "actions/upload-artifact")
    assert corpus["steps"].index(step) < corpus["steps"].index(upload)
    assert upload["with"]["name"] == CORPUS_ARTIFACT
    assert upload["with"]["path"] == "${{ steps." + step["id"] + ".outputs.data }}"
    assert upload["with"]["overwrite"] is True
    assert upload["with"]["if-no-files-found"] == "error"
    # The results are downloaded by pattern: the corpus must not be taken for one.
    for pattern in ("eval-", "reeval-"):
        assert not CORPUS_ARTIFACT.startswith(pattern)


@pytest.mark.parametrize("leg", LEGS)
def test_every_leg_evaluates_on_the_prepared_artifact(darwin: dict[str, Any], leg: str) -> None:
    job = darwin["jobs"][leg]
    assert "corpus" in job["needs"], f"{leg} must wait for the corpus"
    assert "needs.corpus.result" in job["if"] or "!cancelled()" not in job["if"]
    (download,) = _steps_using(job, "actions/download-artifact")
    assert download["with"] == {"name": CORPUS_ARTIFACT, "path": "corpus"}
    (step,) = [s for s in job["steps"] if is_darwin_step(s)]
    assert job["steps"].index(download) < job["steps"].index(step)
    # Outside both checkouts: neither the agent's tree nor trusted/ supplies it.
    assert step["with"]["data"] == "${{ github.workspace }}/corpus"
    checkouts = {s["with"]["path"] for s in job["steps"] if is_checkout(s)}
    assert "corpus" not in checkouts and step["with"]["path"].endswith("/agent")


def test_the_action_leaves_the_corpus_to_the_corpus_step(action: dict[str, Any]) -> None:
    """A leg never downloads or prepares the corpus: only the corpus command does."""
    steps = {s.get("id"): s for s in action["runs"]["steps"]}
    assert '[ ! -f "$DATA/meta.json" ]' in steps["evaluate"]["run"]  # only an unprepared folder
    assert "args=(data ensure)" in steps["run"]["run"]
    assert action["outputs"]["data"]["value"] == "${{ steps.run.outputs.data }}"


def _ensure(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return subprocess.run(
        [sys.executable, "-m", "darwin_bot", "data", "ensure", "--config", "darwin.toml"],
        cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_darwin_data_ensure_reads_budget_data_and_sets_the_output(tmp_path: Path) -> None:
    from darwin_bot.program import prepare_synthetic

    (tmp_path / "darwin.toml").write_text('[budget]\ndata = "text/mine"\n', encoding="utf-8")
    folder = tmp_path / "text" / "mine"
    prepare_synthetic(folder, seed=0, tokens=4000)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    out = tmp_path / "github_output"
    proc = _ensure(tmp_path, GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(out))
    assert proc.returncode == 0, proc.stderr
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # left as it is
    record = out.read_text(encoding="utf-8").splitlines()
    assert record[0].startswith("data<<") and record[1] == str(folder.resolve())


def test_darwin_data_ensure_never_overwrites_an_incomplete_corpus(tmp_path: Path) -> None:
    (tmp_path / "darwin.toml").write_text('[budget]\ndata = "mine"\n', encoding="utf-8")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "train.bin").write_bytes(b"\0\0")
    proc = _ensure(tmp_path)
    assert proc.returncode == 2 and "mine" in proc.stderr and "empty folder" in proc.stderr
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["train.bin"]


# ----------------------------------------------------------------------------- config


def test_config_refuses_a_matrix_over_githubs_limit() -> None:
    from darwin_bot.config import MAX_MATRIX_JOBS, Config
    from darwin_bot.errors import ConfigError

    ok = Config().replace("evolution", population=64, survivors=2).replace("budget", repeats=4)
    assert ok.evolution.population * ok.budget.repeats == MAX_MATRIX_JOBS == 256
    with pytest.raises(ConfigError, match="256-job matrix limit"):
        ok.replace("budget", repeats=5)
