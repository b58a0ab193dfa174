"""The workflow's jobs, run in order on one machine, against the GitHub emulator.

``.github/workflows/darwin.yml`` runs a generation as jobs that share nothing
but git and artifacts: ``propose`` (fresh checkout, write token), one
``evaluate`` per matrix entry (a checkout of the agent's commit, no secrets,
darwin-bot from the trusted commit), then ``select`` (fresh checkout, the
result files). This module does the same with subprocesses: the git remote is
a bare repository on disk whose post-receive hook replays pushes on the
emulator (:mod:`origin_hook`), and the API is the emulator behind the fault
proxy. Generation 0 (the baseline) and generation 1 both go through the jobs.

Then: the PRs, statuses, comments and the dashboard agree with the memory
records; rerunning ``propose`` before ``select``, and ``select`` after it,
changes nothing on the forge or the remote; and the outcome equals ``darwin
run --generations 1`` on an identical repository with the local forge. To keep
the test in budget, that run starts with the evaluation cache the jobs
produced (cached by tree id and seed, so a tree it proposes differently would
still be trained): planning, mutation, smoke tests, selection and culling are
its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from forge_emulator import BOT_LOGIN, BOT_TOKEN, Emulator
from github import Auth, Github, GithubException
from mirror import Mirror
from origin_hook import errors as hook_errors
from origin_hook import install as install_hook
from origin_hook import protect
from permissions import job_permissions, unused_grants

from darwin_bot.cli import make_scratch_repo
from darwin_bot.forge import FITNESS_CONTEXT, GitHubForge, agent_marker_key, has_marker
from darwin_bot.git import GitRepo
from darwin_bot.program import prepare_synthetic
from darwin_bot.publish.dashboard import DASHBOARD_KEY, DASHBOARD_LABEL
from darwin_bot.publish.publisher import AGENT_LABEL
from darwin_bot.store import MemoryStore

# Two generations with real training, every job's requests checked by the proxy: more
# than the suite's default 300 s on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TOML = """\
[evolution]
population = 3
survivors = 2
seed = 7

[budget]
preset = "tiny"
iters = 6
repeats = 2
smoke_iters = 2
data = "data/corpus"
max_cost_ratio = 1000.0  # the cost limit is a wall time: the machine's load must not decide
                         # a ranking that two runs compare (seen: over_budget in one arm only)

[fitness]
mfu_weight = 0.0   # timing noise must not decide a ranking that two runs compare

[llm]
backend = "heuristic"

[sandbox]
timeout_s = 120.0
smoke_timeout_s = 90.0

[forge]
{forge}
"""

SECRETS = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "OPENAI_API_KEY",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)
STEP_TIMEOUT_S = 240
DARWIN_YML = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "darwin.yml"


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60
    )
    return out.stdout.strip()


def clean_env() -> dict[str, str]:
    """This process's environment without any token or GitHub/darwin setting."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SECRETS and not k.startswith(("GITHUB_", "DARWIN_", "OPENAI_"))
    }
    env["DARWIN_THREADS"] = "1"  # the same torch threads in every job: comparable numbers
    # One window secret for every job and for the local run they are compared with: each
    # evaluation would otherwise draw its own secret windows, and the numbers would differ.
    env["DARWIN_WINDOW_SECRET"] = "the-same-windows-for-every-job-of-this-test"
    return env


