"""The workflow files' helpers shared by the workflow tests: paths and YAML walking."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO_ROOT

ACTION = REPO_ROOT / "action.yml"
WORKFLOWS = REPO_ROOT / ".github" / "workflows"
DARWIN_YML = WORKFLOWS / "darwin.yml"
DEPENDABOT = REPO_ROOT / ".github" / "dependabot.yml"
RUNNER_HOOK = REPO_ROOT / ".github" / "runner" / "job-started.sh"
SECRET_INPUTS = ("github-token", "openai-api-key")
SECRET_ENV = ("GITHUB_TOKEN", "GH_TOKEN", "OPENAI_API_KEY")
WRITE = "write"


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(doc: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    return doc.get("on", doc.get(True))


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def texts(node: Any) -> list[str]:
    return [x for x in walk(node) if isinstance(x, str)]


def is_self_hosted(job: dict[str, Any]) -> bool:
    runs_on = job["runs-on"]
    labels = runs_on if isinstance(runs_on, list) else [runs_on]
    return "self-hosted" in labels


def is_github_hosted(job: dict[str, Any]) -> bool:
    runs_on = job["runs-on"]
    return isinstance(runs_on, str) and re.match(r"^(ubuntu|windows|macos)-", runs_on) is not None


def permissions(job: dict[str, Any]) -> dict[str, str]:
    perms = job.get("permissions")
    assert isinstance(perms, dict), "every job states its permissions (least privilege)"
    return perms


def written_workflow() -> dict[str, Any]:
    """The workflow ``darwin init --github`` writes for a user's repository, parsed."""
    from darwin_bot.forge import default_action, render_workflow

    return yaml.safe_load(render_workflow(default_action()))


def is_darwin_step(step: dict[str, Any]) -> bool:
    """A step that runs darwin-bot: ``./trusted`` in darwin.yml, the released action elsewhere."""
    from darwin_bot.forge.github.workflow import ACTION_REPOSITORY

    uses = str(step.get("uses", ""))
    return uses == "./trusted" or uses.startswith(f"{ACTION_REPOSITORY}@")


def is_checkout(step: dict[str, Any]) -> bool:
    return str(step.get("uses", "")).startswith("actions/checkout@")
