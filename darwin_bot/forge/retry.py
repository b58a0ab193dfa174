"""The one retry policy for forge calls: exponential backoff that honours the server.

Where retries live. The LLM backend uses the openai client's own retries
(``max_retries``, ``Retry-After`` up to two minutes; see
``llm.openai_backend``): nothing of ours is needed there. GitHub is the one
place with code of our own, because PyGithub's ``GithubRetry`` retries single
HTTP requests, POST included (its default ``allowed_methods`` adds POST): a
POST whose answer is lost (a 502 after the write) is sent again and opens a
second issue, PR or comment. This policy retries a whole ``GitHubForge``
method instead, and every method is an upsert that first reads what the
server has (by hidden marker), so a retry converges instead of duplicating.
What it adds beyond urllib3's ``Retry``: that method-level unit, and giving up
at once (with the time to come back) when the server asks for a wait over
``max_wait_s``.

The adapter classifies each failure (see ``forge.github``): not transient
(re-raised at once), transient with no advice (backoff), or transient with a
server-given wait (``Retry-After``, or the primary rate limit's reset time).
A server-given wait longer than ``max_wait_s`` is not worth sleeping through in
CI: the call gives up at once and the error says when to try again.

Tests build a policy with tiny delays and a fake ``sleep`` to run in
milliseconds and to assert the waits.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Transient:
    """A failure worth retrying; ``wait_s`` is the server's advice, if it gave any."""

    reason: str
    wait_s: float | None = None


class GaveUp(Exception):
    """Raised by :meth:`RetryPolicy.run` when retries are exhausted or the wait is too long.

    ``__cause__`` is the last failure; ``transient`` says why it was retried.
    """

    def __init__(self, message: str, transient: Transient) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; backoff ``base_delay_s * 2**n`` capped at ``max_delay_s``."""

    attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_wait_s: float = 300.0
    jitter: float = 0.1
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")

    def delay(self, retry: int, advice: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        if advice is not None:
            return max(0.0, advice)
        backoff = min(self.max_delay_s, self.base_delay_s * (2**retry))
        return backoff * (1.0 + self.jitter * random.random())

    def run(self, fn: Callable[[], T], classify: Callable[[Exception], Transient | None]) -> T:
        """Call ``fn`` until it succeeds; ``classify`` returns None for a permanent failure.

        A permanent failure propagates unchanged; a transient one that survives
        every attempt (or asks for a wait over ``max_wait_s``) raises ``GaveUp``.
        """
        for retry in range(self.attempts):
            try:
                return fn()
            except Exception as exc:  # classify() decides; anything it rejects re-raises
                transient = classify(exc)
                if transient is None:
                    raise
                wait = self.delay(retry, transient.wait_s)
                if retry + 1 >= self.attempts:
                    raise GaveUp(
                        f"{transient.reason}; gave up after {self.attempts} attempts", transient
                    ) from exc
                if wait > self.max_wait_s:
                    raise GaveUp(
                        f"{transient.reason}; the server asks to wait {wait:.0f}s "
                        f"(over the limit of {self.max_wait_s:.0f}s): try again later",
                        transient,
                    ) from exc
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover
