"""A bare repository on disk that stands in for GitHub's git transport.

The emulator serves the REST API but cannot receive ``git push``. Tests give
the CI steps a bare ``origin`` on disk instead, and :func:`install` puts a
``post-receive`` hook in it that replays every pushed branch update on the
emulator: a new head is mirrored object by object (:mod:`mirror`, same shas),
a deleted branch is deleted there too. git runs the hook before ``git push``
returns, so a step that pushes and then opens a PR finds its head on the
emulator, as it would on GitHub.

A hook's exit status cannot fail a push, so failures are appended to
``<bare>/mirror-errors.log``; a test asserts that file stays empty.

:func:`protect` adds what GitHub's branch protection and rulesets do to a push:
a ``pre-receive`` hook that refuses the whole push (git's ``--atomic`` contract,
and GitHub's: one refused ref fails them all) when it updates a protected
branch, with GitHub's own message (``GH006: Protected branch update failed``).
"""

from __future__ import annotations

import shlex
import sys
import traceback
from pathlib import Path

ZERO = "0" * 40
ERRORS = "mirror-errors.log"


def install(bare: Path, api_url: str, token: str, repository: str) -> None:
    """Make every push to ``bare`` update ``repository`` on the API server at ``api_url``."""
    args = " ".join(shlex.quote(a) for a in (sys.executable, __file__, api_url, token, repository))
    hook = bare / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\nexec {args}\n", encoding="utf-8")
    hook.chmod(0o755)


def protect(bare: Path, *patterns: str) -> None:
    """Refuse pushes that create, move or delete a branch matching a shell ``pattern``."""
    cases = " | ".join(f"refs/heads/{p}" for p in patterns)
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        "status=0\n"
        "while read -r old new ref; do\n"
        '  case "$ref" in\n'
        f"    {cases})\n"
        '      echo "error: GH006: Protected branch update failed for $ref." >&2\n'
        '      echo "error: Changes must be made through a pull request." >&2\n'
        "      status=1 ;;\n"
        "  esac\n"
        "done\n"
        'exit "$status"\n',
        encoding="utf-8",
    )
    hook.chmod(0o755)


def errors(bare: Path) -> str:
    """What the hook failed to mirror so far ('' when everything went through)."""
    path = bare / ERRORS
    return path.read_text(encoding="utf-8") if path.exists() else ""


def replay(updates: list[tuple[str, str, str]], mirror: object) -> None:
    """Apply ``(old, new, ref)`` updates of ``refs/heads/*`` through ``mirror`` (a Mirror)."""
    from github import GithubException

    for _old, new, ref in updates:
        if not ref.startswith("refs/heads/"):
            continue  # archive refs and tags have no place on the forge
        branch = ref[len("refs/heads/") :]
        if new != ZERO:
            mirror.push(branch)  # type: ignore[attr-defined]
            continue
        try:
            mirror.repo.requester.requestJsonAndCheck("DELETE", mirror.ref_url(branch))  # type: ignore[attr-defined]
        except GithubException as exc:
            if exc.status not in (404, 422):  # already gone: the wanted state
                raise


def main(argv: list[str]) -> int:
    api_url, token, repository = argv
    bare = Path.cwd()  # git runs the hook in the bare repository
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from mirror import Mirror

        updates = [tuple(line.split()) for line in sys.stdin.read().splitlines() if line.strip()]
        replay(updates, Mirror(api_url, token, repository, bare))  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a hook cannot fail the push: the test reads the log
        with open(bare / ERRORS, "a", encoding="utf-8") as fh:
            fh.write(traceback.format_exc())
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
