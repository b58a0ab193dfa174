"""The workflow ``darwin init --github`` writes into a user's repository.

darwin-bot's own ``.github/workflows/darwin.yml`` evolves darwin-bot's ``seed/``
and runs darwin-bot from its own checkout (``uses: ./trusted``). Copied as it is
into another repository, that folder holds the user's code, not the action. The
written workflow is the same file, jobs, permissions and guards, with one
difference: every darwin step runs the *released* action by reference
(``<owner>/darwin-bot@v1``, or any ref the user pins), and the ``trusted/``
checkout is the user's own repository at the generation's pinned commit (its
``darwin.toml``). A test holds the result to the rules darwin.yml is held to.

The source is darwin.yml itself: shipped in the wheel as package data
(``darwin_bot/_workflow/``), read from the source tree when running from it.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from darwin_bot import __version__
from darwin_bot.errors import ConfigError

# Where darwin-bot's releases are published; ``darwin init --github --action`` overrides it.
ACTION_REPOSITORY = "darwin-bot/darwin-bot"
LOCAL_USES = "uses: ./trusted"
STEPS_USING_THE_ACTION = 12  # 6, and a plan and a matrix step for each of the 3 rung legs
_ACTION_REF = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[A-Za-z0-9_./-]+$"
)

# Step names and comments of darwin.yml that speak of darwin-bot's own checkout.
_RENAMES = {
    "Check out darwin-bot from the default branch (trusted)": (
        "Check out the default branch (trusted, for darwin.toml)"
    ),
    "Check out darwin-bot at the trusted commit": (
        "Check out the trusted commit of the default branch (for darwin.toml)"
    ),
}


def default_action() -> str:
    """The released action at this version's moving major tag (``...@v1`` for 1.x)."""
    return f"{ACTION_REPOSITORY}@v{__version__.split('.')[0]}"


def source_text() -> str:
    """darwin.yml as shipped with this darwin-bot (package data, or the source tree's)."""
    shipped = resources.files("darwin_bot").joinpath("_workflow", "darwin.yml")
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8")
    tree = Path(__file__).resolve().parents[3] / ".github" / "workflows" / "darwin.yml"
    if tree.is_file():
        return tree.read_text(encoding="utf-8")
    raise ConfigError("this darwin-bot install has no workflow template; reinstall it from PyPI")


def render_workflow(action: str) -> str:
    """The workflow for a user's repository, every darwin step running ``action``."""
    if not _ACTION_REF.match(action):
        raise ConfigError(
            f"--action {action!r} is not OWNER/REPO@REF (e.g. {default_action()}, "
            "or a commit sha after the @ to pin one release exactly)"
        )
    text = source_text()
    found = text.count(LOCAL_USES)
    if found != STEPS_USING_THE_ACTION:
        raise ConfigError(
            f"the workflow template has {found} darwin steps, not {STEPS_USING_THE_ACTION}; "
            "this darwin-bot install is inconsistent"
        )
    text = text.replace(LOCAL_USES, f"uses: {action}")
    for old, new in _RENAMES.items():
        text = text.replace(old, new)
    header = (
        f"# Written by `darwin init --github` (darwin-bot {__version__}). darwin-bot runs from\n"
        f"# the released action {action}, never from this repository's branches; the\n"
        "# `trusted/` checkouts are this repository's default branch at the commit the\n"
        "# generation pins (for darwin.toml). Set-up: docs/github.md in darwin-bot.\n"
        "# Upgrading: change the ref after the @ in every `uses:` of the action.\n#\n"
    )
    return header + text
