"""Automerge as GitHub runs it: the champion is merged through the API while main is protected.

The CI jobs run as in :mod:`test_generation_github` (each with its own job's
token, the origin refusing pushes to ``main``), but the evaluations are result
files written here, so the test needs no training and the statistical gate
passes by construction: the "winner" is far better than the baseline over
every repeat. When the proxy sees GitHub merge a PR, the merge commit is
copied into the bare origin as GitHub's own git side would hold it
(:class:`mirror.Pull`); then select must still succeed (the step pushes only
under the prefix), the merge must be in main's history, and the next
generation must start from it.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from forge_emulator import BOT_TOKEN, Emulator, Fault
from github import GithubException
from mirror import Mirror, Pull
from origin_hook import install as install_hook
from origin_hook import protect
from permissions import unused_grants
from test_generation_github import DARWIN_YML, TOML, Workflow, clean_env, git

from darwin_bot.cli import make_scratch_repo
from darwin_bot.core import Budget, EvalResult, Metrics, Status
from darwin_bot.evaluate import EVALUATOR_VERSION, windows
from darwin_bot.forge import GitHubForge
from darwin_bot.store import MemoryStore

pytestmark = pytest.mark.slow

AUTOMERGE_TOML = TOML.format(forge="{forge}\nautomerge = true")
BASELINE_PPL = 20.0
WINNER_PPL = 8.0
LOSER_PPL = 30.0
SECRET = clean_env()["DARWIN_WINDOW_SECRET"]  # what every job of the flow is given


def fake_result(job: dict[str, Any], ppl: float) -> dict[str, Any]:
    """What `darwin evaluate` writes for ``job`` had it measured perplexity ``ppl``."""
    metrics = Metrics(
        val_loss=math.log(ppl), perplexity=ppl, mfu=0.01, tokens_per_s=1000.0,
        train_seconds=1.0, peak_mem_mb=64.0,
    )  # fmt: skip
    result = EvalResult(
        status=Status.OK, reason="", metrics=metrics, device="cpu", seed=int(job["seed"]),
        budget=Budget(iters=6), evaluator_version=EVALUATOR_VERSION, tree_hash="",
        preset="tiny", extra={"agent": job["agent"], "branch": job["branch"], "head": job["head"],
                              "windows": f"secret {windows.of_generation(SECRET, job['generation']).name}"},
    )  # fmt: skip
    return result.to_dict()


def write_results(folder: Path, jobs: list[dict[str, Any]], ppl: dict[str, float]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, job in enumerate(jobs):
        noisy = ppl[job["agent"]] * (1.0 + 0.01 * ((i % 3) - 1))  # repeats differ a little
        out = folder / f"result-{job['agent']}-{job['seed']}.json"
        out.write_text(json.dumps(fake_result(job, noisy)), encoding="utf-8")


def start_flow(
    base: Path, emulator: Emulator, *, refuse_merge: bool = False, **settings: bool
) -> dict[str, Any]:
    """A new repository and its origin, through generation 0 (the baseline) in the jobs.

    ``settings``: the repository's (``allow_merge_commit``, ``delete_branch_on_merge``...).
    """
    name = f"merge-{base.name}".replace("_", "-")
    repository = emulator.new_repo(name, **settings)
    seed_repo = base / "seed-repo"
    make_scratch_repo(
        seed_repo, AUTOMERGE_TOML.format(forge=f'kind = "github"\nrepository = "{repository}"')
    )
    origin = base / "origin.git"
    git(base, "clone", "-q", "--bare", str(seed_repo), str(origin))
    Mirror(emulator.api_url, BOT_TOKEN, repository, origin).push("main")
    install_hook(origin, emulator.api_url, BOT_TOKEN, repository)
    protect(origin, "main")
    main_before = git(origin, "rev-parse", "main")
    pull = Pull(emulator.api_url, BOT_TOKEN, repository, origin)
    merges: list[str] = []

    def on_merge(method: str, path: str, status: int, body: bytes) -> None:
        merged = re.search(rf"/repos/{re.escape(repository)}/pulls/\d+/merge$", path)
        if method == "PUT" and merged and status == 200:
            merges.append(json.loads(body)["sha"])
            pull.branch("main")  # GitHub's git side now has the merge on main
            if settings.get("delete_branch_on_merge"):  # and no longer the head branch
                heads = git(origin, "for-each-ref", "--format=%(refname)", "refs/heads/darwin/")
                for ref in heads.split():
                    if ref != "refs/heads/darwin/memory" and not _on_emulator(pull, ref):
                        git(origin, "update-ref", "-d", ref)

    emulator.proxy.after.append(on_merge)
    emulator.proxy.serve_statuses()  # GitHub has commit statuses; the emulator does not
    if refuse_merge:  # what a required check that never reported answers
        emulator.proxy.inject(Fault(405, "PUT", r"/pulls/\d+/merge$", times=99, body={
            "message": "Required status check \"ci\" is expected."}))  # fmt: skip
    flow = Workflow(base, origin, emulator.api_url, repository, base / "corpus", emulator)

    g, jobs, _ = flow.propose()
    assert g == 0
    write_results(base / "results-g0", jobs, {"seed": BASELINE_PPL})
    flow.select(base / "results-g0")
    return {
        "flow": flow, "origin": origin, "repository": repository, "merges": merges,
        "main_before": main_before, "pull": pull,
    }  # fmt: skip


def generation_with_a_champion(
    base: Path,
    emulator: Emulator,
    *,
    refuse_merge: bool,
    kill_select_before_push: bool = False,
    **settings: bool,
) -> dict[str, Any]:
    """Generations 0 and 1 through the jobs, with a champion the gate promotes.

    ``kill_select_before_push``: the first select job is killed just before its push
    (after every API call it makes); what the forge and origin held then is returned
    as ``killed``, and the job is run again.
    """
    run = start_flow(base, emulator, refuse_merge=refuse_merge, **settings)
    flow: Workflow = run["flow"]
    g, every_job, _ = flow.propose()
    # the seed is measured again on generation 1's windows, beside the offspring
    jobs = [job for job in every_job if job["agent"] != "seed"]
    assert g == 1 and len(jobs) >= 2 and len(every_job) > len(jobs)
    winner = jobs[0]["agent"]
    ppl = {job["agent"]: LOSER_PPL for job in jobs} | {winner: WINNER_PPL, "seed": BASELINE_PPL}
    results = base / "results-g1"
    write_results(results, every_job, ppl)
    repair = flow.checkout("repair")
    out = flow.run(
        ["repair", "--repo", str(repair), "--results", str(results)], repair, secrets=True
    )
    repeats = json.loads(out["agents"])
    assert repeats and {job["agent"] for job in repeats} == {winner}, "the leader's repeats"
    write_results(results / "repaired", repeats, ppl)
    if kill_select_before_push:
        repo = flow.checkout("select-killed")
        args = ["select", "--repo", str(repo), "--results", str(results)]
        proc = flow.attempt(
            args, repo, secrets=True, env={"DARWIN_FAULT_BEFORE": "git:push_generation"}
        )
        run["killed"] = {
            "returncode": proc.returncode,
            "emulator": {j["agent"]: _on_emulator(run["pull"], f"refs/heads/{j['branch']}")
                         for j in jobs},
            "origin": git(run["origin"], "for-each-ref", "--format=%(refname)"),
        }  # fmt: skip
    selected = flow.select(results)
    return run | {
        "winner": winner, "jobs": {job["agent"]: job for job in jobs}, "selected": selected,
        "job_log": list(emulator.proxy.job_log),
    }  # fmt: skip


def _on_emulator(pull: Pull, ref: str) -> bool:
    try:
        pull.repo.get_git_ref(ref[len("refs/") :])
    except GithubException as exc:
        if exc.status == 404:
            return False
        raise
    return True


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator) -> dict[str, Any]:
    emulator.proxy.clear()
    try:
        return generation_with_a_champion(
            tmp_path_factory.mktemp("automerge"), emulator, refuse_merge=False
        )
    finally:
        emulator.proxy.clear()


def test_select_succeeds_and_the_merge_is_in_mains_history(merged: dict[str, Any]) -> None:
    origin, winner = merged["origin"], merged["winner"]
    assert merged["selected"]["champion"] == winner
    (merge,) = merged["merges"]
    assert git(origin, "rev-parse", "main") == merge
    parents = git(origin, "rev-parse", f"{merge}^1", f"{merge}^2").split()
    assert parents == [merged["main_before"], merged["jobs"][winner]["head"]]
    # The memory of the generation that promoted it is recorded, on its own branch.
    tracked = git(origin, "ls-tree", "-r", "--name-only", "darwin/memory")
    assert "memory/g001/summary.json" in tracked
    log = merged["job_log"]
    assert not [e for e in log if e[3] == 403], "every job had its permissions"
    # repair pushes its commits and calls no API (its token has contents: write only).
    assert {job for job, *_ in log} == {"propose", "select"}
    for job in ("propose", "repair", "select"):
        assert unused_grants(log, DARWIN_YML, job) == [], job


def test_the_champions_pr_on_github_has_its_plot_cost_and_p_values_and_a_rerun_keeps_it(
    merged: dict[str, Any], emulator: Emulator
) -> None:
    flow: Workflow = merged["flow"]
    origin, winner, repository = merged["origin"], merged["winner"], merged["repository"]
    forge = GitHubForge(
        repository, BOT_TOKEN, base_url=emulator.api_url,
        seconds_between_requests=0, seconds_between_writes=0,
    )  # fmt: skip
    pr = forge.get_pr(f"darwin/{winner}")
    assert pr is not None
    link = re.search(
        rf"/{re.escape(repository)}/raw/([0-9a-f]{{40}})/memory/plots/{winner}\.png\)", pr.body
    )
    assert link, pr.body
    # The link is pinned to a commit the bot pushed, and that commit holds the plot.
    assert git(origin, "cat-file", "-t", f"{link.group(1)}:memory/plots/{winner}.png") == "blob"
    assert "p-value (perplexity lower, one-sided Welch): vs parent" in pr.body
    assert re.search(r"vs baseline \d[0-9.e+-]*\n", pr.body), "a number: repeats on each side"
    assert "**Trusted cost** (measured by the harness): training wall time" in pr.body
    assert "cost ratio vs baseline" in pr.body
    comments = [c.body for c in forge.list_comments(pr.number)]
    refs = git(origin, "for-each-ref", "--format=%(refname) %(objectname)")

    flow.select(merged["flow"].base / "results-g1")  # the step again, as a rerun of the job
    again = forge.get_pr(f"darwin/{winner}")
    assert again is not None and again.body == pr.body
    assert [c.body for c in forge.list_comments(pr.number)] == comments
    assert git(origin, "for-each-ref", "--format=%(refname) %(objectname)") == refs


def test_the_next_generation_starts_from_the_merged_champion(merged: dict[str, Any]) -> None:
    flow: Workflow = merged["flow"]
    origin, winner = merged["origin"], merged["winner"]
    champion_tree = git(origin, "rev-parse", f"{merged['jobs'][winner]['head']}:seed")
    assert git(origin, "rev-parse", "main:seed") == champion_tree
    g, jobs, trusted = flow.propose()  # a fresh checkout of main, as actions/checkout makes
    assert g == 2 and jobs
    assert git(origin, "rev-parse", "main") == merged["merges"][0], "propose left main alone"
    memory = flow.checkout("inspect-memory")
    git(memory, "checkout", "-q", "origin/darwin/memory", "--", "memory")
    summary = next(s for s in MemoryStore(memory / "memory").generations() if s["generation"] == 1)
    assert summary["champion"] == winner and summary["gate"]["passed"]


def test_a_refused_automerge_leaves_the_generation_complete(
    tmp_path_factory: pytest.TempPathFactory, emulator: Emulator
) -> None:
    emulator.proxy.clear()
    try:
        run = generation_with_a_champion(
            tmp_path_factory.mktemp("refused"), emulator, refuse_merge=True
        )
    finally:
        emulator.proxy.clear()
    origin, winner = run["origin"], run["winner"]
    assert run["selected"]["champion"] == winner and run["merges"] == []
    assert git(origin, "rev-parse", "main") == run["main_before"]
    assert "memory/g001/summary.json" in git(
        origin, "ls-tree", "-r", "--name-only", "darwin/memory"
    )
    forge = GitHubForge(
        run["repository"], BOT_TOKEN, base_url=emulator.api_url,
        seconds_between_requests=0, seconds_between_writes=0,
    )  # fmt: skip
    pr = forge.get_pr(f"darwin/{winner}")
    assert pr is not None and pr.state == "open" and not pr.draft
    comments = [c.body for c in forge.list_comments(pr.number)]
    assert any("Automerge was refused" in c and "Required status check" in c for c in comments)
