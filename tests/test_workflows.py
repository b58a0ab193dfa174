"""Static and scripted checks of action.yml and the workflows.

* Every workflow and action.yml passes GitHub's schemas (check-jsonschema's
  vendored copies: no network).
* darwin.yml keeps the privilege split: secrets and write permissions only in
  GitHub-hosted jobs; the self-hosted jobs that run agent code get neither and
  never keep git credentials; darwin-bot always comes from the trusted checkout.
* action.yml's evaluate path never receives a token, and its shell steps build
  the command line we expect (run for real with bash and a recording ``darwin``).

The rules GitHub itself imposes (concurrency, token permissions, pinning,
schedules, the GPU runner's hook) are checked in test_workflow_rules.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from darwin_bot.forge import default_action
from tests.conftest import REPO_ROOT, require_tool
from tests.workflow_files import (
    ACTION,
    DARWIN_YML,
    DEPENDABOT,
    SECRET_ENV,
    SECRET_INPUTS,
    WORKFLOWS,
    WRITE,
    is_checkout,
    is_darwin_step,
    is_github_hosted,
    is_self_hosted,
    load,
    permissions,
    texts,
    triggers,
    written_workflow,
)

# ----------------------------------------------------------------------------- schemas


def schema_targets() -> list[tuple[str, Path]]:
    targets = [("vendor.github-workflows", p) for p in sorted(WORKFLOWS.glob("*.yml"))]
    return [*targets, ("vendor.github-actions", ACTION), ("vendor.dependabot", DEPENDABOT)]


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    require_tool(shutil.which("check-jsonschema") is not None, "check-jsonschema is not installed")
    # The built-in schemas are vendored in the package: no download, works offline.
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_expected_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS.glob("*.yml")} >= {"darwin.yml", "ci.yml"}


@pytest.mark.parametrize(
    ("schema", "path"), schema_targets(), ids=lambda x: x.name if isinstance(x, Path) else x
)
def test_github_schema(schema: str, path: Path) -> None:
    proc = check_jsonschema(schema, path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_is_not_vacuous(tmp_path: Path) -> None:
    broken = load(DARWIN_YML)
    broken["on"] = broken.pop(True)  # dump `on` as `on`, not `true`: one fault only
    good = tmp_path / "good.yml"
    good.write_text(yaml.safe_dump(broken), encoding="utf-8")
    assert check_jsonschema("vendor.github-workflows", good).returncode == 0
    del broken["jobs"]["select"]["runs-on"]
    bad = tmp_path / "darwin.yml"
    bad.write_text(yaml.safe_dump(broken), encoding="utf-8")
    assert check_jsonschema("vendor.github-workflows", bad).returncode != 0


# ----------------------------------------------------------------------------- darwin.yml


@pytest.fixture(scope="module", params=["darwin.yml", "written by darwin init --github"])
def darwin(request: pytest.FixtureRequest) -> dict[str, Any]:
    """darwin-bot's own workflow, and the one a user's repository gets: the same split."""
    return load(DARWIN_YML) if request.param == "darwin.yml" else written_workflow()


def test_top_level_permissions_are_empty(darwin: dict[str, Any]) -> None:
    assert darwin["permissions"] == {}


def test_triggers(darwin: dict[str, Any]) -> None:
    on = triggers(darwin)
    assert set(on) == {"workflow_dispatch", "schedule", "issues"}
    assert set(on["workflow_dispatch"]["inputs"]) == {"generations", "population", "dry_run"}
    assert on["workflow_dispatch"]["inputs"]["dry_run"]["default"] is False
    assert on["schedule"][0]["cron"]
    assert set(on["issues"]["types"]) == {"labeled", "closed"}
    assert "pull_request" not in on and "pull_request_target" not in on


def test_every_job_is_either_github_hosted_or_self_hosted(darwin: dict[str, Any]) -> None:
    for name, job in darwin["jobs"].items():
        assert is_github_hosted(job) != is_self_hosted(job), name
    gpu = [n for n, j in darwin["jobs"].items() if is_self_hosted(j)]
    # runner: the dry run's check; rungN: a halving schedule's legs
    assert gpu == ["evaluate", "runner", "reevaluate", "rung1", "rung2", "rung3"]
    for name in gpu:
        assert darwin["jobs"][name]["runs-on"] == ["self-hosted", "linux", "gpu"]


# The one secret a GPU job holds: it draws the generation's windows, and only darwin's
# trusted process reads it (the sandbox's environment is an allowlist).
WINDOW_SECRET = "${{ secrets.DARWIN_WINDOW_SECRET }}"


def _other_secrets(job: dict[str, Any]) -> list[str]:
    """The texts of ``job`` naming a secret, but for the window secret given to darwin's step."""
    given = [s["with"].get("window-secret") for s in job["steps"] if is_darwin_step(s)]
    assert all(w in (None, WINDOW_SECRET) for w in given)
    return [t for t in texts(job) if "secrets." in t and t != WINDOW_SECRET]


