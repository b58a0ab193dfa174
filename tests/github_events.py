"""Event payloads in the shapes GitHub sends them (``GITHUB_EVENT_PATH``, ``github.event``).

Only fields GitHub sends, and only the ones darwin-bot's workflow and runner hook
read or could be fooled by. From GitHub's "Events that trigger workflows" and
"Webhook events and payloads":

* ``schedule``: no webhook payload ("not applicable"); the run's event file holds
  only the cron string. There is no ``repository`` and no ``sender``.
* ``workflow_dispatch``: ``inputs``, ``ref``, ``repository``, ``sender``, ``workflow``.
* ``issues``: ``action``, ``issue`` (with its ``labels``), ``label`` (labeled and
  unlabeled only), ``repository``, ``sender``.
* ``workflow_run``: ``action``, ``workflow_run``, ``workflow``, ``repository``, ``sender``.
"""

from __future__ import annotations

from typing import Any

CRON = "23 3 * * *"


def repository(full_name: str = "octo/evo", default_branch: str = "main") -> dict[str, Any]:
    return {"full_name": full_name, "default_branch": default_branch}


def sender(login: str = "alice", kind: str = "User") -> dict[str, Any]:
    return {"login": login, "type": kind}


def schedule(cron: str = CRON) -> dict[str, Any]:
    return {"schedule": cron}


def workflow_dispatch(
    inputs: dict[str, Any] | None = None,
    ref: str = "refs/heads/main",
    repo: dict[str, Any] | None = None,
    who: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "inputs": inputs or {},
        "ref": ref,
        "repository": repo or repository(),
        "sender": who or sender(),
        "workflow": ".github/workflows/darwin.yml",
    }


def issues(
    action: str,
    labels: list[str],
    label: str = "",
    repo: dict[str, Any] | None = None,
    who: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": action,
        "issue": {"number": 1, "labels": [{"name": n} for n in labels]},
        "repository": repo or repository(),
        "sender": who or sender(),
    }
    if action in ("labeled", "unlabeled"):
        body["label"] = {"name": label}
    return body


def workflow_run(conclusion: str = "success") -> dict[str, Any]:
    return {
        "action": "completed",
        "workflow_run": {"conclusion": conclusion, "head_branch": "main"},
        "workflow": {"path": ".github/workflows/darwin.yml"},
        "repository": repository(),
        "sender": sender(),
    }


def of(name: str, **kw: Any) -> dict[str, Any]:
    """The payload of event ``name`` (with its defaults): one of the four above."""
    return {
        "schedule": schedule,
        "workflow_dispatch": workflow_dispatch,
        "issues": issues,
        "workflow_run": workflow_run,
    }[name](**kw)
