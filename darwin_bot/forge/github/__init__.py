"""GitHubForge: the Forge protocol on the GitHub REST API, through PyGithub.

One module a job: ``errors`` (which failures are retried; the DarwinError for
the rest), ``client`` (the boundary, conversions, what is remembered),
``threads`` (labels and comments), ``pulls``, ``issues``, ``statuses``.

Boundaries:

* PyGithub's own retry is off (``retry=None``): :class:`RetryPolicy` is the one
  policy. 5xx, connection failures, and rate limits (403/429 that say "rate
  limit", carry ``Retry-After``, or show ``X-RateLimit-Remaining: 0``) are
  retried, honouring ``Retry-After`` and ``X-RateLimit-Reset``; anything else
  fails at once.
* Every PyGithub and ``requests`` exception is mapped to the DarwinError tree
  here: ``ForgeNotFound`` (404), ``ForgeAuthError`` (401, 403 that is not a rate
  limit), ``ForgeTransientError`` (retries exhausted), ``ForgeError`` (the rest).
* A public method is retried as a whole, so each one is written as an upsert
  that converges when it runs again after a failure half-way.

Degradations, where a server lacks an API (GitHub Enterprise, the ``emulate``
test server, private repositories on free plans):

* draft PRs refused (422) -> the PR is opened ready, labelled ``darwin:draft``;
* ready-for-review via GraphQL missing (404) -> ``PATCH {"draft": false}``;
* commit statuses missing (404) -> a check run named after the context, the
  exact state kept in its ``external_id``.

Request economy (a generation touches every agent's PR; GitHub meters requests):

* writes use the object the server answered with, never a re-read;
* the open PRs under the prefix, once listed by :meth:`GitHubForge.list_prs`,
  are kept current by every write, so later lookups by branch cost nothing;
* a PR opened by this process has no comments but the ones it posts, and a
  check run it created or found keeps its id: those are remembered too.

What is remembered only saves lookups: a process without it (a fresh CI step)
asks the server, and every write is still an upsert. After any failure, a retry
included, everything remembered is dropped, since the failed attempt may have
written. Requests stay sequential on purpose: GitHub asks integrations not to
make concurrent requests (secondary rate limits).
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping

from github import GithubException

from darwin_bot.errors import ConfigError
from darwin_bot.forge.base import check_prefix
from darwin_bot.forge.github.client import ACTIONS_BOT_LOGIN
from darwin_bot.forge.github.errors import SECONDARY_LIMIT_WAIT_S, classify, map_error
from darwin_bot.forge.github.issues import Issues
from darwin_bot.forge.github.pulls import PullRequests
from darwin_bot.forge.github.statuses import Statuses

__all__ = ["SECONDARY_LIMIT_WAIT_S", "GitHubForge", "classify", "map_error"]


class GitHubForge(PullRequests, Issues, Statuses):
    """The Forge protocol on GitHub. ``repository`` is ``owner/name``."""

    @classmethod
    def from_env(
        cls,
        repository: str = "",
        base_url: str = "",
        branch_prefix: str = "darwin/",
        default_branch: str = "",
        env: Mapping[str, str] | None = None,
    ) -> GitHubForge:
        """Build from config values, falling back to the environment GitHub Actions sets.

        Token: ``GITHUB_TOKEN`` (or ``GH_TOKEN``); repository: ``GITHUB_REPOSITORY``;
        API URL: ``GITHUB_API_URL`` (GitHub Enterprise runners set it).
        ``DARWIN_GITHUB_THROTTLE=0`` turns off PyGithub's spacing of requests
        (meant for an emulator on loopback; GitHub itself wants the spacing).
        ``DARWIN_BOT_LOGIN``: the account the token writes as (an App's ``<slug>[bot]``);
        in Actions without it, ``github-actions[bot]`` (the GITHUB_TOKEN's).
        """
        env = os.environ if env is None else env
        throttle = env.get("DARWIN_GITHUB_THROTTLE", "1")
        if throttle not in ("0", "1"):
            raise ConfigError(f"DARWIN_GITHUB_THROTTLE must be 0 or 1, not {throttle!r}")
        spacing = (
            {} if throttle == "1" else {"seconds_between_requests": 0, "seconds_between_writes": 0}
        )
        return cls(
            repository or env.get("GITHUB_REPOSITORY", ""),
            env.get("GITHUB_TOKEN") or env.get("GH_TOKEN", ""),
            base_url=base_url or env.get("GITHUB_API_URL") or None,
            branch_prefix=branch_prefix,
            default_branch=default_branch,
            login=env.get("DARWIN_BOT_LOGIN")
            or (ACTIONS_BOT_LOGIN if env.get("GITHUB_ACTIONS") == "true" else ""),
            **spacing,
        )

    # -- branches ----------------------------------------------------------------------------------

    def delete_branch(self, branch: str) -> bool:
        check_prefix(branch, self.branch_prefix)

        def op() -> bool:
            url = f"{self._repo.url}/git/refs/heads/{urllib.parse.quote(branch)}"
            try:
                # Straight to DELETE: a lazy GitRef would carry the GET-only /git/ref/ URL.
                self._gh.requester.requestJsonAndCheck("DELETE", url)
            except GithubException as exc:
                # 404: no such ref; 422 "Reference does not exist": deleted meanwhile.
                if exc.status in (404, 422):
                    return False
                raise
            return True

        return self._call(f"delete branch {branch}", op)