def test_secrets_and_write_permissions_only_in_github_hosted_jobs(darwin: dict[str, Any]) -> None:
    for name, job in darwin["jobs"].items():
        mentions_secret = bool(_other_secrets(job))
        writes = WRITE in permissions(job).values()
        if mentions_secret or writes:
            assert is_github_hosted(job), (
                f"{name} holds secrets or write access on a self-hosted runner"
            )


def test_self_hosted_jobs_hold_nothing_worth_stealing(darwin: dict[str, Any]) -> None:
    for name, job in darwin["jobs"].items():
        if not is_self_hosted(job):
            continue
        strings = texts(job)
        assert not _other_secrets(job), name
        assert not any("github.token" in t for t in strings), name
        assert not any(t in strings for t in (*SECRET_ENV, *SECRET_INPUTS, "token")), name
        assert "env" not in job, f"{name}: no job-level env on the GPU runner"
        assert permissions(job) == {"contents": "read"}, name
        checkouts = [s for s in job["steps"] if is_checkout(s)]
        if name == "runner":  # the dry run's check: no code of anyone's, only a shell step
            assert checkouts == [] and all("uses" not in s for s in job["steps"])
            assert job["if"] == "inputs.dry_run == true"
            continue
        assert len(checkouts) == 2, name
        for step in checkouts:
            assert step["with"]["persist-credentials"] is False, f"{name}: {step.get('name')}"
        assert job["strategy"]["fail-fast"] is False


def test_darwin_always_comes_from_the_trusted_checkout(darwin: dict[str, Any]) -> None:
    """Each `uses: ./X` names a folder checked out earlier in the job, not from an agent branch."""
    for name, job in darwin["jobs"].items():
        checked_out: dict[str, str] = {}
        for step in job["steps"]:
            uses = str(step.get("uses", ""))
            if is_checkout(step):
                checked_out[step["with"].get("path", ".")] = str(step["with"].get("ref", ""))
            elif is_darwin_step(step) and not uses.startswith("./"):
                # The released action, by reference: nothing of any checkout is run.
                assert uses == default_action(), f"{name}: {uses}"
            elif uses.startswith("./"):
                folder = uses.removeprefix("./").rstrip("/") or "."
                assert folder == "trusted", f"{name}: darwin-bot must come from trusted/"
                assert folder in checked_out, f"{name}: {uses} used before it is checked out"
                ref = checked_out[folder]
                assert "matrix." not in ref and ref != "branch"
                # The pinned commit (or, in propose, the default branch it pins).
                assert ref in (
                    "${{ needs.propose.outputs.trusted-sha }}",
                    "${{ github.event.repository.default_branch }}",
                ), f"{name}: trusted/ checked out at {ref!r}"


def test_every_step_that_runs_agent_code_gets_the_approved_packages(
    darwin: dict[str, Any],
) -> None:
    """Smoke tests (propose, repair) and training (evaluate) import what the humans approved."""
    seen: dict[str, str | None] = {}
    for name, job in darwin["jobs"].items():
        for step in job["steps"]:
            if is_darwin_step(step):
                command = step["with"]["command"]
                seen[f"{name}/{command}"] = step["with"].get("packages")
    runs_agent_code = {k for k in seen if k.split("/")[1] in ("propose", "repair", "evaluate")}
    assert len(runs_agent_code) == 7, seen  # propose, evaluate, repair, reevaluate, 3 rungs
    for key in runs_agent_code:
        assert seen[key] == "${{ vars.DARWIN_PACKAGES }}", key
    assert all(seen[k] is None for k in set(seen) - runs_agent_code)  # select: no agent code


