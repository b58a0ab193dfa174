"""The trusted side of scoring: twin windows, and the loss of the logits that come back.

The protocol (why it holds is in docs/threat-model.md):

* The held-out split is cut into non-overlapping windows of the preset's
  context length ``T``. A fixed, seeded subset (or all, with ``full``) is
  scored, so every agent is scored on the same text.
* Every scored window gets a **twin**: a copy that agrees with it up to a cut
  ``t`` and continues, after ``t``, with real held-out text from elsewhere (a
  window that is sent to no one), so neither version looks synthetic. Decoy
  pairs (an unscored window and its twin) raise the number of pairs to at
  least ``min_pairs``; from inside a sandbox a decoy looks like any window.
* There are two scoring sandboxes, run one after the other. Each gets exactly
  one version of every pair (which one: a coin flip per pair), in its own
  shuffled order. The cuts, the coin flips, the decoys and the orders come
  from a secret random source per evaluation, never from a seed in this file,
  which the agent's code can read.
* Here, the log-softmax at positions ``<= t`` of the two versions of every pair
  are compared: a causal model gives the same values; any difference over
  :data:`CAUSAL_TOL` rejects the run. The loss is computed here, from the
  original windows' logits at positions ``0..T-2`` (whose targets are the
  window's own next tokens), against targets that never leave this process.

A model that reads one token ahead at position ``p`` changes its output at
``p`` only when token ``p + 1`` differs between the versions, that is at
``p = t`` exactly. The sandbox that holds the original cannot know ``t`` (it
is drawn after, and independently of, the text), and the one that holds the
twin has no copy of the original's tokens after ``t``. So a model that peeks
at a fraction ``q`` of positions is caught on each pair with probability ``q``
and passes all ``N`` pairs with probability ``(1 - q) ** N``.
"""

from __future__ import annotations

import math
import secrets
import struct
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from darwin_bot.evaluate.score_worker import MAGIC, PARAMS_MAGIC

WINDOW_SEED = 20_260_205  # fixed: every agent is scored on the same windows (not the cuts)
# Two runs of the same causal model differ only by float reordering (another
# batch, another thread count): about 1e-6 in a float32 log-probability. A
# model that reads the future moves the log-probability of the next token by
# far more. The tolerance also bounds what an undetected nudge can buy: at most
# CAUSAL_TOL nats at a compared position, a 0.1% change of perplexity.
CAUSAL_TOL = 1e-3
MAX_BATCH_BYTES = 64 * 1024 * 1024
# Scored + decoy pairs; see detection_probability(). A peek at 1 position in 63 (a ~4%
# perplexity gain, measured) passes 128 pairs 13% of the time, 512 pairs 0.03%.
MIN_PAIRS = 512


class ScoreRejected(Exception):
    """The model broke the scoring contract (shape, non-finite, non-causal, lying weights)."""


class ScoreTruncated(Exception):
    """The worker stopped before sending every batch (it crashed or was killed)."""


def detection_probability(q: float, pairs: int) -> float:
    """P(a model that peeks one token ahead at a fraction ``q`` of positions is rejected)."""
    return 1.0 - (1.0 - q) ** pairs


@dataclass(frozen=True)
class Side:
    """What one scoring sandbox is sent: one version of every pair, shuffled."""

    inputs: np.ndarray  # [R, T] int64, in the order sent
    pair: np.ndarray  # [R] index of the row's pair
    original: np.ndarray  # [R] bool: the original window (else its twin)


@dataclass
class TwinPlan:
    """Pairs of windows and the two sides they are split over."""

    originals: np.ndarray  # [P, T] int64
    twins: np.ndarray  # [P, T] int64
    targets: np.ndarray  # [P, T] int64 (decoys' unused)
    cuts: np.ndarray  # [P] positions 0..t must agree
    scored: np.ndarray  # [P] bool: the original counts towards the loss
    sides: tuple[Side, Side]
    batch: int
    suffix_source: str  # "held-out" or "train" (when the split has no spare windows)

    @property
    def context(self) -> int:
        return int(self.originals.shape[1])

    @property
    def pairs(self) -> int:
        return int(len(self.cuts))

    @property
    def scored_windows(self) -> int:
        return int(self.scored.sum())


def _suffix(
    pool: np.ndarray, avoid: int, length: int, vocab: int, rng: np.random.Generator
) -> np.ndarray:
    """``length`` tokens of ``pool`` (one spare window) whose first token is not ``avoid``."""
    starts = rng.permutation(len(pool) - length + 1)
    for s in starts:
        if pool[s] != avoid:
            return pool[s : s + length].astype(np.int64)
    tail = pool[:length].astype(np.int64)  # a window of one repeated token: shift it
    tail[0] = (int(avoid) + 1) % vocab
    return tail


