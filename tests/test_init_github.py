"""``darwin init --github``: the workflow a stranger's repository gets, and the release it runs.

The written workflow is also held to every rule darwin.yml is held to (the
``darwin`` fixtures of test_workflows.py and test_workflow_rules.py run on both),
and it drives a whole generation against the emulator in
tests/forge/test_generation_github.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from darwin_bot import __version__
from darwin_bot.config import load as load_config
from tests.conftest import REPO_ROOT
from tests.test_workflow_rules import PINNED
from tests.test_workflows import check_jsonschema
from tests.workflow_files import DARWIN_YML, load, permissions

SECRETS = ("GITHUB_TOKEN", "GH_TOKEN", "OPENAI_API_KEY")


def darwin(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [sys.executable, "-m", "darwin_bot", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("stranger")
    proc = darwin(repo, "init", "--github")
    assert proc.returncode == 0, proc.stderr
    return repo


def test_init_github_writes_the_workflow_and_a_github_config(written: Path) -> None:
    workflow = written / ".github" / "workflows" / "darwin.yml"
    assert workflow.is_file() and (written / "darwin.toml").is_file()
    cfg = load_config(written / "darwin.toml")
    assert cfg.forge.kind == "github"


def test_the_written_workflow_references_nothing_of_darwin_bots_checkout(written: Path) -> None:
    text = (written / ".github" / "workflows" / "darwin.yml").read_text(encoding="utf-8")
    assert "./trusted" not in text and "uses: ./" not in text
    assert str(REPO_ROOT) not in text and "darwin_bot/" not in text
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)", text, flags=re.M)
    darwin_steps = [u for u in uses if u.startswith("darwin-bot/darwin-bot@")]
    assert darwin_steps == ["darwin-bot/darwin-bot@v1"] * 12  # 6, and 2 per rung leg
    for ref in set(uses) - set(darwin_steps):
        action, _, sha = ref.partition("@")
        assert PINNED[action][0] == sha, ref  # third-party actions stay SHA-pinned


def test_the_written_workflow_passes_githubs_schema(written: Path) -> None:
    proc = check_jsonschema("vendor.github-workflows", written / ".github/workflows/darwin.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_written_workflow_has_darwin_ymls_jobs_and_permissions(written: Path) -> None:
    ours, theirs = load(DARWIN_YML), load(written / ".github" / "workflows" / "darwin.yml")
    assert theirs["permissions"] == {} and set(theirs["jobs"]) == set(ours["jobs"])
    for name, job in ours["jobs"].items():
        other = theirs["jobs"][name]
        assert permissions(other) == permissions(job), name
        assert other["runs-on"] == job["runs-on"] and other.get("if") == job.get("if"), name
    assert theirs["concurrency"] == ours["concurrency"]


def test_a_pinned_action_ref_is_written_and_a_bad_one_refused(tmp_path: Path) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    proc = darwin(tmp_path, "init", "--github", "--action", f"acme/darwin-bot@{sha}")
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load((tmp_path / ".github/workflows/darwin.yml").read_text(encoding="utf-8"))
    steps = [s for job in doc["jobs"].values() for s in job["steps"]]
    assert sum(s.get("uses") == f"acme/darwin-bot@{sha}" for s in steps) == 12
    (tmp_path / "x").mkdir()
    bad = darwin(tmp_path / "x", "init", "--github", "--action", "./trusted")
    assert bad.returncode == 2 and "OWNER/REPO@REF" in bad.stderr
    again = darwin(tmp_path, "init", "--github")
    assert again.returncode == 2 and "--force" in again.stderr


def test_the_version_is_one_everywhere() -> None:
    """pyproject, the package, `darwin --version`, the changelog's newest release, and the
    major tag the written workflow runs agree."""
    pyproject = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^version = "([^"]+)"$', pyproject, flags=re.M).group(1) == __version__
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## (\d+\.\d+\.\d+) \(\d{4}-\d{2}-\d{2}\)$", changelog, flags=re.M)
    assert newest and newest.group(1) == __version__
    proc = darwin(REPO_ROOT, "--version")
    assert proc.stdout.strip().endswith(__version__)
    from darwin_bot.forge import default_action

    assert default_action().endswith(f"@v{__version__.split('.')[0]}")


def test_init_github_says_to_set_the_window_secret(tmp_path: Path) -> None:
    """Every job of the written workflow refuses to start without it: init says so at once."""
    proc = darwin(tmp_path, "init", "--github")
    assert proc.returncode == 0, proc.stderr
    assert 'gh secret set DARWIN_WINDOW_SECRET --body "$(openssl rand -hex 32)"' in proc.stdout