def test_agent_code_is_checked_out_only_on_the_gpu_runner(darwin: dict[str, Any]) -> None:
    for name, job in darwin["jobs"].items():
        agent_refs = [
            s for s in job["steps"] if is_checkout(s) and "matrix." in str(s["with"].get("ref", ""))
        ]
        if is_self_hosted(job):
            wanted = [] if name == "runner" else ["agent"]  # runner: the dry run, no code
            assert [s["with"]["path"] for s in agent_refs] == wanted, name
        else:
            assert agent_refs == [], name


@pytest.mark.parametrize("which", ["darwin.yml", "written"])
def test_every_darwin_step_of_a_generation_gets_the_window_secret(
    darwin: dict[str, Any], which: str
) -> None:
    """Every job files or scores results under one generation's windows: each gets the
    secret; every evaluation leg also the matrix's generation, so the legs are paired."""
    workflow = darwin if which == "darwin.yml" else written_workflow()
    for name in ("propose", "evaluate", "repair", "reevaluate", "select"):
        (step,) = [s for s in workflow["jobs"][name]["steps"] if is_darwin_step(s)]
        assert step["with"]["window-secret"] == WINDOW_SECRET, (which, name)
        if step["with"]["command"] == "evaluate":
            assert step["with"]["generation"] == "${{ matrix.generation }}", (which, name)
            # the runner's own disk: the seed and the survivors are scored again, not trained
            assert step["with"]["keep-graphs"] == "${{ runner.tool_cache }}/darwin-graphs"
    assert not any(
        "DARWIN_WINDOW_SECRET" in t
        for name in ("corpus", "runner")
        for t in texts(workflow["jobs"].get(name, {}))
    )


def test_evaluate_jobs_use_the_action_without_any_token(darwin: dict[str, Any]) -> None:
    for name in ("evaluate", "reevaluate"):
        job = darwin["jobs"][name]
        (step,) = [s for s in job["steps"] if is_darwin_step(s)]
        assert step["with"]["command"] == "evaluate"
        assert not set(step["with"]) & set(SECRET_INPUTS)
        assert "env" not in step


def test_issue_events_are_guarded_against_the_bots_own(darwin: dict[str, Any]) -> None:
    guard = " ".join(darwin["jobs"]["propose"]["if"].split())
    assert "(github.event_name != 'issues' || (" in guard
    for needle in (
        "github.actor != 'github-actions[bot]'",
        "contains(github.event.issue.labels.*.name, 'darwin:request')",
        "github.event.label.name == 'darwin:approved'",
        "github.event.label.name == 'darwin:declined'",
        "github.event.action == 'closed'",
    ):
        assert needle in guard
    # Every other job hangs off propose, so a filtered event runs nothing at all.
    jobs = darwin["jobs"]

    def ancestors(name: str) -> set[str]:
        needs = jobs[name].get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        return set(needs).union(*(ancestors(n) for n in needs)) if needs else set()

    for name in jobs:
        if name != "propose":
            assert "propose" in ancestors(name), name


def test_job_graph_and_conditions(darwin: dict[str, Any]) -> None:
    jobs = darwin["jobs"]
    assert jobs["evaluate"]["needs"] == ["propose", "corpus"]
    assert jobs["evaluate"]["strategy"]["matrix"]["include"] == (
        "${{ fromJSON(needs.propose.outputs.agents) }}"
    )
    assert "needs.propose.outputs.agents != '[]'" in jobs["evaluate"]["if"]
    assert jobs["repair"]["outputs"]["agents"] == "${{ steps.darwin.outputs.agents }}"
    assert jobs["reevaluate"]["strategy"]["matrix"]["include"] == (
        "${{ fromJSON(needs.repair.outputs.agents) }}"
    )
    assert "needs.repair.outputs.agents != '[]'" in jobs["reevaluate"]["if"]
    select = jobs["select"]
    legs = {f"rung{k}{part}" for k in (1, 2, 3) for part in ("_plan", "")}
    assert set(select["needs"]) == {"propose", "evaluate", "repair", "reevaluate"} | legs
    # Runs after failed or skipped evaluations, not after a cancel or a failed propose.
    assert "!cancelled()" in select["if"] and "needs.propose.result == 'success'" in select["if"]
    assert "always()" not in select["if"]
    assert permissions(select)["actions"] == WRITE


