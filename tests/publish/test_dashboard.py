"""The dashboard issue: controls first, ticks preserved, bounded size."""

from __future__ import annotations

from pathlib import Path

import pytest

from darwin_bot.core import HumanRequest
from darwin_bot.forge import MAX_BODY_CHARS, LocalForge
from darwin_bot.publish import dashboard, hitl

TABLE = "| agent | ppl |\n|---|---|\n| g001-000 | 3.21 |"


def _tick(body: str, name: str) -> str:
    return "\n".join(
        line.replace("- [ ]", "- [x]", 1) if f"control={name} " in line else line
        for line in body.split("\n")
    )


def test_controls_come_first_and_parse_back() -> None:
    body = dashboard.render({"pause": True}, TABLE, "g001-000", [])
    assert body.startswith("### Controls")
    assert body.index("Pause") < body.index("### Leaderboard") < body.index("### Champion")
    assert dashboard.parse_controls(body) == {
        "pause": True, "promote_leader": False, "reevaluate": False,
    }  # fmt: skip
    assert dashboard.parse_controls(_tick(body, "reevaluate"))["reevaluate"] is True


def test_parse_controls_is_tolerant() -> None:
    body = (
        "* [X] Pause it <!-- darwin:control=pause -->\n"
        "- [x] Self-destruct <!-- darwin:control=selfdestruct -->\n"
        "- [ ] promote <!-- darwin:control=promote_leader -->"
    )
    assert dashboard.parse_controls(body) == {"pause": True, "promote_leader": False}
    assert dashboard.parse_controls("") == {}


def test_a_huge_table_is_cut_under_the_limit_with_a_note() -> None:
    rows = "\n".join(f"| g{i:05d} | {3 + i / 1e5:.5f} |" for i in range(6000))
    table = "| agent | ppl |\n|---|---|\n" + rows
    assert len(table) > MAX_BODY_CHARS
    body = dashboard.render({}, table, "champ", [])
    assert len(body) < MAX_BODY_CHARS - 100
    assert "more rows not shown" in body
    assert body.startswith("### Controls") and "| g00000 |" in body and "champ" in body


def test_pending_requests_are_listed(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    req = HumanRequest("data", "Add the enwik8 corpus", "more text", "g003-001", 3)
    hitl.open_requests(forge, [req])
    states = hitl.read_requests(forge)
    dashboard.write_dashboard(forge, TABLE, "g001-000", hitl.pending_requests(states))
    issue = forge.find_issue(dashboard.DASHBOARD_KEY, label=dashboard.DASHBOARD_LABEL)
    assert issue is not None
    assert "Add the enwik8 corpus" in issue.body and "g003-001" in issue.body


def test_only_handled_actions_are_cleared(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    dashboard.write_dashboard(forge, TABLE, "", [])
    issue = forge.find_issue(dashboard.DASHBOARD_KEY, label=dashboard.DASHBOARD_LABEL)
    assert issue is not None
    body = _tick(_tick(_tick(issue.body, "pause"), "promote_leader"), "reevaluate")
    forge.update_issue(issue.number, body)

    dashboard.write_dashboard(forge, TABLE, "", [])  # nothing handled: nothing cleared
    assert dashboard.read_controls(forge) == dashboard.Controls(True, True, True)
    dashboard.write_dashboard(forge, TABLE, "", [], handled=["reevaluate"])
    assert dashboard.read_controls(forge) == dashboard.Controls(True, True, False)
    with pytest.raises(ValueError, match="only actions"):
        dashboard.write_dashboard(forge, TABLE, "", [], handled=["pause"])
    assert dashboard.read_controls(LocalForge(tmp_path / "empty")) == dashboard.Controls()
