"""Score a learning curve's checkpoints in one scoring sandbox, with no agent code.

The worker (``graph_worker.py``, with ``weights`` in its job) runs the final
model's graph, then the windows and probes once per checkpoint, with that
checkpoint's weights in it (``curve_weights.py``): the final score's
interpreter, no start of its own. Each checkpoint's logits go to a :class:`Scorer` of its own,
so each point gets the same held-out loss and causality verdict as a final
score; a checkpoint that does not fit the graph comes back as its reason.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from darwin_bot.evaluate.score_run import CurvePart
from darwin_bot.evaluate.scoring import ProbePlan, Scorer, ScoreRejected, ScoreTruncated

UNFIT = b"UNFT"
MAX_REASON = 4096


@dataclass(frozen=True)
class PointScore:
    """One checkpoint's score: the held-out loss, or None and why."""

    val_loss: float | None
    reason: str = ""
    reads_ahead: bool = False  # its probes disagreed: the evaluation is rejected


class _Prepend:
    """``stream`` with ``head`` (already read) put back in front."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self.head, self.stream = head, stream

    def read(self, n: int = -1) -> bytes:
        if not self.head:
            return self.stream.read(n)
        if n < 0:
            out, self.head = self.head + self.stream.read(), b""
            return out
        out, self.head = self.head[:n], self.head[n:]
        return out + (self.stream.read(n - len(out)) if len(out) < n else b"")


@dataclass
class CurveConsumer:
    """Reads the worker's output: for each checkpoint, its frames or why it does not fit."""

    scorers: list[Scorer]
    unfit: dict[int, str] = field(default_factory=dict)
    done: int = 0  # checkpoints read to the end

    def consume(self, stream: IO[bytes]) -> None:
        for k, scorer in enumerate(self.scorers):
            head = stream.read(4)
            if head == UNFIT:
                (n,) = struct.unpack("<I", _read(stream, 4))
                self.unfit[k] = _read(stream, min(n, MAX_REASON)).decode("utf-8", "replace")
            else:
                scorer.consume(_Prepend(head, stream), last=False)  # type: ignore[arg-type]
            self.done = k + 1
        if stream.read(1):
            raise ScoreRejected(
                "the scoring worker sent more output than the checkpoints asked for"
            )


def _read(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ScoreTruncated("the scoring worker stopped in the middle of a checkpoint")
    return data


def curve_part(
    plan: ProbePlan, vocab: int, paths: tuple[Path, ...]
) -> tuple[CurvePart, CurveConsumer]:
    """What the scoring sandbox runs after the final model: each checkpoint on ``plan``."""
    consumer = CurveConsumer([Scorer(plan, vocab) for _ in paths])
    return CurvePart(plan, paths, consumer.consume), consumer


def point_scores(consumer: CurveConsumer, stopped: str) -> list[PointScore]:
    """Each checkpoint's score from what ``consumer`` read (``stopped``: why the run ended early)."""
    scores = []
    for k, scorer in enumerate(consumer.scorers):
        if k in consumer.unfit:
            scores.append(PointScore(None, f"the checkpoint does not fit: {consumer.unfit[k]}"))
        elif k >= consumer.done:
            scores.append(PointScore(None, stopped or "not scored"))
        else:
            scores.append(_verdict(scorer))
    return scores


def _verdict(scorer: Scorer) -> PointScore:
    try:
        scorer.verdict()
    except ScoreRejected as exc:
        return PointScore(None, str(exc), reads_ahead=True)
    except ScoreTruncated as exc:
        return PointScore(None, str(exc))
    return PointScore(scorer.val_loss)
