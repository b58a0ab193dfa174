"""GitHub's answers read: which failures are worth a retry, and the ForgeError for the rest.

:func:`classify` is what :class:`~darwin_bot.forge.retry.RetryPolicy` asks of
every failure; :func:`map_error` maps a permanent one onto the DarwinError tree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from github import GithubException

from darwin_bot.errors import ForgeAuthError, ForgeError, ForgeNotFound
from darwin_bot.forge.retry import Transient

# GitHub asks to wait at least a minute after a secondary rate limit that names no wait.
SECONDARY_LIMIT_WAIT_S = 60.0


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def error_message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    msg = str(data.get("message") or exc.message or "")
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        details = [e.get("message") or e.get("code") for e in errors if isinstance(e, dict)]
        msg = f"{msg} ({'; '.join(str(d) for d in details if d)})" if details else msg
    return msg


def classify(exc: Exception, now: Callable[[], float] = time.time) -> Transient | None:
    """Transient (worth a retry, with the server's advice) or None (fail at once)."""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return Transient(f"cannot reach GitHub: {exc}")
    if not isinstance(exc, GithubException):
        return None
    status, headers, msg = exc.status, exc.headers, error_message(exc).lower()
    if status >= 500:
        return Transient(f"GitHub answered {status}")
    if status not in (403, 429):
        return None
    retry_after = _header(headers, "retry-after")
    if retry_after is not None:
        try:
            return Transient(f"GitHub rate limit ({status})", wait_s=float(retry_after))
        except ValueError:  # an HTTP date: rare enough to fall back to the default wait
            return Transient(f"GitHub rate limit ({status})", wait_s=SECONDARY_LIMIT_WAIT_S)
    if _header(headers, "x-ratelimit-remaining") == "0":
        reset = _header(headers, "x-ratelimit-reset")
        wait = max(0.0, float(reset) - now()) + 1.0 if reset and reset.isdigit() else None
        return Transient("GitHub API rate limit exhausted", wait_s=wait)
    if "rate limit" in msg or status == 429:
        return Transient(f"GitHub secondary rate limit ({status})", wait_s=SECONDARY_LIMIT_WAIT_S)
    return None


# What GitHub answers a GITHUB_TOKEN's PR when the repository (or its organisation) has
# "Allow GitHub Actions to create and approve pull requests" off.
ACTIONS_PR_REFUSAL = "not permitted to create or approve pull requests"
ACTIONS_PR_FIX = (
    "GitHub Actions may not open pull requests in this repository: tick 'Allow GitHub "
    "Actions to create and approve pull requests' in Settings > Actions > General > "
    "Workflow permissions (if it is greyed out, the organisation's owner must allow it "
    "first), or give the workflow a GitHub App token (docs/github.md)"
)


def is_actions_pr_refusal(exc: GithubException) -> bool:
    return exc.status == 403 and ACTIONS_PR_REFUSAL in error_message(exc).lower()


def map_error(exc: GithubException, what: str) -> ForgeError:
    """The DarwinError for a permanent GitHub failure while doing ``what``."""
    status, msg = exc.status, error_message(exc)
    if status == 401:
        return ForgeAuthError(f"{what}: GitHub refused the token (401 {msg}); check GITHUB_TOKEN")
    if is_actions_pr_refusal(exc):
        return ForgeAuthError(f"{what}: {ACTIONS_PR_FIX} (403 {msg})")
    if status == 403:
        return ForgeAuthError(
            f"{what}: GitHub refused the request (403 {msg}); the token needs "
            "contents, pull-requests, issues and statuses write permission"
        )
    if status == 404:
        return ForgeNotFound(f"{what}: not found on GitHub (404 {msg})")
    return ForgeError(f"{what}: GitHub answered {status}: {msg}")