def run_scripts(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    if "jobs" in doc:
        for name, job in doc["jobs"].items():
            for step in job["steps"]:
                if "run" in step:
                    yield f"{name}: {step.get('name', step['run'][:30])}", step
    else:
        for step in doc["runs"]["steps"]:
            if "run" in step:
                yield step["name"], step


@pytest.mark.parametrize("path", [*sorted(WORKFLOWS.glob("*.yml")), ACTION], ids=lambda p: p.name)
def test_run_scripts_take_values_through_env_only(path: Path) -> None:
    """No `${{ }}` inside a script (script injection); each script is valid bash."""
    for where, step in run_scripts(load(path)):
        assert "${{" not in step["run"], f"{path.name} / {where}: pass the value via env"
        proc = subprocess.run(
            ["bash", "-n"], input=step["run"], capture_output=True, text=True, timeout=30
        )
        assert proc.returncode == 0, f"{path.name} / {where}: {proc.stderr}"


def ci_steps(darwin: dict[str, Any], job: str, name: str) -> dict[str, Any]:
    return next(s for s in darwin["jobs"][job]["steps"] if s.get("name") == name)


def make_recorder(folder: Path, name: str) -> Path:
    """An executable that appends {"argv": ..., "env": ...} as one JSON line to <name>.log."""
    exe = folder / name
    exe.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(folder / (name + '.log'))!r}, 'a') as fh:\n"
        "    fh.write(json.dumps({'argv': sys.argv[1:], 'env': dict(os.environ)}) + '\\n')\n",
        encoding="utf-8",
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def recorded(folder: Path, name: str) -> list[dict[str, Any]]:
    log = folder / f"{name}.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def test_dispatch_step_starts_the_next_generation(darwin: dict[str, Any], tmp_path: Path) -> None:
    step = ci_steps(darwin, "select", "Dispatch the next generation")
    assert step["if"] == "github.event_name == 'workflow_dispatch' && inputs.generations > 1"
    assert step["env"]["GH_TOKEN"] == "${{ github.token }}"
    make_recorder(tmp_path, "gh")
    env = {
        "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_WORKFLOW_REF": "octo/evo/.github/workflows/darwin.yml@refs/heads/main",
        "GITHUB_REPOSITORY": "octo/evo",
        "GH_TOKEN": "t",
        "REMAINING": "3",
        "POPULATION": "6",
        "REF": "main",
    }
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", step["run"]],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    (call,) = recorded(tmp_path, "gh")
    assert call["argv"] == [
        "workflow", "run", "darwin.yml", "--repo", "octo/evo", "--ref", "main",
        "-f", "generations=2", "-f", "population=6",
    ]  # fmt: skip


def test_select_reads_first_and_repaired_results(darwin: dict[str, Any]) -> None:
    downloads = {
        s["with"]["pattern"]: s["with"]["path"]
        for s in darwin["jobs"]["select"]["steps"]
        if str(s.get("uses", "")).startswith("actions/download-artifact@")
    }
    # darwin select reads --results recursively, so both sets reach it.
    assert downloads == {
        "eval-*": "results",
        "reeval-*": "results/repaired",
        "rung-*": "results/rungs",
    }
    uploads = {
        job: next(
            s for s in darwin["jobs"][job]["steps"] if "upload-artifact" in str(s.get("uses"))
        )
        for job in ("evaluate", "reevaluate")
    }
    for job, step in uploads.items():
        prefix = "eval" if job == "evaluate" else "reeval"
        # One artifact per matrix leg: an agent may be evaluated with several seeds.
        assert step["with"]["name"] == f"{prefix}-${{{{ matrix.agent }}}}-${{{{ matrix.seed }}}}"


# ----------------------------------------------------------------------------- action.yml


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    return load(ACTION)


