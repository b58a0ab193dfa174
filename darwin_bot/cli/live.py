"""What a run shows as it goes: one line per offspring and per training run, a leaderboard per
generation, and a prompt, clean stop on Ctrl-C.

:class:`LiveEvents` is the engine's ``Events`` port over a
``progress.Reporter``: on a terminal a tqdm bar per batch (offspring to make,
runs to train) with the results written above it; elsewhere (CI) timestamped
lines with the time left. Each line names the agent, its status and its
perplexity with the change against the seed. When a generation's summary is
recorded the bars close and ``on_generation`` prints its leaderboard.

:func:`interrupts` is the Ctrl-C path of ``darwin run`` and ``darwin demo``:
one line at once, every sandboxed process ended at once
(``sandbox.proc.stop_all``), then ``RunStopped`` (exit 3): nothing that was cut
short is recorded, and the same command resumes.
"""

from __future__ import annotations

import math
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from darwin_bot.cli.progress import Counter, Reporter
from darwin_bot.core import SEED_AGENT
from darwin_bot.engine import Events
from darwin_bot.errors import RunStopped
from darwin_bot.store import GenerationSummary

HEARTBEAT_S = 30.0  # not on a terminal: a line at least this often while a run trains
STOP_LINE = "darwin: Ctrl-C: stopping now; run the same command again to resume"


def run_line(agent: str, seed: int, result: Any, baseline_ppl: float | None) -> str:
    """``g002-001 #0: ok, perplexity 5.4321 (-1.23% vs seed)``, or the failure and why.

    ``#0`` is the run's random seed; the seed agent's own runs show no change.
    """
    head = f"{agent} #{seed}: {result.status}"
    metrics = result.metrics
    if not result.ok or metrics is None:
        why = " ".join(str(result.reason or "").split())
        return f"{head}: {why[:160]}" if why else head
    ppl = metrics.perplexity
    delta = ""
    if baseline_ppl and math.isfinite(ppl) and agent != SEED_AGENT:
        delta = f" ({100.0 * (ppl - baseline_ppl) / baseline_ppl:+.2f}% vs seed)"
    return f"{head}, perplexity {ppl:.4f}{delta}"


def offspring_line(record: Any) -> str:
    """``g002-001 (mutate of seed): ok: <its summary>``, or why it was rejected."""
    what = f"{record.agent} ({record.kind} of {', '.join(record.parents)})"
    if record.ok:
        summary = " ".join((record.summary or "").split())
        return f"{what}: made, smoke test passed: {summary[:120]}"
    return f"{what}: {record.status}: {' '.join(str(record.reason).split())[:160]}"


class LiveEvents(Events):
    """The engine's events shown as they happen (see the module docstring)."""

    def __init__(
        self,
        say: Reporter,
        on_generation: Callable[[GenerationSummary], None] | None = None,
    ) -> None:
        self.say = say
        self.on_generation = on_generation
        self.batch = Counter(say)
        self._batches = 0
        self._beat = 0.0  # when the last heartbeat line was written
        self.heartbeat_s = HEARTBEAT_S

    def iteration(self, n: int) -> None:
        """A training run reached iteration ``n``: on a terminal in the bar, else a line at
        most every ``heartbeat_s`` (a long run is never a silent stretch in a CI log)."""
        task = self.batch.task
        if task is None or not self.say.enabled:
            return
        if task._bar is not None:
            task._bar.set_postfix_str(f"iter {n}")
            return
        now = self.say.clock()
        if now - max(self._beat, task.started) >= self.heartbeat_s:
            self._beat = now
            self.say(
                f"{task.name}: {task.done}/{task.total} {task.unit} done, one at iteration {n}"
            )

    def begin(self, what: str, total: int, unit: str) -> None:
        self._batches += 1  # a new key: every batch is its own bar
        self.batch.unit = unit
        self.batch.begin(self._batches, what, total)
        if not self.say.tty:
            self.say(f"{what}: {total} {unit}{'s' if total != 1 else ''} to go")

    def _step(self, line: str) -> None:
        if self.say.tty or self.batch.task is None:
            self.say(line)  # above the bar; the bar keeps count and time
            self.batch.step()
        else:
            self.batch.step(label=line)

    def offspring(self, record: Any) -> None:
        self._step(offspring_line(record))

    def run(self, agent: str, seed: int, result: Any, baseline_ppl: float | None) -> None:
        self._step(run_line(agent, seed, result, baseline_ppl))

    def generation(self, summary: Any) -> None:
        self.batch.close()
        if self.on_generation is not None:  # a leaderboard is a result: shown with --quiet too
            self.on_generation(summary)


@contextmanager
def interrupts(stream: Any = None) -> Iterator[None]:
    """Ctrl-C inside: one line at once, the sandboxes ended, then ``RunStopped`` (exit 3).

    A second Ctrl-C while stopping is not needed: the first already ended every
    child process; it raises the same way.
    """
    from darwin_bot.evaluate import stop_all

    out = stream or sys.stderr

    def on_sigint(signum: int, frame: Any) -> None:
        print(STOP_LINE, file=out, flush=True)
        stop_all()
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    except KeyboardInterrupt as exc:
        raise RunStopped(
            "stopped by Ctrl-C before the work was done; what finished is recorded, "
            "run the same command again to resume"
        ) from exc
    finally:
        signal.signal(signal.SIGINT, previous)
