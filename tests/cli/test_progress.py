"""Progress: timestamped lines when not on a terminal, tqdm bars on one."""

from __future__ import annotations

import io
import re

from darwin_bot.cli.progress import Counter, Reporter
from darwin_bot.evaluate.iterations import iteration_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_not_a_terminal_prints_timestamped_lines_with_time_left() -> None:
    out, clock = io.StringIO(), Clock()
    say = Reporter(stream=out, tty=False, clock=clock)
    say("generation 1: planning")
    with say.task("generation 1 offspring", total=4) as t:
        clock.now += 10
        t.advance(label="g001-000")
        clock.now += 10
        t.advance(label="g001-001")
    lines = out.getvalue().splitlines()
    assert re.match(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[\s+0\.0s\] generation 1: planning$", lines[0]
    )
    assert lines[1].endswith("generation 1 offspring: 1/4 agent g001-000, ~30s left")
    assert lines[2].endswith("generation 1 offspring: 2/4 agent g001-001, ~20s left")
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue(), "no bar codes in a log"


def test_iterations_print_at_most_every_tenth_and_the_last() -> None:
    out = io.StringIO()
    say = Reporter(stream=out, tty=False, clock=Clock())
    with say.task("training", total=100, unit="iter") as t:
        for it in range(1, 101):
            t.to(it)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].split("] ")[1].startswith("training: 100/100 iter")


def test_a_terminal_gets_a_bar_and_messages_above_it() -> None:
    out = io.StringIO()
    say = Reporter(stream=out, tty=True)
    with say.task("generation 2 offspring", total=3) as t:
        say("a message")
        t.advance(label="g002-000")
    text = out.getvalue()
    assert "a message" in text and "generation 2 offspring" in text and "\r" in text


def test_quiet_prints_nothing_and_the_counter_reopens_per_key() -> None:
    out = io.StringIO()
    say = Reporter(enabled=False, stream=out, tty=False)
    say("x")
    with say.task("t", total=2) as t:
        t.advance()
    assert out.getvalue() == ""
    loud = Reporter(stream=out, tty=False, clock=Clock())
    c = Counter(loud)
    c.begin(1, "gen 1", 2)
    c.step()
    c.begin(1, "gen 1", 2)  # same key: same task
    c.step()
    c.begin(2, "gen 2", 1)
    c.step()
    assert [ln.split("] ")[1] for ln in out.getvalue().splitlines()] == [
        "gen 1: 1/2 agent",  # no "~0s left": a step is still running
        "gen 1: 2/2 agent",
        "gen 2: 1/1 agent",
    ]


def test_iteration_lines_are_parsed_from_the_programs_log() -> None:
    assert iteration_of("iter 40: loss 2.5134, lr 1.00e-03") == 40
    assert iteration_of("preset tiny: 0.1M parameters") is None


def test_darwin_run_wiring_prints_offspring_progress_and_bills_the_ledger(tmp_path, capsys) -> None:
    from darwin_bot.cli import build_engine, make_scratch_repo
    from darwin_bot.config import from_dict
    from darwin_bot.spend import Ledger
    from tests.engine.test_engine import FakeEvaluator

    root = tmp_path / "repo"
    make_scratch_repo(root, "")
    cfg = from_dict(
        {
            "evolution": {"population": 3, "survivors": 1, "seed": 3},
            "budget": {"iters": 10, "repeats": 2},
            "llm": {"backend": "heuristic", "max_usd": 1.0},
        }
    )
    engine = build_engine(root, cfg, evaluator=FakeEvaluator())
    engine.run(1)
    err = capsys.readouterr().err
    assert re.search(r"Z \[\s*[0-9.]+s\] generation 1 offspring: 1/2 agent", err), err
    assert "generation 1 offspring: 2/2 agent" in err
    calls = Ledger(root / "memory" / "spend").calls()
    assert calls and all(c.cost_usd == 0.0 and c.generation == 1 for c in calls)  # offline: free