def test_action_inputs_outputs_and_branding(action: dict[str, Any]) -> None:
    inputs = action["inputs"]
    assert set(inputs) >= {
        "command", "config", "branch", "results", "python-version", "github-token",
        "openai-api-key", "openai-base-url", "model", "install-torch",
    }  # fmt: skip
    for name, spec in inputs.items():
        assert spec.get("description"), f"input {name} is undocumented"
        if "default" in spec:
            # Unquoted YAML would make `true` a bool and `3.11` a float.
            assert isinstance(spec["default"], str), f"input {name}: quote the default"
    assert inputs["config"]["default"] == "darwin.toml"
    assert inputs["python-version"]["default"] == "3.11"
    assert inputs["install-torch"]["default"] == "true"
    assert inputs["command"]["required"] is True
    for name in SECRET_INPUTS:
        assert inputs[name]["default"] == "", f"{name} must not default to a token"
    assert set(action["outputs"]) == {"agents", "champion", "report", "generation", "data", "legs"}
    for name, spec in action["outputs"].items():
        assert spec["description"] and spec["value"] == f"${{{{ steps.run.outputs.{name} }}}}"
    assert action["branding"]["icon"] and action["branding"]["color"]
    assert action["runs"]["using"] == "composite"


def test_action_installs_itself_not_the_checkout(action: dict[str, Any]) -> None:
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "install")
    assert step["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert '"${pinned[@]}" "$ACTION_PATH"' in step["run"]
    assert " -e " not in step["run"] and "--editable" not in step["run"]


def _install(action: dict[str, Any], tmp_path: Path, packages: str) -> list[list[str]]:
    """Run the install step with a fake python3 (its venv's python records each call)."""
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "install")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    log = tmp_path / "python.log"
    fake = bin_dir / "python3"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, os, pathlib, sys, stat\n"
        "args = sys.argv[1:]\n"
        "if args[:1] == ['--version']:\n"
        "    print('Python 3.11.0'); sys.exit(0)\n"
        f"open({str(log)!r}, 'a').write(json.dumps(args) + '\\n')\n"
        "if args[:2] == ['-m', 'venv']:\n"
        "    venv = pathlib.Path(args[-1]) / 'bin'\n"
        "    venv.mkdir(parents=True, exist_ok=True)\n"
        "    for name in ('python', 'darwin'):\n"
        "        (venv / name).symlink_to(sys.argv[0])\n"
        "sys.exit(0)\n",
        encoding="utf-8",
    )
    fake.chmod(0o755)
    ctx = {
        "inputs": {"install-torch": "false", "packages": packages, "python-version": "3.11"},
        "github": {"action_path": str(REPO_ROOT)},
        "runner": {"temp": str(tmp_path)},
    }
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.update({k: render(str(v), ctx) for k, v in step["env"].items()})
    env["GITHUB_OUTPUT"] = str(tmp_path / "output")
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_action_installs_the_approved_packages_as_wheels_after_itself(
    action: dict[str, Any], tmp_path: Path
) -> None:
    calls = _install(action, tmp_path / "with", "lion-pytorch==0.2.5 einops>=0.8,<1")
    pips = [c for c in calls if c[:2] == ["-m", "pip"]]
    assert pips[0][-1] == str(REPO_ROOT)  # darwin-bot first, then the humans' list
    assert pips[1][-4:] == ["--only-binary", ":all:", "lion-pytorch==0.2.5", "einops>=0.8,<1"]
    assert len(pips) == 2
    calls = _install(action, tmp_path / "without", "")
    [only] = [c for c in calls if c[:2] == ["-m", "pip"]]
    assert only[-1] == str(REPO_ROOT)


CONSTRAINTS = REPO_ROOT / ".github" / "constraints.txt"


def test_every_pip_install_uses_the_pinned_constraints(
    action: dict[str, Any], tmp_path: Path
) -> None:
    """darwin-bot and the approved packages install with -c .github/constraints.txt."""
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "install")
    run = step["run"]
    # One pip command line; only torch (not in the file) installs without the constraints.
    assert run.count("pip install") == 1 and 'pinned=("${pip[@]}" -c "$CONSTRAINTS")' in run
    unpinned = [
        line for line in run.splitlines() if '"${pip[@]}"' in line and "pinned=" not in line
    ]
    assert unpinned and all('"$TORCH_SPEC"' in line for line in unpinned), unpinned
    assert step["env"]["CONSTRAINTS"] == "${{ github.action_path }}/.github/constraints.txt"
    calls = _install(action, tmp_path, "lion-pytorch==0.2.5")
    pips = [c for c in calls if c[:2] == ["-m", "pip"]]
    assert len(pips) == 2
    for call in pips:
        assert call[call.index("-c") + 1] == str(CONSTRAINTS), call