def plan_twins(
    val: np.ndarray,
    context: int,
    vocab_size: int,
    n_windows: int | None,
    *,
    min_pairs: int = MIN_PAIRS,
    spare_text: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> TwinPlan:
    """Scored windows of ``val`` (``None``: all) and decoys, each with a twin, split in two sides.

    ``rng`` defaults to a secret source; pass one only in tests. Twin suffixes
    come from held-out windows that no side receives; when the split has too
    few (``full``), from ``spare_text`` (the training split).
    """
    available = (len(val) - 1) // context
    if available < 1 or context < 2:
        raise ValueError(
            f"the held-out split has {len(val)} tokens, fewer than one window of {context}"
        )
    fixed = np.random.default_rng(WINDOW_SEED)
    if n_windows is None or n_windows >= available:
        chosen = np.arange(available)
    else:
        chosen = np.sort(fixed.choice(available, size=n_windows, replace=False))
    rng = rng if rng is not None else np.random.default_rng(secrets.randbits(128))
    rest = rng.permutation(np.setdiff1d(np.arange(available), chosen))
    n_decoys = min(
        max(0, min_pairs - len(chosen)), max(0, (len(rest) - len(chosen)) // 2)
    )  # leave a suffix window per pair
    decoys, pool = rest[:n_decoys], rest[n_decoys:]
    windows = np.concatenate([chosen, decoys])
    n_pairs = len(windows)
    offsets = np.arange(context)
    starts = windows * context
    originals = val[starts[:, None] + offsets].astype(np.int64)
    targets = val[starts[:, None] + offsets + 1].astype(np.int64)
    cuts = rng.integers(0, context - 1, size=n_pairs)  # leaves at least one token to change
    source = "held-out"
    if len(pool) >= n_pairs:
        pools = [val[w * context : (w + 1) * context] for w in pool[:n_pairs]]
    else:
        if spare_text is None or len(spare_text) < n_pairs * context:
            raise ValueError("not enough spare text for the twin windows")
        source = "train"
        picks = rng.choice(len(spare_text) // context, size=n_pairs, replace=False)
        pools = [spare_text[w * context : (w + 1) * context] for w in picks]
    twins = originals.copy()
    for i, t in enumerate(cuts):
        twins[i, t + 1 :] = _suffix(pools[i], originals[i, t + 1], context - t - 1, vocab_size, rng)
    scored = np.arange(n_pairs) < len(chosen)
    first = rng.random(n_pairs) < 0.5  # side 0 gets the original of these pairs
    sides = []
    for gets_original in (first, ~first):
        order = rng.permutation(n_pairs)
        inputs = np.where(gets_original[order, None], originals[order], twins[order])
        sides.append(Side(inputs, order, gets_original[order]))
    batch = max(1, min(32, MAX_BATCH_BYTES // (context * max(vocab_size, 1) * 4)))
    return TwinPlan(originals, twins, targets, cuts, scored, (sides[0], sides[1]), batch, source)


@dataclass
class Weights:
    """What the worker read from the saved weights before any agent code ran (0: unreadable)."""

    params: int = 0  # every distinct tensor element
    matrix_params: int = 0  # elements of tensors with 2 or more dimensions


@dataclass
class Scorer:
    """Consumes both sides' frames; keeps the loss and compares the twins.

    Side by side: the first side's log-probabilities at positions ``<= t`` are
    kept until the second side's row of the same pair arrives and is compared.
    """

    plan: TwinPlan
    vocab_size: int
    nll_sum: float = 0.0
    tokens: int = 0
    max_diff: float = 0.0
    weights: list[Weights] = field(default_factory=list)
    _kept: dict[int, np.ndarray] = field(default_factory=dict)
    _bad: list[tuple[int, float]] = field(default_factory=list)

    def consumer(self, side: int):
        """The stdout consumer of the sandbox that scores ``side``."""
        return lambda stream: self.consume(side, stream)

    def consume(self, side: int, stream: IO[bytes]) -> None:
        """Read one side's frames from ``stream``; raise ScoreRejected/ScoreTruncated."""
        head = _read(stream, 20)
        if head[:4] != PARAMS_MAGIC:
            raise ScoreRejected("the scoring worker's output is not in the expected format")
        self.weights.append(Weights(*struct.unpack("<QQ", head[4:])))
        plan_side = self.plan.sides[side]
        total, done = len(plan_side.inputs), 0
        while done < total:
            rows = min(self.plan.batch, total - done)
            logits = self._frame(stream, rows)
            for j in range(rows):
                self._row(plan_side, done + j, logits[j])
            done += rows
        if stream.read(1):
            raise ScoreRejected("the scoring worker sent more output than the windows asked for")

    def _row(self, side: Side, row: int, logits: np.ndarray) -> None:
        pair = int(side.pair[row])
        t = int(self.plan.cuts[pair])
        x = logits.astype(np.float64)
        top = x.max(axis=-1, keepdims=True)
        logp = x - (np.log(np.exp(x - top).sum(axis=-1, keepdims=True)) + top)  # [T, V]
        if side.original[row] and self.plan.scored[pair]:
            # Positions 0..T-2 only: their targets are tokens of the window itself. The
            # last position's target is the next window's first token, which another
            # row sent to the same sandbox may hold (the window after it), and no twin
            # cut can cover it.
            targets = self.plan.targets[pair, :-1]
            self.nll_sum -= float(logp[np.arange(len(targets)), targets].sum())
            self.tokens += len(targets)
        other = self._kept.pop(pair, None)
        if other is None:
            self._kept[pair] = logp[: t + 1].copy()
            return
        diff = float(np.abs(other - logp[: t + 1]).max())
        self.max_diff = max(self.max_diff, diff)
        if diff > CAUSAL_TOL:
            self._bad.append((t, diff))

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

    def verdict(self) -> None:
        """After both sides: raise ScoreRejected unless every pair agreed up to its cut."""
        if self._kept:
            raise ScoreTruncated("a scoring worker stopped before sending every window's logits")
        if len({(w.params, w.matrix_params) for w in self.weights}) > 1:
            raise ScoreRejected("the two scoring runs read different weights from model.pt")
        if self._bad:
            t, diff = max(self._bad, key=lambda b: b[1])
            raise ScoreRejected(
                f"not causal: on {len(self._bad)} of {self.plan.pairs} twin pairs the "
                f"log-probabilities changed (by up to {diff:.3g}, tolerance {CAUSAL_TOL:g}) "
                f"at positions <= t where only tokens after t differ (e.g. t = {t})"
            )

    @property
    def val_loss(self) -> float:
        return self.nll_sum / self.tokens if self.tokens else math.inf


def _read(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ScoreTruncated("the scoring worker stopped before sending every window's logits")
    return data
