"""Human requests: decisions, prompt context, granted imports, and `darwin requests`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from darwin_bot.cli import cli
from darwin_bot.core import HumanRequest
from darwin_bot.forge import Issue, LocalForge
from darwin_bot.publish import hitl

DEP = HumanRequest("dependency", "Add dependency: einops", "clearer reshapes", "g001-002", 1)


def _issue(labels: tuple[str, ...] = (), state: str = "open", reason: str | None = None) -> Issue:
    return Issue(1, "t", "b", labels, state, reason, "u")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("labels", "state", "reason", "status"),
    [
        ((), "open", None, "pending"),
        ((hitl.APPROVED_LABEL,), "open", None, "approved"),
        ((hitl.APPROVED_LABEL,), "closed", "completed", "approved"),
        ((hitl.DECLINED_LABEL,), "open", None, "declined"),
        ((), "closed", "not_planned", "declined"),
        ((), "closed", "completed", "declined"),  # closed without approval grants nothing
        ((hitl.APPROVED_LABEL, hitl.DECLINED_LABEL), "open", None, "declined"),
        ((hitl.APPROVED_LABEL,), "closed", "not_planned", "declined"),
    ],
)
def test_decide(labels: tuple[str, ...], state: str, reason: str | None, status: str) -> None:
    assert hitl.decide(_issue(labels, state, reason)) == status


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("Add dependency: einops", "einops"),
        ("Add dependency: scikit-learn>=1.3", "scikit_learn"),
        ("add dependency: `Triton` for kernels", "triton"),
        ("dependency einops", "einops"),
        ("Add dependency: ", None),
        ("Add dependency: 3dlib", None),
    ],
)
def test_dependency_name(title: str, name: str | None) -> None:
    assert hitl.dependency_name(title) == name


def _state(req: HumanRequest, status: str, said: tuple[str, ...] = ()) -> hitl.RequestState:
    return hitl.RequestState(1, "u", req, status, said)  # type: ignore[arg-type]


def test_only_approved_dependencies_grant_imports() -> None:
    data = HumanRequest("data", "Add dependency: datasets", "x")
    states = [
        _state(DEP, "approved"),
        _state(HumanRequest("dependency", "Add dependency: regex", "x"), "pending"),
        _state(HumanRequest("dependency", "Add dependency: numba", "x"), "declined"),
        _state(data, "approved"),
    ]
    assert hitl.approved_imports(states) == ("einops",)


def test_requests_context_is_bounded_text() -> None:
    assert hitl.requests_context([]) == ""
    text = hitl.requests_context([_state(DEP, "approved", ("done: pip install einops",))])
    assert "[approved] dependency: Add dependency: einops" in text
    assert "human: done: pip install einops" in text
    many = [_state(DEP, "pending", ("x" * 300,))] * 50
    assert len(hitl.requests_context(many, max_chars=500)) <= 500


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    bad = HumanRequest("money", "A GPU", "faster")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown request kind"):
        hitl.open_requests(LocalForge(tmp_path), [bad])


def test_a_body_whose_hidden_data_was_edited_away_is_skipped(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    [issue] = hitl.open_requests(forge, [DEP])
    forge.update_issue(issue.number, "a human rewrote everything")
    assert hitl.read_requests(forge) == []


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.output


def test_cli_lists_approves_and_declines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    forge = LocalForge(tmp_path / ".darwin" / "forge")
    other = HumanRequest("script", "Run the data preparation", "needs the corpus", "g002-000", 2)
    dep, script = hitl.open_requests(forge, [DEP, other])

    code, out = _run(["requests"])
    assert code == 0 and f"#{dep.number}" in out and "pending" in out and "g002-000" in out

    code, out = _run(["requests", "approve", str(dep.number), "--comment", "einops 0.8 added"])
    assert code == 0 and f"approved #{dep.number}" in out
    code, _ = _run(["requests", "decline", str(script.number)])
    assert code == 0

    states = {s.number: s for s in hitl.read_requests(forge, acknowledge=False)}
    assert states[dep.number].status == "approved"
    assert states[dep.number].human_comments == ("einops 0.8 added",)
    assert states[script.number].status == "declined"
    assert forge.get_issue(script.number).state_reason == "not_planned"

    code, out = _run(["requests"])
    assert "no pending requests" in out
    code, out = _run(["requests", "--all"])
    assert "approved" in out and "einops 0.8 added" in out


def test_approving_a_data_request_says_how_to_hand_over_the_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    forge = LocalForge(tmp_path / ".darwin" / "forge")
    data = HumanRequest("data", "More training data: stalled", "measured", "g003-000", 3)
    [issue, dep] = hitl.open_requests(forge, [data, DEP])
    code, out = _run(["requests", "approve", str(issue.number)])
    assert code == 0 and "budget.data (now 'data/shakespeare_char')" in out
    assert "darwin data prepare --input FILE --out DIR" in out
    code, out = _run(["requests", "approve", str(dep.number)])
    assert code == 0 and "budget.data" not in out  # only a data request is answered with a corpus


def test_cli_refuses_what_is_not_a_local_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    forge = LocalForge(tmp_path / ".darwin" / "forge")
    other = forge.upsert_issue("x=1", "not a request", "body", labels=("bug",))
    result = CliRunner().invoke(cli, ["requests", "approve", str(other.number)])
    assert result.exit_code != 0 and "not a darwin request" in str(result.exception)

    (tmp_path / "darwin.toml").write_text('[forge]\nkind = "github"\nrepository = "o/r"\n')
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    result = CliRunner().invoke(cli, ["requests", "decline", "1"])
    assert result.exit_code != 0 and "label the issue" in str(result.exception)


def test_approval_reaches_prompt_memory_and_mutator_and_a_decline_is_not_asked_again(
    tmp_path: Path,
) -> None:
    from darwin_bot.config import Config
    from darwin_bot.llm import Guidance, from_memory
    from darwin_bot.llm.offline import requests as asks
    from darwin_bot.publish import ForgePublisher
    from darwin_bot.store import MemoryStore

    forge, memory = LocalForge(tmp_path / "forge"), MemoryStore(tmp_path / "memory")
    pub = ForgePublisher(forge, None, Config(), memory)  # type: ignore[arg-type]
    lion = HumanRequest("dependency", "Add dependency: lion_pytorch", "ranked first", "g001-000", 1)
    stall = HumanRequest(
        "data", "More training data: the held-out loss has stalled", "1.2", "g002-000", 2
    )
    pub.requests([lion, stall])
    assert {r["key"]: r["state"] for r in memory.requests()} == {
        lion.key: "pending",
        stall.key: "pending",
    }
    [li, st] = sorted(
        forge.list_issues(label=hitl.REQUEST_LABEL, state="all"), key=lambda i: i.number
    )
    forge.set_labels(li.number, add=(hitl.APPROVED_LABEL,))
    forge.close_issue(st.number, reason="not_planned")

    context, imports = pub.request_context()
    assert imports == ("lion_pytorch",)
    assert "`lion_pytorch` is now an allowed import" in context
    assert {r["key"]: r["state"] for r in memory.requests()} == {
        lion.key: "approved",
        stall.key: "declined",
    }
    evidence = from_memory(memory)
    assert stall.key in evidence.declined
    said: set[str] = set()
    again = HumanRequest("data", stall.title, "still stalled: 1.19", "g003-000", 3)
    assert asks.wanted([again], Guidance("g003-000", "seed", 3, evidence), said) == []


def test_pending_lines_show_the_reason_and_how_to_answer(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path)
    [issue] = hitl.open_requests(forge, [DEP])
    lines = hitl.pending_lines(hitl.read_requests(forge, acknowledge=False))
    assert lines[0] == f"#{issue.number} dependency: Add dependency: einops (asked by g001-002)"
    assert lines[1] == "    why: clearer reshapes"
    assert f"darwin requests approve {issue.number}" in lines[2]


def test_demo_output_says_what_an_approval_unlocks_and_how_to_answer_from_here(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from darwin_bot.cli.demo import _print_requests

    forge = LocalForge(tmp_path / "demo" / ".darwin" / "forge")
    lion = HumanRequest("dependency", "Add dependency: lion_pytorch", "ranked first", "g001-001", 1)
    stall = HumanRequest("data", "More training data: the held-out loss has stalled", "-", "", 2)
    split = HumanRequest("restructure", "Split seed/model.py: near max_file_lines", "-", "", 2)
    [li, st, sp] = hitl.open_requests(forge, [lion, stall, split])
    forge.set_labels(li.number, add=(hitl.APPROVED_LABEL,))
    forge.close_issue(st.number, reason="not_planned")
    _print_requests(forge, Path("demo"))
    out = capsys.readouterr().out
    assert f"#{li.number} approved: dependency: Add dependency: lion_pytorch" in out
    assert "`lion_pytorch` is an allowed import for the next generations' mutations" in out
    assert "edits the offline mutator may now make: lion_optimizer (Train with the Lion" in out
    assert f"#{st.number} declined: data" in out and "not asked again" in out
    assert f"answer: darwin requests --config demo/darwin.toml approve {sp.number}" in out
    assert f"#{li.number} dependency" not in out  # an answered request is not pending
    assert "is not installed" not in out  # lion-pytorch is in the dev extra


def test_demo_output_says_an_approved_dependency_is_not_installed_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from darwin_bot.cli.demo import _print_requests

    forge = LocalForge(tmp_path / "demo" / ".darwin" / "forge")
    ask = HumanRequest("dependency", f"Add dependency: {MISSING}", "ranked first", "g001-001", 1)
    [issue] = hitl.open_requests(forge, [ask])
    forge.set_labels(issue.number, add=(hitl.APPROVED_LABEL,))
    _print_requests(forge, Path("demo"))
    out = capsys.readouterr().out
    assert f"    but `{MISSING}` is not installed where agent code runs" in out
    assert "edits the offline mutator may now make" not in out


MISSING = "not_a_module_zz9"  # approved by the humans, installed nowhere


def test_approving_a_dependency_that_is_not_installed_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    forge = LocalForge(tmp_path / ".darwin" / "forge")
    asked = [
        HumanRequest("dependency", f"Add dependency: {m}", "ranked first", "g001-000", 1)
        for m in ("lion_pytorch", MISSING)
    ]
    [installed, missing] = hitl.open_requests(forge, asked)
    code, out = _run(["requests", "approve", str(missing.number)])
    assert code == 0 and f"note: `{MISSING}` is not installed where agent code runs" in out
    assert "DARWIN_PACKAGES" in out
    code, out = _run(["requests", "approve", str(installed.number)])
    assert code == 0 and "not installed" not in out  # lion-pytorch is in the dev extra


def test_an_approved_import_that_is_not_installed_is_withheld_and_said(scratch) -> None:
    from darwin_bot.cli.progress import Reporter
    from darwin_bot.engine import Engine
    from darwin_bot.git import GitRepo
    from darwin_bot.llm import make_llm
    from darwin_bot.publish import make_publisher
    from tests.engine.test_engine import FakeEvaluator, _cfg

    root = scratch()
    cfg = _cfg()
    publisher = make_publisher(root, cfg)
    asked = [
        HumanRequest("dependency", f"Add dependency: {m}", "ranked first", "g001-000", 1)
        for m in ("lion_pytorch", MISSING)
    ]
    for issue in hitl.open_requests(publisher.forge, asked):
        publisher.forge.set_labels(issue.number, add=(hitl.APPROVED_LABEL,))
    engine = Engine(
        GitRepo(root, prefix=cfg.evolution.branch_prefix),
        cfg,
        evaluator=FakeEvaluator(),  # type: ignore[arg-type]
        llm_factory=lambda seed: make_llm(cfg.llm, seed=seed),
        publisher=publisher,
        progress=Reporter(stream=(log := io.StringIO()), tty=False),
    )
    engine.run(1)
    said = log.getvalue()
    assert "generation 1: approved requests allow import lion_pytorch beyond" in said
    assert f"generation 1: approved import {MISSING} is not installed where agent code" in said
    assert "until then no mutation may import it" in said
    records = list((root / "memory" / "g001" / "offspring").glob("*.json"))
    assert len(records) == cfg.evolution.population - 1
    for p in records:
        assert json.loads(p.read_text())["granted_imports"] == ["lion_pytorch"], p
    context, imports = engine.human_answers(2)
    assert imports == ("lion_pytorch",)
    assert f"Approved but not installed yet, so not allowed: {MISSING}." in context