def test_the_constraints_pin_every_dependency_within_pyproject(tmp_path: Path) -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[A-Za-z0-9._+-]+", version), line
            assert canonicalize_name(name) not in pins, f"{name} pinned twice"
            pins[canonicalize_name(name)] = version
    assert "torch" not in pins  # installed per runner: CPU wheel or the runner's CUDA build
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in map(Requirement, deps):
        name = canonicalize_name(dep.name)
        if name != "torch":
            assert name in pins, f"{dep.name} is not pinned in {CONSTRAINTS.name}"
            assert dep.specifier.contains(pins[name]), f"{dep} excludes the pin {pins[name]}"


def test_hosted_jobs_cache_torchs_wheel(action: dict[str, Any]) -> None:
    steps = action["runs"]["steps"]
    (cache,) = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache@")]
    install = next(s for s in steps if s.get("id") == "install")
    assert steps.index(cache) < steps.index(install)
    # GitHub-hosted only (a set-up Python); the GPU runner keeps its own pip cache.
    assert "inputs.python-version != ''" in cache["if"] and "install-torch" in cache["if"]
    assert cache["with"]["path"] == "~/.cache/pip"
    key = cache["with"]["key"]
    upper = re.search(r"<\s*([0-9.]+)", install["env"]["TORCH_SPEC"]).group(1)
    assert "${{ runner.os }}" in key and key.endswith(f"-torch-below-{upper}")
    assert "," not in key  # GitHub refuses a cache key with a comma


def test_action_torch_requirement_matches_pyproject(action: dict[str, Any]) -> None:
    import tomllib

    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (torch,) = [d for d in deps if re.match(r"torch\b", d)]
    step = next(s for s in action["runs"]["steps"] if s.get("id") == "install")
    assert step["env"]["TORCH_SPEC"].replace(" ", "") == torch.replace(" ", "")


def evaluate_reachable(step: dict[str, Any]) -> bool:
    cond = step.get("if")
    return cond is None or expression(cond, {"inputs": {"command": "evaluate"}}, partial=True)


def test_evaluate_path_never_gets_a_token(action: dict[str, Any]) -> None:
    steps = action["runs"]["steps"]
    reachable = [s for s in steps if evaluate_reachable(s)]
    ids = [s.get("id") for s in reachable]
    assert "evaluate" in ids and "run" not in ids
    for step in reachable:
        env = step.get("env", {})
        assert not set(env) & set(SECRET_ENV), step["name"]
        for key, value in {**env, **step.get("with", {})}.items():
            for secret in SECRET_INPUTS:
                # Only "was it given?" may cross (the refusal check), never the value.
                uses = re.findall(rf"inputs\.{secret}\b(?!\s*!=\s*'')", str(value))
                assert not uses, f"{step['name']}: {key} carries inputs.{secret}"
    evaluate = next(s for s in steps if s.get("id") == "evaluate")
    assert evaluate["if"] == "inputs.command == 'evaluate'"


# ----------------------------------------------------------------------------- action.yml, run


def expression(text: str, ctx: dict[str, Any], partial: bool = False) -> Any:
    """A small evaluator for the expressions action.yml uses.

    Supports ``a || b``, ``a == 'x'``, ``a != ''`` and context paths such as
    ``inputs.command``. With ``partial``, an unknown input counts as "could be
    anything", so a comparison on it is True (used to find reachable steps).
    """
    text = text.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2].strip()
    if "||" in text:
        return any(expression(part, ctx, partial) for part in text.split("||"))
    match = re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", text)
    if match:
        left, right = (_operand(x, ctx) for x in (match.group(1), match.group(3)))
        if partial and (left is None or right is None):
            return True
        return (left == right) if match.group(2) == "==" else (left != right)
    return _operand(text, ctx)


def _operand(text: str, ctx: dict[str, Any]) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1]
    node: Any = ctx
    for part in text.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def render(value: str, ctx: dict[str, Any]) -> str:
    def sub(match: re.Match[str]) -> str:
        result = expression(match.group(1), ctx)
        return str(result).lower() if isinstance(result, bool) else str(result)

    return re.sub(r"\$\{\{(.*?)\}\}", sub, value)


