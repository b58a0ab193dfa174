"""The trusted side of scoring: which windows, the causality probes, the loss of the logits.

The model that is scored is a graph (see ``graph_archive.py``): a pure,
stateless function of one window ``[1, T]``, run by trusted code in a sandbox
that holds no agent code. So the protocol needs no twin sandboxes:

* **Windows.** The held-out split is cut into non-overlapping windows of the
  preset's context ``T``. ``n_windows`` of them (or all, with ``full``) are
  drawn by ``window_seed``: a secret the engine draws once per generation,
  after its programs are frozen (the same windows for every agent of that
  generation, new ones for the next), a fresh secret per evaluation when none
  is given, or the public :data:`WINDOW_SEED` when fixed windows are asked for.
* **Loss.** Every position of a window is scored, its target being the next
  token of the split (the last position's is the first token of the following
  window: the graph sees one window at a time, so no other row can hold it).
  The loss is computed here, against targets that never leave this process.
* **Causality.** Probes: copies of scored windows that agree with them up to a
  cut ``t`` and continue, after ``t``, with real held-out text from a window
  that is not scored (the training split's when there is none left). The
  log-probabilities at positions ``<= t`` must equal the window's own, within
  :data:`CAUSAL_TOL` (the same graph, the same process: only float reordering
  differs). The cuts cycle through every position ``0..T-2`` in a secret order,
  so a model that reads ahead at a fixed position is caught for certain, and
  one that reads ahead at a fraction ``q`` of positions chosen any other way
  passes ``N`` probes with probability ``(1 - q) ** N``.
"""

from __future__ import annotations

import math
import secrets
import struct
from dataclasses import dataclass, field
from typing import IO

import numpy as np

WINDOW_SEED = 20_260_205  # the public, fixed windows: only when asked for (benchmarks)
# Two runs of the same graph differ only by float reordering (about 1e-6 in a float32
# log-probability). A model that reads the future moves the next token's log-probability
# by far more. The tolerance also bounds what an undetected nudge can buy: at most
# CAUSAL_TOL nats at a compared position, a 0.1% change of perplexity.
CAUSAL_TOL = 1e-3
# Probes; see detection_probability(). A peek at 1 position in 63 (a ~4% perplexity
# gain, measured) passes 128 probes 13% of the time, 512 probes 0.03%.
MIN_PROBES = 512
MAGIC = b"DLGT"
PARAMS_MAGIC = b"NPAR"


class ScoreRejected(Exception):
    """The model broke the scoring contract (shape, non-finite, non-causal)."""


class ScoreTruncated(Exception):
    """The worker stopped before sending every window's logits (it crashed or was killed)."""


def detection_probability(q: float, probes: int) -> float:
    """P(a model that peeks one token ahead at a fraction ``q`` of positions is rejected)."""
    return 1.0 - (1.0 - q) ** probes


def secret_seed() -> int:
    """A window seed no program can predict (the engine draws one per generation)."""
    return secrets.randbits(64)


@dataclass
class ProbePlan:
    """The scored windows, their targets, and the probes that check causality."""

    windows: np.ndarray  # [W, T] int64, the scored windows
    targets: np.ndarray  # [W, T] int64, the next token of every position
    probes: np.ndarray  # [P, T] int64
    probe_of: np.ndarray  # [P] the scored window each probe copies
    cuts: np.ndarray  # [P] positions 0..t agree with that window
    window_ids: np.ndarray  # [W] which windows of the split
    suffix_source: str  # "held-out" or "train" (when no unscored window is left)

    @property
    def context(self) -> int:
        return int(self.windows.shape[1])

    @property
    def inputs(self) -> np.ndarray:
        """What the worker is sent, in order: the windows, then the probes."""
        return np.concatenate([self.windows, self.probes])


def choose_windows(available: int, n_windows: int | None, seed: int) -> np.ndarray:
    """Indices of the windows ``seed`` draws from ``available`` (all with ``None``)."""
    if n_windows is None or n_windows >= available:
        return np.arange(available)
    return np.sort(np.random.default_rng(seed).choice(available, size=n_windows, replace=False))


def _suffix(
    pool: np.ndarray, avoid: int, length: int, vocab: int, rng: np.random.Generator
) -> np.ndarray:
    """``length`` tokens of ``pool`` whose first token is not ``avoid``."""
    for s in rng.permutation(len(pool) - length + 1):
        if pool[s] != avoid:
            return pool[s : s + length].astype(np.int64)
    tail = pool[:length].astype(np.int64)  # a window of one repeated token: shift it
    tail[0] = (int(avoid) + 1) % vocab
    return tail


