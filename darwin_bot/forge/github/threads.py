"""Labels and the bot's comments on an issue or PR: the parts PRs and issues share."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import replace

from github import GithubException

from darwin_bot.forge.base import Comment, has_marker, marker
from darwin_bot.forge.github.client import GitHubClient, comment_of, login_of, marked_body


class Threads(GitHubClient):
    """Labels (created on first use) and comments upserted by hidden marker."""

    # -- labels ---------------------------------------------------------------------------

    def _ensure_labels(self, names: Iterable[str]) -> None:
        """Create the missing labels among ``names`` (the repository's labels listed once)."""
        wanted = [name for name in names if name]
        if not wanted:
            return
        if self._labels is None:
            self._labels = {label.name for label in self._repo.get_labels()}
        for name in wanted:
            if name in self._labels:
                continue
            try:
                self._repo.create_label(name, "ededed", "darwin-bot")
            except GithubException as exc:
                # 422 "already_exists": made by someone else since we listed: fine.
                if exc.status != 422:
                    raise
            self._labels.add(name)

    def ensure_label(self, name: str, color: str = "ededed", description: str = "") -> None:
        def op() -> None:
            try:
                self._repo.get_label(name)
            except GithubException as exc:
                if exc.status != 404:
                    raise
                try:
                    self._repo.create_label(name, color, description)
                except GithubException as exc2:
                    if exc2.status != 422:
                        raise
            if self._labels is not None:
                self._labels.add(name)

        self._call(f"ensure label {name!r}", op)

    def _add_labels(self, number: int, names: list[str]) -> tuple[str, ...]:
        """Add ``names`` to issue or PR ``number``; its labels after, from the answer."""
        self._ensure_labels(names)
        return self._label_names(self._rest("POST", f"issues/{number}/labels", names))

    def _remove_label(self, number: int, name: str) -> tuple[str, ...] | None:
        """Remove ``name``; the labels left, or None if it was not there (the wanted state)."""
        try:
            left = self._rest(
                "DELETE", f"issues/{number}/labels/{urllib.parse.quote(name, safe='')}"
            )
        except GithubException as exc:
            if exc.status != 404:
                raise
            return None
        return self._label_names(left)

    def set_labels(
        self, number: int, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> tuple[str, ...]:
        add, remove = tuple(add), tuple(remove)

        def op() -> tuple[str, ...]:
            # Straight to the labels endpoints: they serve issues and PRs alike
            # (``GET /issues/N`` of a PR is not served everywhere).
            known = self._known_pr(number)
            labels = None if known is None else known.labels
            missing = [name for name in add if labels is None or name not in labels]
            if missing:
                labels = self._add_labels(number, missing)
            for name in remove:
                if labels is not None and name not in labels:
                    continue
                left = self._remove_label(number, name)
                if left is not None:
                    labels = left
                elif labels is not None:  # not there after all: what was known is stale
                    labels = tuple(n for n in labels if n != name)
            if labels is None:
                labels = self._label_names(self._rest("GET", f"issues/{number}/labels"))
            if known is not None:
                self._remember(replace(known, labels=labels))
            return labels

        return self._call(f"set labels on #{number}", op)

    # -- comments and issues ---------------------------------------------------------------------

    def _upsert_comment(self, number: int, key: str, body: str) -> Comment:
        body = marked_body(body, key)
        known = self._bot_comments.get(number)
        if known is not None and key in known:
            have = known[key]
            if have.body != body:
                try:
                    self._rest("PATCH", f"issues/comments/{have.id}", {"body": body})
                except GithubException as exc:
                    if exc.status != 404:
                        raise
                    del self._bot_comments[number]  # deleted by a human: look again
                    return self._upsert_comment(number, key, body)
            made = replace(have, body=body)
        elif known is not None:  # all the bot's comments on it are known: none has the key
            data = self._rest("POST", f"issues/{number}/comments", {"body": body})
            made = Comment(
                int(data["id"]),
                data.get("body") or body,
                login_of(data),
                str(data.get("author_association") or "NONE"),
            )
        else:
            made = self._find_or_post_comment(number, key, body)
        if known is not None:
            known[key] = made
        return made

    def _find_or_post_comment(self, number: int, key: str, body: str) -> Comment:
        issue = self._repo.get_issue(number)  # lazy: no request of its own
        me = self.bot_login()
        for existing in issue.get_comments():
            # Only the bot's own comment: a marker is text that anyone can type.
            author = existing.user.login if existing.user else ""
            if author == me and has_marker(existing.body, key):
                if existing.body != body:
                    existing.edit(body)
                return replace(comment_of(existing), body=body)
        made = issue.create_comment(body)
        return replace(comment_of(made), body=made.body or body)

    def upsert_comment(self, number: int, key: str, body: str) -> Comment:
        marker(key)
        return self._call(f"comment on #{number}", lambda: self._upsert_comment(number, key, body))

    def is_own(self, comment: Comment) -> bool:
        # The bot's comments carry a marker; a person using their own token for the
        # bot (``darwin requests`` on a laptop) still writes their replies without one.
        return "<!-- darwin:" in comment.body and comment.author == self.bot_login()

    def list_comments(self, number: int) -> tuple[Comment, ...]:
        def op() -> tuple[Comment, ...]:
            return tuple(comment_of(c) for c in self._repo.get_issue(number).get_comments())

        return self._call(f"read the comments of #{number}", op)