def run_action(
    action: dict[str, Any], tmp_path: Path, **given: str
) -> tuple[list[tuple[str, subprocess.CompletedProcess[str]]], list[dict[str, Any]]]:
    """Run the action's shell steps (not setup-python/install) with bash and a fake darwin."""
    darwin_exe = make_recorder(tmp_path, "darwin")
    inputs = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
    inputs["window-secret"] = "the-window-secret"  # every generation step needs it
    inputs.update({k.replace("_", "-"): v for k, v in given.items()})
    ctx = {
        "inputs": inputs,
        "steps": {"install": {"outputs": {"darwin": str(darwin_exe)}}},
        "github": {"action_path": str(REPO_ROOT)},
        "runner": {"temp": str(tmp_path)},
    }
    ran: list[tuple[str, subprocess.CompletedProcess[str]]] = []
    for step in action["runs"]["steps"]:
        if "run" not in step or step.get("id") == "install":
            continue
        if "if" in step and not expression(step["if"], ctx):
            continue
        env = {
            "PATH": os.environ["PATH"],
            "GITHUB_OUTPUT": str(tmp_path / "output"),
            # A runner-internal token that must not reach agent code.
            "ACTIONS_RUNTIME_TOKEN": "runtime-secret",
        }
        env.update({k: render(str(v), ctx) for k, v in step.get("env", {}).items()})
        cwd = tmp_path / render(step.get("working-directory", "."), ctx)
        cwd.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        ran.append((step["name"], proc))
        if proc.returncode != 0:
            break
    return ran, recorded(tmp_path, "darwin")


@pytest.mark.parametrize(
    ("given", "argv"),
    [
        (
            {"command": "propose", "population": "6", "model": "gpt-x"},
            ["propose", "--config", "darwin.toml", "--population", "6", "--model", "gpt-x"],
        ),
        ({"command": "repair"}, ["repair", "--config", "darwin.toml", "--results", "results"]),
        (
            {"command": "select", "results": "/r", "config": ""},
            ["select", "--results", "/r"],
        ),
        ({"command": "report"}, ["report", "--config", "darwin.toml"]),
        ({"command": "corpus"}, ["data", "ensure", "--config", "darwin.toml"]),
    ],
)
def test_action_runs_the_command_with_its_secrets(
    action: dict[str, Any], tmp_path: Path, given: dict[str, str], argv: list[str]
) -> None:
    ran, calls = run_action(
        action, tmp_path, github_token="ghs_write", openai_api_key="sk-llm", **given
    )
    assert [name for name, _ in ran] == ["Check the inputs", "Run darwin"]
    assert all(proc.returncode == 0 for _, proc in ran), ran[-1][1].stderr
    (call,) = calls
    assert call["argv"] == argv
    assert call["env"]["GITHUB_TOKEN"] == "ghs_write"
    assert call["env"]["OPENAI_API_KEY"] == "sk-llm"
    # An empty input is unset, so darwin's own defaults apply.
    assert "OPENAI_BASE_URL" not in call["env"]


def test_action_unsets_an_empty_llm_key(action: dict[str, Any], tmp_path: Path) -> None:
    _, (call,) = run_action(action, tmp_path, command="propose", github_token="ghs")
    assert "OPENAI_API_KEY" not in call["env"]


def test_action_evaluate_runs_without_any_token(action: dict[str, Any], tmp_path: Path) -> None:
    corpus = tmp_path / "w" / "corpus"  # the corpus job's artifact, downloaded
    corpus.mkdir(parents=True)
    (corpus / "meta.json").write_text("{}", encoding="utf-8")
    ran, calls = run_action(
        action,
        tmp_path,
        command="evaluate",
        branch="darwin/a1",
        path="/w/agent",
        seed="2",
        data=str(corpus),
        out=str(tmp_path / "results" / "result-a1.json"),
        working_directory="trusted",
        generation="3",
        keep_graphs="/runner/graphs",
    )
    assert [name for name, _ in ran] == [
        "Check the inputs",
        "darwin evaluate (no token, no LLM key)",
    ]
    # The leg prepares nothing: the corpus job did, once, and the leg downloaded it.
    (call,) = calls
    assert call["argv"] == [
        "evaluate", "/w/agent", "--branch", "darwin/a1",
        "--out", str(tmp_path / "results" / "result-a1.json"), "--sandbox", "bwrap",
        "--seed", "2", "--generation", "3", "--keep-graphs", "/runner/graphs",
        "--config", "darwin.toml", "--data", str(corpus),
    ]  # fmt: skip
    assert (tmp_path / "results").is_dir()
    leaked = set(call["env"]) & {*SECRET_ENV, "ACTIONS_RUNTIME_TOKEN"}
    assert not leaked
    # darwin's trusted process draws the generation's windows by it (no sandbox gets it)
    assert call["env"]["DARWIN_WINDOW_SECRET"] == "the-window-secret"


