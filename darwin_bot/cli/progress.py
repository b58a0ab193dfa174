"""Progress you can see on long work: bars on a terminal, timestamped lines elsewhere (CI).

One small API over tqdm (a well-kept library; a bar written by hand garbles
logs and gets terminals wrong)::

    say = Reporter()                       # the engine's ``say``: say("generation 1: ...")
    with say.task("generation 1 offspring", total=9, unit="agent") as t:
        t.advance(label="g001-003")        # one done; the label names it
    with say.task("training g001-003", total=100, unit="iter") as t:
        t.to(40)                           # absolute position (iterations streamed)

On a terminal each task is a tqdm bar (count, rate, time left) and messages
are written above the bars. Not on a terminal (CI logs, pipes) there are no
bars: each message and each step of a task is one line stamped with the UTC
time and the elapsed seconds, with the time left once it can be estimated;
a task of many small steps (training iterations) prints at most every tenth
of its total, so a log stays readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any


def _left(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    if s < 1:  # "~0s left" is never true while a step is still running: say nothing
        return ""
    return f", ~{s // 60}m{s % 60:02d}s left" if s >= 60 else f", ~{s}s left"


@dataclass
class Task:
    """One unit of long work with a known total; ``advance``/``to`` move it."""

    name: str
    total: int | None
    unit: str
    reporter: Reporter
    done: int = 0
    started: float = 0.0
    _bar: Any = None
    _printed: int = 0

    def eta(self) -> float | None:
        """Seconds left at the mean pace so far (None before the first step or without a total)."""
        if not self.total or self.done <= 0 or self.done >= self.total:
            return None
        elapsed = self.reporter.clock() - self.started
        return elapsed / self.done * max(0, self.total - self.done)

    def advance(self, n: int = 1, label: str = "") -> None:
        self.to(self.done + n, label)

    def to(self, position: int, label: str = "") -> None:
        position = max(self.done, position)
        step, self.done = position - self.done, position
        if self._bar is not None:
            self._bar.update(step)
            if label:
                self._bar.set_postfix_str(label, refresh=False)
            return
        every = max(1, (self.total or 0) // 10) if self.unit == "iter" else 1
        if self.done - self._printed < every and self.done != self.total:
            return
        self._printed = self.done
        of = f"/{self.total}" if self.total else ""
        what = f" {label}" if label else ""
        self.reporter(f"{self.name}: {self.done}{of} {self.unit}{what}{_left(self.eta())}")


@dataclass
class Reporter:
    """Messages and tasks; a drop-in for the engine's ``say`` (callable, with ``started``)."""

    enabled: bool = True
    stream: IO[str] | None = None
    tty: bool | None = None
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.stream = self.stream or sys.stderr
        if self.tty is None:
            self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = self.clock()

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            from tqdm import tqdm

            tqdm.write(msg, file=self.stream)
            return
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elapsed = self.clock() - self.started
        print(f"{now} [{elapsed:7.1f}s] {msg}", file=self.stream, flush=True)

    @contextmanager
    def task(self, name: str, total: int | None, unit: str = "agent") -> Iterator[Task]:
        t = Task(name, total, unit, self, started=self.clock())
        if self.enabled and self.tty:
            from tqdm import tqdm

            t._bar = tqdm(total=total, desc=name, unit=unit, file=self.stream, leave=False)
        try:
            yield t
        finally:
            if t._bar is not None:
                t._bar.close()


class Counter:
    """A task whose steps arrive one call at a time (from an evaluator or an LLM factory).

    ``begin(key, name, total)`` opens a new task when ``key`` changes (a new
    generation), closing the last; ``step(label)`` advances it.
    """

    def __init__(self, reporter: Reporter, unit: str = "agent") -> None:
        self.reporter = reporter
        self.unit = unit
        self._key: object = None
        self._cm: Any = None
        self.task: Task | None = None

    def begin(self, key: object, name: str, total: int | None) -> None:
        if key == self._key and self.task is not None:
            return
        self.close()
        self._key = key
        self._cm = self.reporter.task(name, total, self.unit)
        self.task = self._cm.__enter__()

    def step(self, label: str = "") -> None:
        if self.task is not None:
            self.task.advance(label=label)

    def close(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
        self._cm, self.task = None, None
