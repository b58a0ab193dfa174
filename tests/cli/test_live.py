"""What a run shows as it goes (darwin_bot.cli.live), and Ctrl-C: one line, the children ended, exit 3."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from darwin_bot.cli.live import STOP_LINE, LiveEvents, offspring_line, run_line
from darwin_bot.cli.progress import Reporter
from darwin_bot.core import Budget, EvalResult, Metrics, Status
from darwin_bot.store import GenerationSummary, OffspringRecord

ROOT = Path(__file__).resolve().parents[2]


def _result(status: Status, ppl: float | None = None, reason: str = "") -> EvalResult:
    metrics = Metrics(1.0, ppl, 0.01, 100.0, 1.0, 10.0) if ppl is not None else None
    return EvalResult(status, reason, metrics, "cpu", 0, Budget(iters=10), "3", "t")


def test_a_run_line_names_the_agent_its_status_perplexity_and_change() -> None:
    ok = run_line("g002-001", 0, _result(Status.OK, 4.9), 5.0)
    assert ok == "g002-001 #0: ok, perplexity 4.9000 (-2.00% vs seed)"
    failed = run_line("g002-003", 1, _result(Status.FAILED, reason="exit code 1\nTraceback"), 5.0)
    assert failed == "g002-003 #1: failed: exit code 1 Traceback"
    assert run_line("seed", 2, _result(Status.OK, 5.1), 5.0) == "seed #2: ok, perplexity 5.1000"


def test_offspring_lines_say_made_or_why_not() -> None:
    rec = OffspringRecord("g001-000", 1, "mutate", ("seed",), Status.OK, "", "abc", summary="lr up")
    assert offspring_line(rec) == "g001-000 (mutate of seed): made, smoke test passed: lr up"
    bad = OffspringRecord("g001-001", 1, "crossover", ("a", "b"), Status.REJECTED, "no edit", None)
    assert offspring_line(bad) == "g001-001 (crossover of a, b): rejected: no edit"


def test_each_run_is_a_line_and_each_generation_prints_as_it_ends() -> None:
    out, shown = io.StringIO(), []
    say = Reporter(stream=out, tty=False)
    events = LiveEvents(say, on_generation=shown.append)
    events.begin("generation 1 training runs", 2, "run")
    events.run("g001-000", 0, _result(Status.OK, 4.5), 5.0)
    events.run("g001-001", 0, _result(Status.TIMEOUT, reason="past 60 s"), 5.0)
    events.generation(GenerationSummary(1, (), (), ()))
    lines = [ln.split("] ", 1)[1] for ln in out.getvalue().splitlines()]
    assert lines.pop(0) == "generation 1 training runs: 2 runs to go"
    assert lines[0].startswith(
        "generation 1 training runs: 1/2 run g001-000 #0: ok, perplexity 4.5000 (-10.00% vs seed)"
    )
    assert lines[1] == "generation 1 training runs: 2/2 run g001-001 #0: timeout: past 60 s"
    assert shown == [GenerationSummary(1, (), (), ())]  # the recorded summary, as it is
    assert events.batch.task is None  # the bar is closed before the leaderboard is printed


def test_a_long_run_is_not_a_silent_stretch() -> None:
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    out, clock = io.StringIO(), Clock()
    events = LiveEvents(Reporter(stream=out, tty=False, clock=clock))
    events.begin("generation 2 training runs", 3, "run")
    for n, at in ((10, 5.0), (20, 31.0), (30, 40.0), (40, 62.0)):
        clock.now = at
        events.iteration(n)
    beats = [ln.split("] ", 1)[1] for ln in out.getvalue().splitlines()][1:]
    assert beats == [
        "generation 2 training runs: 0/3 run done, one at iteration 20",
        "generation 2 training runs: 0/3 run done, one at iteration 40",
    ]


def test_on_a_terminal_results_are_lines_above_the_bar() -> None:
    out = io.StringIO()
    events = LiveEvents(Reporter(stream=out, tty=True))
    events.begin("generation 1 offspring", 1, "agent")
    rec = OffspringRecord("g001-000", 1, "mutate", ("seed",), Status.OK, "", "abc", summary="x")
    events.offspring(rec)
    assert "g001-000 (mutate of seed): made, smoke test passed: x" in out.getvalue()
    assert events.batch.task is not None and events.batch.task.done == 1


_STOPPABLE = textwrap.dedent(
    """
    import sys, threading
    from concurrent.futures import ThreadPoolExecutor
    from darwin_bot.errors import RunStopped
    from darwin_bot.evaluate.sandbox.proc import run_process
    from darwin_bot.cli.live import interrupts

    def sandbox(_):
        return run_process(["sh", "-c", "echo $$ >> pids; exec sleep 120"], backend="none",
                           env={"PATH": "/usr/bin:/bin"}, timeout_s=300)

    try:
        with interrupts():
            with ThreadPoolExecutor(2) as pool:  # as the engine evaluates, workers at a time
                list(pool.map(sandbox, range(2)))
    except RunStopped as exc:
        print(exc, file=sys.stderr)
        sys.exit(exc.exit_code)
    """
)


def test_ctrl_c_is_acknowledged_at_once_and_ends_the_sandboxes(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _STOPPABLE],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids = tmp_path / "pids"
    deadline = time.monotonic() + 60
    while (
        time.monotonic() < deadline and len(pids.read_text().split() if pids.exists() else []) < 2
    ):
        time.sleep(0.1)
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 2
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 3, err
    assert took < 5.0, f"Ctrl-C took {took:.1f} s"
    assert err.splitlines()[0] == STOP_LINE
    assert "run the same command again to resume" in err.splitlines()[-1]
    time.sleep(0.5)
    for pid in children:  # the sandboxes' sleep 120 did not outlive the stop
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_a_run_shows_each_generation_as_it_ends_and_names_every_run(tmp_path: Path) -> None:
    """The engine's events, in order: the offspring and the runs of a generation, then its
    leaderboard, before the next generation starts; a resumed run says what it skips."""
    from darwin_bot.cli import make_scratch_repo
    from darwin_bot.config import from_dict
    from darwin_bot.engine import Engine
    from darwin_bot.git import GitRepo
    from darwin_bot.llm import make_llm
    from tests.engine.test_engine import FakeEvaluator

    root = tmp_path / "repo"
    make_scratch_repo(root, "")
    cfg = from_dict(
        {
            "evolution": {"population": 3, "survivors": 1, "seed": 1},
            "budget": {"iters": 10, "repeats": 2},
            "llm": {"backend": "heuristic"},
        }
    )
    out = io.StringIO()
    say = Reporter(stream=out, tty=False)

    def shown(summary: GenerationSummary) -> None:
        say(f"LEADERBOARD {summary.generation}")

    def engine() -> Engine:
        return Engine(
            GitRepo(root, prefix=cfg.evolution.branch_prefix),
            cfg,
            evaluator=FakeEvaluator(),
            llm_factory=lambda s: make_llm(cfg.llm, seed=s),
            progress=say,  # type: ignore[arg-type]
            events=LiveEvents(say, on_generation=shown),
        )

    engine().run(2)
    lines = [ln.split("] ", 1)[1] for ln in out.getvalue().splitlines()]
    boards = [i for i, ln in enumerate(lines) if ln.startswith("LEADERBOARD")]
    assert [lines[i] for i in boards] == ["LEADERBOARD 0", "LEADERBOARD 1", "LEADERBOARD 2"]
    gen2 = [i for i, ln in enumerate(lines) if ln.startswith("generation 2")]
    assert boards[1] < min(gen2), "generation 1's leaderboard is shown before generation 2 starts"
    runs = [ln for ln in lines if re.search(r"training runs: \d+/\d+ run ", ln)]
    assert runs and all(
        re.search(r"run (seed|g00\d-\d{3}) #\d+: ok, perplexity \d", ln) for ln in runs
    )
    assert any("% vs seed)" in ln for ln in runs if "run g00" in ln)
    made = [
        ln for ln in lines if "offspring:" in ln and ("(mutate of" in ln or "(crossover of" in ln)
    ]
    assert made, lines
    assert not any("~0s left" in ln for ln in lines)

    # Resumed after its last generation: the seed's runs are cached, and it says so.
    out.truncate(0)
    out.seek(0)
    again = engine()
    again.evals.evaluate_all([(again.seed_head(), s) for s in again.evals.seeds(2)], what="resumed")
    assert "resumed training runs: 2 of 2 already measured (cached)" in out.getvalue()
