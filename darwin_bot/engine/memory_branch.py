"""Where a local run commits its memory: the branch ``<prefix>memory``, never the user's.

The memory folder in the working tree is the engine's state. Each memory commit
copies darwin's own files of it onto the memory branch (``commit_memory`` of the
repository: a private index, so the checked-out branch, its index and its files
are untouched), as the CI steps do on GitHub. The user's branch gets no commit
from the bot. The memory folder is listed in ``.git/info/exclude`` so that
``git status`` on the user's branch stays clean; that entry is also how the run
knows it has told the user where the memory goes (once, before the first commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from darwin_bot.engine.ports import Repository, Say

EXCLUDE_MARK = "# darwin-bot: the memory is committed on its own branch, not on yours"


def changed(repo: Repository, files: Sequence[str]) -> list[str]:
    """Of ``files`` (repository-relative), those the memory branch does not hold as they are."""
    if not files:
        return []
    tip = repo.rev(f"refs/heads/{repo.memory_branch}")
    if tip is None:
        return list(files)
    committed: dict[str, str] = {}
    for line in repo.git("ls-tree", "-r", tip, "--", *files).splitlines():
        meta, _, path = line.partition("\t")
        committed[path] = meta.split()[2]
    blobs = repo.git("hash-object", "--", *files).split()
    return [f for f, blob in zip(files, blobs, strict=True) if committed.get(f) != blob]


def commit(
    repo: Repository, folder: str, files: Sequence[str], message: str, say: Say
) -> str | None:
    """Commit ``files`` of the memory ``folder`` on the memory branch; None when nothing changed."""
    announce_once(repo, folder, say)
    return repo.commit_memory(folder, message, files=files)


def announce_once(repo: Repository, path: str, say: Say) -> bool:
    """Say where the memory goes and keep it out of ``git status``; once per repository."""
    exclude = repo.root / repo.git("rev-parse", "--git-path", "info/exclude").strip()
    text = exclude.read_text(encoding="utf-8") if exclude.is_file() else ""
    if EXCLUDE_MARK in text:
        return False
    folder = path.strip("/")
    here = repo.default_branch()
    say(
        f"the memory ({folder}/) is committed on the branch {repo.memory_branch}, never on "
        f"{here}: 'git log {repo.memory_branch}' shows it ({folder}/ is now in .git/info/exclude)"
    )
    if repo.git("ls-files", "--", folder).strip():
        say(
            f"{folder}/ is also tracked on {here}, from earlier runs: "
            f"'git rm -r -q --cached {folder} && git commit' stops that"
        )
    Path(exclude).parent.mkdir(parents=True, exist_ok=True)
    sep = "" if not text or text.endswith("\n") else "\n"
    exclude.write_text(f"{text}{sep}{EXCLUDE_MARK}\n/{folder}/\n", encoding="utf-8")
    return True
