"""The dashboard: one issue (``darwin: dashboard``) that shows the evolution and steers it.

Checkboxes come first, so a human finds them without scrolling::

    - [ ] Pause the evolution                 <!-- darwin:control=pause -->
    - [ ] Promote the leader                  <!-- darwin:control=promote_leader -->
    - [ ] Re-evaluate the top agents          <!-- darwin:control=reevaluate -->

then the leaderboard (a markdown table from the caller), the champion, and the
pending requests. ``pause`` is a state: it stays ticked until a human unticks
it. ``promote_leader`` and ``reevaluate`` are one-shot actions: the bot clears
one only when the caller says it was handled.

Concurrency: a generation reads the controls at its start and rewrites the
dashboard at its end. :func:`write_dashboard` reads the issue again just before
writing and keeps every box ticked in it, so a tick made while the generation
ran is never lost. (GitHub has no compare-and-swap on issue bodies; a tick in
the few milliseconds between that read and the write is the remaining window.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from darwin_bot.forge import MAX_BODY_CHARS, Forge, marker
from darwin_bot.publish.hitl import RequestState

DASHBOARD_KEY = "dashboard"
DASHBOARD_LABEL = "darwin:dashboard"
DASHBOARD_TITLE = "darwin: dashboard"

# name -> text of the box; the order is the order on the page.
CONTROLS: dict[str, str] = {
    "pause": "Pause the evolution (no new generations while ticked)",
    "promote_leader": "Promote the leader: open its pull request to the default branch",
    "reevaluate": "Re-evaluate the top agents (repeat their runs)",
}
ACTIONS: tuple[str, ...] = ("promote_leader", "reevaluate")

_BOX = re.compile(r"^\s*[-*] \[([ xX])\].*<!-- darwin:control=([a-z_]+) -->\s*$", re.MULTILINE)
# Room kept for the marker and the truncation note when the table is cut.
_SLACK = 400


@dataclass(frozen=True)
class Controls:
    """The dashboard's boxes as a human left them."""

    pause: bool = False
    promote_leader: bool = False
    reevaluate: bool = False


def parse_controls(body: str) -> dict[str, bool]:
    """Box name -> ticked, for the boxes found in ``body`` (unknown names ignored)."""
    found: dict[str, bool] = {}
    for tick, name in _BOX.findall(body or ""):
        if name in CONTROLS:
            found[name] = tick.lower() == "x"
    return found


def read_controls(forge: Forge) -> Controls:
    """The controls now; all unticked when there is no dashboard yet."""
    issue = forge.find_issue(DASHBOARD_KEY, label=DASHBOARD_LABEL)
    return Controls(**parse_controls(issue.body)) if issue is not None else Controls()


def _render_controls(ticks: dict[str, bool]) -> str:
    lines = ["### Controls", ""]
    for name, text in CONTROLS.items():
        box = "x" if ticks.get(name) else " "
        lines.append(f"- [{box}] {text} {marker(f'control={name}')}")
    return "\n".join(lines)


def _render_pending(pending: Sequence[RequestState]) -> str:
    if not pending:
        return "### Pending requests\n\nNone."
    lines = ["### Pending requests", ""]
    for s in pending:
        who = f" (asked by `{s.request.agent}`)" if s.request.agent else ""
        lines.append(f"- [#{s.number}]({s.url}) {s.request.kind}: {s.request.title}{who}")
    return "\n".join(lines)


def _fit_table(table: str, budget: int) -> str:
    """``table`` cut to ``budget`` characters at a row boundary, with a note of what is left out."""
    if len(table) <= budget:
        return table
    lines = table.rstrip("\n").split("\n")
    head, rows = lines[:2], lines[2:]
    kept: list[str] = []
    size = sum(len(line) + 1 for line in head)
    for row in rows:
        if size + len(row) + 1 > budget - 120:
            break
        kept.append(row)
        size += len(row) + 1
    note = f"\n\n_{len(rows) - len(kept)} more rows not shown: the issue body has a size limit._"
    return "\n".join(head + kept) + note


def render(
    ticks: dict[str, bool],
    leaderboard_md: str,
    champion_md: str,
    pending: Sequence[RequestState],
) -> str:
    """The dashboard body: controls first, then leaderboard, champion, pending requests."""
    top = _render_controls(ticks)
    champion = "### Champion\n\n" + (champion_md.strip() or "None yet.")
    rest = _render_pending(pending)
    # If even the fixed parts are too long, the pending list and champion give way.
    fixed = len(top) + len(champion) + len(rest) + _SLACK
    if fixed > MAX_BODY_CHARS // 2:
        rest = _fit_table(rest, MAX_BODY_CHARS // 8)
        champion = champion[: MAX_BODY_CHARS // 8]
        fixed = len(top) + len(champion) + len(rest) + _SLACK
    table = _fit_table(leaderboard_md.strip() or "No agents evaluated yet.", MAX_BODY_CHARS - fixed)
    return "\n\n".join([top, "### Leaderboard", table, champion, rest]) + "\n"


def write_dashboard(
    forge: Forge,
    leaderboard_md: str,
    champion_md: str,
    pending: Sequence[RequestState],
    handled: Iterable[str] = (),
) -> None:
    """Create or rewrite the dashboard, keeping every box ticked on the forge now.

    ``handled`` names the one-shot actions the caller carried out since it read
    the controls; only those boxes are cleared.
    """
    handled = tuple(handled)
    unknown = [name for name in handled if name not in ACTIONS]
    if unknown:
        raise ValueError(f"only actions can be handled ({', '.join(ACTIONS)}), not {unknown}")
    current = forge.find_issue(DASHBOARD_KEY, label=DASHBOARD_LABEL)  # the latest ticks
    ticks = parse_controls(current.body) if current is not None else {}
    for name in handled:
        ticks[name] = False
    body = render(ticks, leaderboard_md, champion_md, pending)
    forge.upsert_issue(DASHBOARD_KEY, DASHBOARD_TITLE, body, (DASHBOARD_LABEL,))
