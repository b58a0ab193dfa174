"""Forges: where the evolution meets humans (PRs, statuses, issues, the dashboard).

``base`` holds the protocol and its value types; ``local`` keeps them as files,
``github`` on GitHub. :func:`open_forge` builds the one a config asks for.
PyGithub is imported only when a GitHub forge is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from darwin_bot import lazy_surface
from darwin_bot.forge.base import Forge
from darwin_bot.forge.local import DeleteBranchHook, HeadShaHook, LocalForge, MergeHook

if TYPE_CHECKING:
    from darwin_bot.forge.base import (
        ANY_STATE,
        DRAFT_LABEL,
        FITNESS_CONTEXT,
        MAX_BODY_CHARS,
        CloseReason,
        Comment,
        Issue,
        IssueState,
        PullRequest,
        Status,
        StatusState,
        agent_marker_key,
        has_marker,
        marker,
        with_marker,
    )
    from darwin_bot.forge.github import GitHubForge
    from darwin_bot.forge.github.workflow import default_action, render_workflow
    from darwin_bot.forge.rate_budget import (
        REST_PER_HOUR,
        WRITES_PER_HOUR,
        generation_budget,
        propose_budget,
        select_budget,
    )


if TYPE_CHECKING:
    from darwin_bot.config import Config


def open_forge(
    config: Config,
    root: Path,
    *,
    head_sha_hook: HeadShaHook | None = None,
    delete_branch_hook: DeleteBranchHook | None = None,
    merge_hook: MergeHook | None = None,
) -> Forge:
    """The forge ``config.forge.kind`` names; a local one lives under ``root / forge.path``.

    The hooks give a LocalForge its git (GitHub has its own); they are ignored
    for GitHub.
    """
    fc, prefix = config.forge, config.evolution.branch_prefix
    if fc.kind == "github":
        from darwin_bot.forge.github import GitHubForge

        return GitHubForge.from_env(
            repository=fc.repository,
            base_url=fc.base_url,
            branch_prefix=prefix,
            default_branch=fc.default_branch,
        )
    return LocalForge(
        root / fc.path,
        default_branch=fc.default_branch or "main",
        branch_prefix=prefix,
        head_sha_hook=head_sha_hook,
        delete_branch_hook=delete_branch_hook,
        merge_hook=merge_hook,
    )


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "ANY_STATE",
    "CloseReason",
    "Comment",
    "DRAFT_LABEL",
    "FITNESS_CONTEXT",
    "Forge",
    "GitHubForge",
    "Issue",
    "IssueState",
    "LocalForge",
    "MAX_BODY_CHARS",
    "PullRequest",
    "REST_PER_HOUR",
    "Status",
    "StatusState",
    "WRITES_PER_HOUR",
    "agent_marker_key",
    "default_action",
    "generation_budget",
    "has_marker",
    "marker",
    "open_forge",
    "propose_budget",
    "render_workflow",
    "select_budget",
    "with_marker",
]
_HOMES = {
    "ANY_STATE": ".base",
    "CloseReason": ".base",
    "Comment": ".base",
    "DRAFT_LABEL": ".base",
    "FITNESS_CONTEXT": ".base",
    "GitHubForge": ".github",
    "Issue": ".base",
    "IssueState": ".base",
    "MAX_BODY_CHARS": ".base",
    "PullRequest": ".base",
    "REST_PER_HOUR": ".rate_budget",
    "Status": ".base",
    "StatusState": ".base",
    "WRITES_PER_HOUR": ".rate_budget",
    "agent_marker_key": ".base",
    "default_action": ".github.workflow",
    "generation_budget": ".rate_budget",
    "has_marker": ".base",
    "marker": ".base",
    "propose_budget": ".rate_budget",
    "render_workflow": ".github.workflow",
    "select_budget": ".rate_budget",
    "with_marker": ".base",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
