"""The iteration a training program's log line reports: shown as progress, never trusted."""

from __future__ import annotations

import re
from collections.abc import Callable

# The seed's log line per logging interval: "iter 40: loss 2.5134, lr ..."
ITER_LINE = re.compile(r"^iter (\d+): loss")


def iteration_of(line: str) -> int | None:
    """The training iteration a program's log line reports, or None (a claim, for display only)."""
    m = ITER_LINE.match(line.strip())
    return int(m.group(1)) if m else None


def iteration_watcher(on_iteration: Callable[[int], None] | None) -> Callable[[str], None] | None:
    """A log-line watcher passing on the iteration numbers lines report (None: no watcher)."""
    if on_iteration is None:
        return None

    def watch(line: str) -> None:
        n = iteration_of(line)
        if n is not None:
            on_iteration(n)

    return watch