def read_outputs(path: Path) -> dict[str, str]:
    """Parse a ``$GITHUB_OUTPUT`` file (heredoc records)."""
    out: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        name, _, delimiter = lines[i].partition("<<")
        end = lines.index(delimiter, i + 1)
        out[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return out


@dataclass
class Workflow:
    """The jobs of darwin.yml as subprocesses over a bare origin and the emulator."""

    base: Path
    origin: Path
    api_url: str
    repository: str
    corpus: Path
    emulator: Emulator | None = None
    workflow: Path = DARWIN_YML  # whose jobs' `permissions:` the tokens get
    jobs: int = 0
    log: list[str] = field(default_factory=list)

    def checkout(self, name: str, ref: str = "main") -> Path:
        """A fresh clone, as actions/checkout makes one per job."""
        self.jobs += 1
        dest = self.base / "jobs" / f"{self.jobs:02d}-{name}"
        git(self.base, "clone", "-q", str(self.origin), str(dest))
        git(dest, "config", "user.name", "github-actions[bot]")
        git(dest, "config", "user.email", "bot@example.com")
        if ref != "main":
            git(dest, "checkout", "-q", "--detach", ref)
        return dest

    def command(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "darwin_bot", *args]

    def token(self, job: str) -> str:
        """The job's GITHUB_TOKEN: the proxy gives it exactly the job's declared permissions."""
        assert self.emulator is not None
        return self.emulator.proxy.grant(job, job_permissions(self.workflow, job))

    def attempt(
        self,
        args: list[str],
        cwd: Path,
        *,
        secrets: bool,
        job: str = "",
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """One ``darwin`` step of ``job`` as it ran, failed or not (``env``: more variables)."""
        full = clean_env()
        full["GITHUB_OUTPUT"] = str(cwd.parent / f"{cwd.name}.outputs")
        if secrets:
            full.update(
                GITHUB_TOKEN=self.token(job or args[0]),
                GITHUB_API_URL=self.api_url,
                GITHUB_REPOSITORY=self.repository,
                DARWIN_GITHUB_THROTTLE="0",  # loopback emulator: no need to space requests
                # Who the job's token writes as (github-actions[bot] on GitHub): the workflow
                # passes it, since an installation token may not ask GET /user.
                DARWIN_BOT_LOGIN=BOT_LOGIN,
            )
        full.update(env or {})
        proc = subprocess.run(
            self.command(args),
            cwd=cwd,
            env=full,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
        )
        self.log.append(f"$ darwin {' '.join(args)}\n{proc.stderr[-2000:]}")
        return proc

    def run(self, args: list[str], cwd: Path, *, secrets: bool, job: str = "") -> dict[str, str]:
        """One ``darwin`` step of ``job``; returns its outputs. ``secrets``: the token is given."""
        proc = self.attempt(args, cwd, secrets=secrets, job=job)
        refused = [e for e in self.emulator.proxy.job_log if e[3] == 403] if self.emulator else []
        assert proc.returncode == 0, (
            f"darwin {args[0]} failed:\n{proc.stdout}\n{proc.stderr}\nrefused: {refused}"
        )
        assert not hook_errors(self.origin), hook_errors(self.origin)
        return read_outputs(cwd.parent / f"{cwd.name}.outputs")

    def propose(self) -> tuple[int, list[dict[str, Any]], str]:
        repo = self.checkout("propose")
        trusted_sha = git(repo, "rev-parse", "HEAD")  # the workflow pins it before the step
        out = self.run(["propose", "--repo", str(repo)], repo, secrets=True)
        return int(out["generation"]), json.loads(out["agents"]), trusted_sha

    def evaluate(self, job: dict[str, Any], trusted_sha: str, results: Path) -> Path:
        trusted = self.checkout("trusted", trusted_sha)
        agent = self.checkout(f"agent-{job['agent']}", job["head"])
        out = results / f"result-{job['agent']}-{job['seed']}.json"
        self.run(
            [
                "evaluate", str(agent), "--branch", job["branch"], "--out", str(out),
                "--seed", str(job["seed"]), "--generation", str(job["generation"]),
                "--data", str(self.corpus), "--config", "darwin.toml",
                # the runner's disk, as darwin.yml's keep-graphs: the seed is scored again
                "--keep-graphs", str(self.base / "runner-graphs"),
            ],
            trusted,
            secrets=False,
        )  # fmt: skip
        data = json.loads(out.read_text())
        assert data["extra"]["head"] == job["head"] and data["extra"]["agent"] == job["agent"]
        return out

    def repair(self, results: Path) -> list[dict[str, Any]]:
        """The repair job: its output is the re-evaluations (repaired offspring, the leader's repeats)."""
        repo = self.checkout("repair")
        out = self.run(
            ["repair", "--repo", str(repo), "--results", str(results)], repo, secrets=True
        )
        return json.loads(out["agents"])

    def evaluate_all(self, jobs: list[dict[str, Any]], trusted_sha: str, results: Path) -> None:
        """The evaluate matrix, then repair and the reevaluate matrix, as darwin.yml runs them."""
        for job in jobs:
            self.evaluate(job, trusted_sha, results)
        for job in self.repair(results):
            self.evaluate(job, trusted_sha, results)

    def select(self, results: Path) -> dict[str, str]:
        repo = self.checkout("select")
        return self.run(
            ["select", "--repo", str(repo), "--results", str(results)], repo, secrets=True
        )

    def generation(self) -> int:
        g, jobs, trusted_sha = self.propose()
        results = self.base / f"results-g{g}"
        results.mkdir()
        self.evaluate_all(jobs, trusted_sha, results)
        self.select(results)
        return g


def add_written_workflow(repo: Path) -> Path:
    """``darwin init --github`` as a user runs it; its workflow committed in ``repo``."""
    scratch = repo.parent / "init"
    scratch.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "darwin_bot", "init", "--github"],
        cwd=scratch, env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    target = repo / ".github" / "workflows" / "darwin.yml"
    target.parent.mkdir(parents=True)
    shutil.copy(scratch / ".github" / "workflows" / "darwin.yml", target)
    text = target.read_text(encoding="utf-8")
    assert "./trusted" not in text and "uses: darwin-bot/darwin-bot@v1" in text
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=a", "-c", "user.email=a@example.com", "commit", "-qm", "darwin")
    return target


def snapshot(forge: GitHubForge, gh_repo: Any, origin: Path) -> dict[str, Any]:
    """Everything a rerun must leave as it is: PRs, comments, statuses, issues, refs."""
    prs = forge.list_prs(state="all")
    return {
        "prs": [
            (p.number, p.branch, p.state, p.title, p.body, p.labels, p.head_sha, p.draft)
            for p in prs
        ],
        "pr_comments": {p.number: [c.body for c in forge.list_comments(p.number)] for p in prs},
        "statuses": {p.head_sha: forge.get_statuses(p.head_sha) for p in prs},
        "issues": [
            (i.number, i.state, i.title, i.body, i.labels, [c.body for c in i.comments])
            for i in forge.list_issues(state="all")
        ],
        "emulator_refs": sorted((b.name, b.commit.sha) for b in gh_repo.get_branches()),
        "origin_refs": git(origin, "for-each-ref", "--format=%(refname) %(objectname)"),
    }


@pytest.fixture(scope="module")
def ci(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("ci")
    name = f"gen-{base.name}".replace("_", "-")
    repository = emulator.new_repo(name)
    assert repository == f"{BOT_LOGIN}/{name}"
    seed_repo = base / "seed-repo"
    make_scratch_repo(seed_repo, TOML.format(forge=f'kind = "github"\nrepository = "{repository}"'))
    # A stranger's repository: the workflow is the one `darwin init --github` writes (the
    # released action by reference), and each job's token has that file's permissions.
    written = add_written_workflow(seed_repo)
    origin = base / "origin.git"
    git(base, "clone", "-q", "--bare", str(seed_repo), str(origin))
    Mirror(emulator.api_url, BOT_TOKEN, repository, origin).push("main")
    install_hook(origin, emulator.api_url, BOT_TOKEN, repository)
    # The default branch is protected, as a team's usually is: every step must get by
    # with pushes under the prefix (agents, and the memory on darwin/memory).
    protect(origin, "main")
    main_before = git(origin, "rev-parse", "main")
    corpus = base / "corpus"
    prepare_synthetic(corpus, seed=0, tokens=60_000)
    emulator.proxy.serve_statuses()  # GitHub has commit statuses; the emulator does not
    flow = Workflow(base, origin, emulator.api_url, repository, corpus, emulator, written)

    assert flow.generation() == 0
    g, jobs, trusted_sha = flow.propose()
    assert g == 1 and jobs, "generation 1 proposes offspring to evaluate"
    forge = GitHubForge(
        repository, BOT_TOKEN, base_url=emulator.api_url,
        seconds_between_requests=0, seconds_between_writes=0,
    )  # fmt: skip
    gh = Github(
        auth=Auth.Token(BOT_TOKEN), base_url=emulator.api_url, retry=None,
        seconds_between_requests=None, seconds_between_writes=None,
    ).get_repo(repository)  # fmt: skip
    proposed = snapshot(forge, gh, origin)
    g_again, jobs_again, _ = flow.propose()  # a rerun of the propose job
    reproposed = snapshot(forge, gh, origin)

    results = base / "results-g1"
    results.mkdir()
    flow.evaluate_all(jobs, trusted_sha, results)
    flow.select(results)
    selected = snapshot(forge, gh, origin)
    flow.select(results)  # a rerun of the select job
    reselected = snapshot(forge, gh, origin)

    final = flow.checkout("inspect")
    git(final, "fetch", "-q", "origin", "+refs/heads/darwin/*:refs/heads/darwin/*",
        "+refs/darwin/archive/*:refs/darwin/archive/*")  # fmt: skip
    assert GitRepo(final).restore_memory("memory"), "the memory branch exists on origin"
    assert git(origin, "rev-parse", "main") == main_before, "nothing was pushed to main"
    return {
        "job_log": list(emulator.proxy.job_log),
        "flow": flow, "forge": forge, "gh": gh, "origin": origin, "root": final,
        "seed_repo": seed_repo, "jobs": jobs, "jobs_again": (g_again, jobs_again),
        "proposed": proposed, "reproposed": reproposed,
        "selected": selected, "reselected": reselected,
    }  # fmt: skip


def test_every_leg_of_a_generation_is_scored_on_its_windows_and_the_seed_again(ci) -> None:
    """The legs are paired (one generation's windows), and generation 1 scores the seed
    again on its windows from the graph generation 0's legs kept (no second training)."""
    jobs = ci["jobs"]
    assert {j["generation"] for j in jobs} == {1}
    by_agent: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((ci["flow"].base / "results-g1").rglob("*.json")):
        result = json.loads(path.read_text())
        by_agent.setdefault(result["extra"]["agent"], []).append(result)
    assert sorted(r["seed"] for r in by_agent["seed"]) == [7, 8], "the seed is measured again"
    scored = {r["extra"].get("windows") for rs in by_agent.values() for r in rs if r["metrics"]}
    assert len(scored) == 1 and scored.pop().endswith("-g1"), "every leg on the same windows"
    assert all(r["extra"].get("rescored") for r in by_agent["seed"]), "scored, not trained"
    assert all(r["extra"].get("curve", {}).get("points") for r in by_agent["seed"]), "its curve"


def _memory(root: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    summary = next(s for s in MemoryStore(root / "memory").generations() if s["generation"] == 1)
    records = {
        p.stem: json.loads(p.read_text())
        for p in sorted((root / "memory" / "g001" / "offspring").glob("*.json"))
    }
    return summary, records


def _emulator_has(gh: Any, branch: str) -> bool:
    try:
        gh.get_git_ref(f"heads/{branch}")
    except GithubException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_reruns_of_propose_and_select_change_nothing(ci: dict[str, Any]) -> None:
    assert ci["jobs_again"] == (1, ci["jobs"])
    assert ci["reproposed"] == ci["proposed"]
    assert ci["reselected"] == ci["selected"]
    assert len(ci["selected"]["prs"]) == len(ci["proposed"]["prs"]) > 0


def test_forge_matches_the_memory_records(ci: dict[str, Any]) -> None:
    root, forge, gh, origin = ci["root"], ci["forge"], ci["gh"], ci["origin"]
    summary, records = _memory(root)
    rows = {r["agent"]: r for r in summary["ranking"]}
    prs = {p.branch: p for p in forge.list_prs(state="all")}
    repo = GitRepo(root, remote="origin")
    on_origin = set(repo.remote_branches())
    ok = [a for a, rec in records.items() if rec["status"] == "ok"]
    assert ok, "at least one offspring passed its mutation checks"
    # population 3, survivors 2: one agent is culled (the seed too may be, when both
    # offspring beat it: which one depends on the training runs, not on the forge)
    assert len(summary["culled"]) == 1 and set(summary["culled"]) <= set(ok) | {"seed"}

    for agent in ok:
        rec, row, branch = records[agent], rows[agent], repo.branch(agent)
        pr = prs[branch]
        assert has_marker(pr.body, agent_marker_key(branch))
        assert pr.labels == (AGENT_LABEL,), "one label: no new label per generation"
        assert pr.head_sha == rec["head"]
        expected = "success" if row["status"] == "ok" else "failure"
        statuses = {s.context: s for s in forge.get_statuses(rec["head"])}
        assert statuses[FITNESS_CONTEXT].state == expected
        if row["status"] == "ok":
            assert (
                f"rank {row['rank']}/{len(summary['ranking'])}"
                in statuses[FITNESS_CONTEXT].description
            )
        comments = [c.body for c in forge.list_comments(pr.number)]
        if agent in summary["culled"]:
            assert pr.state == "closed"
            assert any("Culled in generation 1" in c for c in comments), comments
            assert branch not in on_origin and not _emulator_has(gh, branch)
            archived = git(origin, "rev-parse", f"refs/darwin/archive/{agent}")
            assert archived == rec["head"], "the culled head is archived on origin"
        else:
            assert agent in summary["survivors"]
            assert pr.state == "open" and not comments
            assert branch in on_origin and _emulator_has(gh, branch)
            assert f"rank {row['rank']}" in pr.body, "the survivor's PR shows its metrics"
    # One PR per offspring, none for the seed (it is the default branch's program).
    assert sorted(prs) == sorted(repo.branch(a) for a in ok)
    assert repo.branch("seed") in on_origin

    dashboard = forge.find_issue(DASHBOARD_KEY, DASHBOARD_LABEL)
    assert dashboard is not None and dashboard.state == "open"
    assert "Generation 1" in dashboard.body
    for agent in rows:
        assert f"{agent}" in dashboard.body
    # Memory is committed on its own branch, generation 0 and 1 alike; main is as it was.
    tracked = git(origin, "ls-tree", "-r", "--name-only", "darwin/memory")
    assert "memory/g000/summary.json" in tracked and "memory/g001/summary.json" in tracked
    assert all(path.startswith("memory/") for path in tracked.splitlines())
    assert "memory/" not in git(origin, "ls-tree", "-r", "--name-only", "main")


def test_every_job_ran_with_exactly_its_declared_token(ci: dict[str, Any]) -> None:
    """Each step's requests went through the proxy with its job's `permissions:` from
    darwin.yml: none was refused, and each REST permission a job declares was needed."""
    log = ci["job_log"]
    refused = [entry for entry in log if entry[3] == 403]
    assert not refused, refused
    assert {job for job, *_ in log} == {"propose", "select"}  # this flow has no repair
    for job in ("propose", "select"):
        assert unused_grants(log, ci["flow"].workflow, job) == [], job
        assert job_permissions(ci["flow"].workflow, job) == job_permissions(DARWIN_YML, job)


def _state(root: Path) -> dict[str, Any]:
    """What two evolutions with the same seed must share (no timings, no commit shas)."""
    repo = GitRepo(root)
    memory = MemoryStore(root / "memory")
    return {
        "branches": {a: repo.tree_id(repo.branch(a), ["seed/"]) for a in repo.agents()},
        "archived": sorted(
            (a, repo.tree_id(repo.archived(a), ["seed/"]))
            for g in memory.generations()
            for a in g["culled"]
        ),
        "generations": [
            {
                "generation": s["generation"],
                "survivors": s["survivors"],
                "culled": s["culled"],
                "champion": s["champion"],
                "ranking": [
                    (r["agent"], r["status"], r["parents"], round(r["perplexity"] or 0.0, 6))
                    for r in s["ranking"]
                ],
            }
            for s in memory.generations()
        ],
        "mutations": sorted(
            (m["id"], m["summary"], m["outcome"], m["file"], m["chunk"]) for m in memory.mutations()
        ),
    }


def test_the_jobs_end_where_darwin_run_ends(ci: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "repo"
    make_scratch_repo(root, TOML.format(forge='kind = "local"'))
    prepare_synthetic(root / "data" / "corpus", seed=0, tokens=60_000)
    shutil.copytree(ci["root"] / "memory" / "evals", root / "memory" / "evals")
    proc = subprocess.run(
        [sys.executable, "-m", "darwin_bot", "run", "--repo", str(root), "-g", "1", "--workers", "1"],
        env=clean_env(), capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ci_state = _state(ci["root"])
    assert ci_state["generations"][-1]["ranking"], "the jobs ranked generation 1"
    assert json.dumps(_state(root), sort_keys=True) == json.dumps(ci_state, sort_keys=True)


# -- the evaluate job fails closed ------------------------------------------------------------


@pytest.fixture(scope="module")
def tampered(tmp_path_factory: pytest.TempPathFactory) -> Workflow:
    """An origin whose agent branches change protected paths (no emulator needed)."""
    base = tmp_path_factory.mktemp("tampered")
    seed_repo = base / "seed-repo"
    make_scratch_repo(seed_repo, TOML.format(forge='kind = "local"'))
    origin = base / "origin.git"
    git(base, "clone", "-q", "--bare", str(seed_repo), str(origin))
    corpus = base / "corpus"
    prepare_synthetic(corpus, seed=0, tokens=20_000)
    flow = Workflow(base, origin, "", "", corpus)
    work = flow.checkout("attacker")
    for branch, path in TAMPERED.items():
        git(work, "switch", "-q", "-c", branch, "main")
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("# changed by the agent branch\n", encoding="utf-8")
        (work / "seed" / "train.py").write_text("raise SystemExit('agent code ran')\n")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"change {path}")
        git(work, "push", "-q", "origin", branch)
    return flow


TAMPERED = {
    "darwin/g001-000": "darwin_bot/engine.py",
    "darwin/g001-001": ".github/workflows/darwin.yml",
    "darwin/g001-002": "action.yml",
}


def _job(flow: Workflow, branch: str) -> dict[str, Any]:
    head = git(flow.origin, "rev-parse", f"refs/heads/{branch}")
    return {"agent": branch.split("/", 1)[1], "branch": branch, "head": head, "seed": 7,
            "generation": 1}  # fmt: skip


@pytest.mark.parametrize("branch", sorted(TAMPERED))
def test_evaluate_rejects_a_branch_that_changes_protected_paths(
    tampered: Workflow, branch: str, tmp_path: Path
) -> None:
    job = _job(tampered, branch)
    trusted = git(tampered.origin, "rev-parse", "main")
    out = json.loads(tampered.evaluate(job, trusted, tmp_path).read_text())
    assert out["status"] == "rejected"
    assert TAMPERED[branch] in out["reason"]
    assert out["metrics"] is None and "agent code ran" not in out["log_tail"]


def test_evaluate_rejects_a_checkout_it_cannot_verify(tampered: Workflow, tmp_path: Path) -> None:
    # A shallow clone (actions/checkout's default depth) has no merge base to diff against.
    shallow = tmp_path / "agent"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{tampered.origin}", str(shallow))
    trusted = tampered.checkout("trusted")
    out = tmp_path / "result.json"
    tampered.run(
        ["evaluate", str(shallow), "--branch", "darwin/seed", "--out", str(out), "--seed", "7",
         "--data", str(tampered.corpus), "--config", "darwin.toml"],
        trusted,
        secrets=False,
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["status"] == "rejected" and "shallow" in result["reason"]


@pytest.mark.parametrize("secret", ["GITHUB_TOKEN", "OPENAI_API_KEY"])
def test_evaluate_refuses_to_run_with_a_secret_in_its_environment(
    tampered: Workflow, secret: str, tmp_path: Path
) -> None:
    trusted = tampered.checkout("trusted")
    agent = tampered.checkout("agent")
    out = tmp_path / "result.json"
    args = ["evaluate", str(agent), "--branch", "darwin/seed", "--out", str(out), "--seed", "7",
            "--data", str(tampered.corpus), "--config", "darwin.toml"]  # fmt: skip
    command = tampered.command(args)
    proc = subprocess.run(
        command, cwd=trusted, env={**clean_env(), secret: "x"},
        capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
    )  # fmt: skip
    assert proc.returncode == 2
    assert secret in proc.stderr and "refusing" in proc.stderr
    assert not out.exists()