def test_action_evaluate_prepares_a_folder_an_older_workflow_passes(
    action: dict[str, Any], tmp_path: Path
) -> None:
    """A workflow written before the corpus job passes data: data/shakespeare_char, unprepared."""
    _, (prepare, call) = run_action(
        action, tmp_path, command="evaluate", branch="darwin/a1", data="data/shakespeare_char"
    )
    assert prepare["argv"] == ["data", "prepare", "--out", "data/shakespeare_char"]
    assert call["argv"][-2:] == ["--data", "data/shakespeare_char"]


def test_action_evaluate_minimal_inputs(action: dict[str, Any], tmp_path: Path) -> None:
    _, (call,) = run_action(action, tmp_path, command="evaluate", branch="darwin/a1")
    assert call["argv"] == [
        "evaluate", "agent", "--branch", "darwin/a1", "--out", "result.json",
        "--sandbox", "bwrap", "--config", "darwin.toml",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"command": "mutate"}, "input 'command' must be one of"),
        (
            {"command": "evaluate", "branch": "darwin/a", "github_token": "ghs"},
            "evaluate runs agent code",
        ),
        (
            {"command": "evaluate", "branch": "darwin/a", "openai_api_key": "sk"},
            "evaluate runs agent code",
        ),
        ({"command": "evaluate"}, "evaluate needs the input 'branch'"),
        (
            {"command": "evaluate", "branch": "darwin/a", "sandbox": "weak"},
            "input 'sandbox' must be bwrap",
        ),
        ({"command": "evaluate", "branch": "darwin/a", "sandbox": ""}, "input 'sandbox' must be"),
        ({"command": "propose", "install_torch": "yes"}, "'install-torch' must be true or false"),
        ({"command": "propose", "packages": "--index-url=http://evil lion"}, "'packages' takes"),
        ({"command": "evaluate", "branch": "a", "packages": "ok -r reqs.txt"}, "'packages' takes"),
        ({"command": "propose", "packages": "git+https://host/x.git"}, "'packages' takes"),
        *(
            ({"command": c, "branch": "darwin/a", "window_secret": ""}, "gh secret set DARWIN_WIN")
            for c in ("propose", "evaluate", "repair", "select")
        ),
    ],
)
def test_action_refuses_bad_inputs(
    action: dict[str, Any], tmp_path: Path, given: dict[str, str], message: str
) -> None:
    ran, calls = run_action(action, tmp_path, **given)
    ((name, proc),) = ran
    assert name == "Check the inputs" and proc.returncode == 1
    assert proc.stdout.startswith("::error title=darwin-bot::") and message in proc.stdout
    assert calls == []


@pytest.mark.parametrize("choice", ["unshare", "none"])
def test_action_sandbox_opt_out_is_explicit_and_warned(
    action: dict[str, Any], tmp_path: Path, choice: str
) -> None:
    ran, (call,) = run_action(
        action, tmp_path, command="evaluate", branch="darwin/a", sandbox=choice
    )
    assert ran[0][1].stdout.startswith("::warning title=darwin-bot::sandbox")
    assert call["argv"][call["argv"].index("--sandbox") + 1] == choice


def test_action_accepts_requirement_specifiers(action: dict[str, Any], tmp_path: Path) -> None:
    given = "lion-pytorch==0.2.5 einops>=0.8,<1 torch-optimizer~=0.3 x[extra]!=1.0.*"
    ran, (call,) = run_action(action, tmp_path, command="propose", packages=given)
    assert all(proc.returncode == 0 for _, proc in ran)
    assert call["argv"][0] == "propose"