def plan_probes(
    val: np.ndarray,
    context: int,
    vocab_size: int,
    n_windows: int | None,
    window_seed: int,
    *,
    n_probes: int = MIN_PROBES,
    spare_text: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> ProbePlan:
    """Scored windows of ``val`` drawn by ``window_seed``, and ``n_probes`` probes of them.

    ``rng`` (the cuts and the probes' text) defaults to a secret source; pass
    one only in tests.
    """
    available = (len(val) - 1) // context
    if available < 1 or context < 2:
        raise ValueError(
            f"the held-out split has {len(val)} tokens, fewer than one window of {context}"
        )
    chosen = choose_windows(available, n_windows, window_seed)
    rng = rng if rng is not None else np.random.default_rng(secrets.randbits(128))
    offsets = np.arange(context)
    starts = chosen * context
    windows = val[starts[:, None] + offsets].astype(np.int64)
    targets = val[starts[:, None] + offsets + 1].astype(np.int64)
    rounds = -(-n_probes // (context - 1))
    cuts = np.concatenate([rng.permutation(context - 1) for _ in range(rounds)])[:n_probes]
    probe_of = rng.permutation(np.resize(np.arange(len(chosen)), n_probes))
    rest = np.setdiff1d(np.arange(available), chosen)
    if len(rest):
        pools = [val[w * context : (w + 1) * context] for w in rng.choice(rest, size=n_probes)]
        source = "held-out"
    else:
        if spare_text is None or len(spare_text) < 2 * context:
            raise ValueError("not enough spare text for the causality probes")
        picks = rng.integers(0, len(spare_text) // context, size=n_probes)
        pools = [spare_text[w * context : (w + 1) * context] for w in picks]
        source = "train"
    probes = windows[probe_of].copy()
    for i, t in enumerate(cuts):
        probes[i, t + 1 :] = _suffix(pools[i], probes[i, t + 1], context - t - 1, vocab_size, rng)
    return ProbePlan(windows, targets, probes, probe_of, cuts, chosen, source)


@dataclass
class Weights:
    """The checkpoint's tensor elements, counted by the worker (0: unreadable)."""

    params: int = 0
    matrix_params: int = 0


@dataclass
class Scorer:
    """Consumes the worker's frames: the loss of the windows, then the probes' comparison."""

    plan: ProbePlan
    vocab_size: int
    nll_sum: float = 0.0
    tokens: int = 0
    max_diff: float = 0.0
    weights: Weights = field(default_factory=Weights)
    _logp: list[np.ndarray] = field(default_factory=list)
    _bad: list[tuple[int, float]] = field(default_factory=list)
    _done: int = 0

    def consume(self, stream: IO[bytes], *, last: bool = True) -> None:
        """Read every frame from ``stream``; raise ScoreRejected/ScoreTruncated.

        ``last=False``: more output follows (the next point of a learning curve)."""
        head = _read(stream, 20)
        if head[:4] != PARAMS_MAGIC:
            raise ScoreRejected("the scoring worker's output is not in the expected format")
        self.weights = Weights(*struct.unpack("<QQ", head[4:]))
        n_windows = len(self.plan.windows)
        for row in range(n_windows + len(self.plan.probes)):
            logp = _log_softmax(self._frame(stream))
            if row < n_windows:
                targets = self.plan.targets[row]
                self.nll_sum -= float(logp[np.arange(len(targets)), targets].sum())
                self.tokens += len(targets)
                self._logp.append(logp)
            else:
                self._probe(row - n_windows, logp)
            self._done = row + 1
        if last and stream.read(1):
            raise ScoreRejected("the scoring worker sent more output than the windows asked for")

    def _probe(self, k: int, logp: np.ndarray) -> None:
        t = int(self.plan.cuts[k])
        own = self._logp[int(self.plan.probe_of[k])]
        diff = float(np.abs(own[: t + 1] - logp[: t + 1]).max())
        self.max_diff = max(self.max_diff, diff)
        if diff > CAUSAL_TOL:
            self._bad.append((t, diff))

    def _frame(self, stream: IO[bytes]) -> np.ndarray:
        head = _read(stream, 8)
        if head[:4] != MAGIC:
            raise ScoreRejected("the scoring worker's output is not in the expected format")
        (ndim,) = struct.unpack("<I", head[4:])
        if ndim > 8:
            raise ScoreRejected(f"the graph returned a tensor with {ndim} dimensions")
        shape = struct.unpack(f"<{ndim}I", _read(stream, 4 * ndim))
        want = (1, self.plan.context, self.vocab_size)
        if tuple(shape) != want:
            raise ScoreRejected(
                f"forward returned logits of shape {list(shape)}, expected [B, T, vocab] = {list(want)}"
            )
        data = _read(stream, 4 * math.prod(shape))
        logits = np.frombuffer(data, dtype="<f4").reshape(shape[1:])
        if not np.isfinite(logits).all():
            raise ScoreRejected("forward returned non-finite logits (nan or inf)")
        return logits

    def verdict(self) -> None:
        """After the worker ended: raise unless every frame came and every probe agreed."""
        if self._done < len(self.plan.windows) + len(self.plan.probes):
            raise ScoreTruncated("the scoring worker stopped before sending every window's logits")
        if self._bad:
            t, diff = max(self._bad, key=lambda b: b[1])
            raise ScoreRejected(
                f"not causal: on {len(self._bad)} of {len(self.plan.probes)} probes the "
                f"log-probabilities changed (by up to {diff:.3g}, tolerance {CAUSAL_TOL:g}) "
                f"at positions <= t where only tokens after t differ (e.g. t = {t})"
            )

    @property
    def val_loss(self) -> float:
        return self.nll_sum / self.tokens if self.tokens else math.inf


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    top = x.max(axis=-1, keepdims=True)
    return x - (np.log(np.exp(x - top).sum(axis=-1, keepdims=True)) + top)


def _read(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ScoreTruncated("the scoring worker stopped before sending every window's logits")
    return data
