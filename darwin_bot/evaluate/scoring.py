"""The trusted side of scoring: which windows, and the loss of the logits that come back.

The held-out split is cut into non-overlapping windows of the preset's context
length; a fixed, seeded subset of them (or all, with ``full``) is scored. The
worker gets only the inputs; the targets stay here. Hidden among the windows,
in a shuffled order, are causality probes: a copy of a scored window whose
tokens after a random position ``t`` are replaced. A causal model gives the
same logits at positions ``<= t`` for both; one that peeks ahead does not.

The probes catch a model that reads the future (a dropped causal mask, a
shifted input). A model written to evade them, by comparing the rows of its
input file, is out of this check's reach; the held-out targets still never
leave this process.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from darwin_bot.evaluate.score_worker import MAGIC, PARAMS_MAGIC

WINDOW_SEED = 20_260_205  # fixed: every agent is scored on the same windows
# Two runs of the same causal model may differ by float reordering (batch
# composition, threads); a model that reads the future differs by far more.
CAUSAL_RTOL = 1e-3
CAUSAL_ATOL = 1e-3
MAX_BATCH_BYTES = 64 * 1024 * 1024


class ScoreRejected(Exception):
    """The model broke the scoring contract (shape, non-finite, non-causal)."""


class ScoreTruncated(Exception):
    """The worker stopped before sending every batch (it crashed or was killed)."""


@dataclass(frozen=True)
class Probe:
    original_row: int
    probe_row: int
    t: int  # logits at positions 0..t must not change


@dataclass
class WindowPlan:
    """The rows sent to the worker, in the order sent."""

    inputs: np.ndarray  # [R, T] int64
    targets: np.ndarray  # [R, T] int64 (rows that are probes: unused)
    scored: np.ndarray  # [R] bool: counts towards the loss
    probes: list[Probe]
    batch: int

    @property
    def context(self) -> int:
        return int(self.inputs.shape[1])

    @property
    def scored_tokens(self) -> int:
        return int(self.scored.sum()) * self.context


def plan_windows(
    val: np.ndarray,
    context: int,
    vocab_size: int,
    n_windows: int | None,
    n_probes: int = 4,
) -> WindowPlan:
    """Windows of ``val`` to score (``n_windows=None``: all), with probes, shuffled."""
    available = (len(val) - 1) // context
    if available < 1:
        raise ValueError(
            f"the held-out split has {len(val)} tokens, fewer than one window of {context}"
        )
    rng = np.random.default_rng(WINDOW_SEED)
    if n_windows is None or n_windows >= available:
        chosen = np.arange(available)
    else:
        chosen = np.sort(rng.choice(available, size=n_windows, replace=False))
    starts = chosen * context
    offsets = np.arange(context)
    inputs = val[starts[:, None] + offsets].astype(np.int64)
    targets = val[starts[:, None] + offsets + 1].astype(np.int64)

    n_probes = min(n_probes, len(chosen))
    probe_of = rng.choice(len(chosen), size=n_probes, replace=False)
    probe_t = rng.integers(0, context - 1, size=n_probes)  # leaves at least one token to change
    probe_inputs = inputs[probe_of].copy()
    for i, t in enumerate(probe_t):
        # the new tail is real text from elsewhere in the split, so a probe reads
        # like any other window; only its first token is forced to differ
        src = int(rng.integers(0, len(val) - context))
        tail = val[src : src + context - t - 1].astype(np.int64)
        if tail[0] == probe_inputs[i, t + 1]:
            tail[0] = (tail[0] + 1) % vocab_size
        probe_inputs[i, t + 1 :] = tail

    all_inputs = np.concatenate([inputs, probe_inputs])
    all_targets = np.concatenate([targets, np.zeros_like(probe_inputs)])
    scored = np.concatenate([np.ones(len(inputs), bool), np.zeros(n_probes, bool)])
    order = rng.permutation(len(all_inputs))
    position = np.empty_like(order)
    position[order] = np.arange(len(order))  # old row -> row as sent
    probes = [
        Probe(int(position[probe_of[i]]), int(position[len(inputs) + i]), int(probe_t[i]))
        for i in range(n_probes)
    ]
    batch = max(1, min(32, MAX_BATCH_BYTES // (context * max(vocab_size, 1) * 4)))
    return WindowPlan(all_inputs[order], all_targets[order], scored[order], probes, batch)


@dataclass
class Scorer:
    """Consumes the worker's frames; keeps the loss and the probe logits."""

    plan: WindowPlan
    vocab_size: int
    num_params: int = 0
    nll_sum: float = 0.0
    tokens: int = 0
    rows_done: int = 0
    _kept: dict[int, np.ndarray] = field(default_factory=dict)

    def consume(self, stream: IO[bytes]) -> None:
        """Read every frame from ``stream``; raise ScoreRejected/ScoreTruncated."""
        head = _read(stream, 12)
        if head[:4] != PARAMS_MAGIC:
            raise ScoreRejected("the scoring worker's output is not in the expected format")
        (self.num_params,) = struct.unpack("<Q", head[4:])
        watched = {p.original_row: p.t for p in self.plan.probes}
        watched.update({p.probe_row: p.t for p in self.plan.probes})
        total = len(self.plan.inputs)
        while self.rows_done < total:
            rows = min(self.plan.batch, total - self.rows_done)
            logits = self._frame(stream, rows)
            for j in range(rows):
                row = self.rows_done + j
                if row in watched:
                    self._kept[row] = logits[j, : watched[row] + 1].copy()
                if self.plan.scored[row]:
                    self._add_loss(logits[j], self.plan.targets[row])
            self.rows_done += rows
        if stream.read(1):
            raise ScoreRejected("the scoring worker sent more output than the windows asked for")
        self._check_causal()

    def _frame(self, stream: IO[bytes], rows: int) -> np.ndarray:
        head = _read(stream, 8)
        if head[:4] != MAGIC:
            raise ScoreRejected("the scoring worker's output is not in the expected format")
        (ndim,) = struct.unpack("<I", head[4:])
        if ndim > 8:
            raise ScoreRejected(f"forward returned a tensor with {ndim} dimensions")
        shape = struct.unpack(f"<{ndim}I", _read(stream, 4 * ndim))
        want = (rows, self.plan.context, self.vocab_size)
        if tuple(shape) != want:
            raise ScoreRejected(
                f"forward returned logits of shape {list(shape)}, expected [B, T, vocab] = {list(want)}"
            )
        data = _read(stream, 4 * math.prod(shape))
        logits = np.frombuffer(data, dtype="<f4").reshape(shape)
        if not np.isfinite(logits).all():
            raise ScoreRejected("forward returned non-finite logits (nan or inf)")
        return logits

    def _add_loss(self, logits: np.ndarray, targets: np.ndarray) -> None:
        x = logits.astype(np.float64)
        top = x.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(x - top).sum(axis=-1)) + top[:, 0]
        nll = lse - x[np.arange(len(targets)), targets]
        self.nll_sum += float(nll.sum())
        self.tokens += len(targets)

    def _check_causal(self) -> None:
        for p in self.plan.probes:
            a, b = self._kept[p.original_row], self._kept[p.probe_row]
            if not np.allclose(a, b, rtol=CAUSAL_RTOL, atol=CAUSAL_ATOL):
                diff = float(np.abs(a - b).max())
                raise ScoreRejected(
                    f"not causal: logits at positions <= {p.t} changed by up to {diff:.3g} "
                    f"when only tokens after {p.t} changed"
                )

    @property
    def val_loss(self) -> float:
        return self.nll_sum / self.tokens if self.tokens else math.inf


def _read(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ScoreTruncated("the scoring worker stopped before sending every window's logits")
    return data
