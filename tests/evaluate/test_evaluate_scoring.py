"""The trusted side of scoring, without processes: windows, probes, loss, contract checks."""

from __future__ import annotations

import io
import math
import struct

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from darwin_bot.evaluate.scoring import Scorer, ScoreRejected, ScoreTruncated, plan_windows

VOCAB, T = 11, 16


@pytest.fixture
def val() -> np.ndarray:
    return np.random.default_rng(3).integers(0, VOCAB, size=40 * T + 5).astype(np.uint16)


def frames(plan, logits_of, num_params: int = 123) -> bytes:
    """What a worker whose model maps inputs [B, T] -> logits would send."""
    out = io.BytesIO()
    out.write(b"NPAR" + struct.pack("<Q", num_params))
    for start in range(0, len(plan.inputs), plan.batch):
        arr = np.ascontiguousarray(logits_of(plan.inputs[start : start + plan.batch]), dtype="<f4")
        out.write(b"DLGT" + struct.pack(f"<I{arr.ndim}I", arr.ndim, *arr.shape) + arr.tobytes())
    return out.getvalue()


TABLE = np.random.default_rng(5).normal(size=(VOCAB, VOCAB)).astype(np.float32)


def bigram(inputs: np.ndarray) -> np.ndarray:
    return TABLE[inputs]  # position t depends on token t only: causal


def peeking(inputs: np.ndarray) -> np.ndarray:
    return TABLE[np.roll(inputs, -1, axis=1)]


def test_windows_are_fixed_non_overlapping_and_probes_differ_only_after_t(val):
    a = plan_windows(val, T, VOCAB, n_windows=10)
    b = plan_windows(val, T, VOCAB, n_windows=10)
    assert np.array_equal(a.inputs, b.inputs) and a.probes == b.probes  # deterministic
    scored = a.inputs[a.scored]
    assert len(scored) == 10 and len(a.inputs) == 14  # 4 probes hidden among them
    windows = {tuple(val[k * T : (k + 1) * T]) for k in range((len(val) - 1) // T)}
    assert all(tuple(row) in windows for row in scored)  # aligned, non-overlapping windows
    assert len({tuple(row) for row in scored}) == 10  # no window twice
    for row, target in zip(a.inputs[a.scored], a.targets[a.scored], strict=True):
        assert np.array_equal(row[1:], target[:-1])  # targets are inputs shifted by one
    for p in a.probes:
        orig, probe = a.inputs[p.original_row], a.inputs[p.probe_row]
        assert np.array_equal(orig[: p.t + 1], probe[: p.t + 1])
        assert orig[p.t + 1] != probe[p.t + 1]
    assert plan_windows(val, T, VOCAB, n_windows=None).scored.sum() == (len(val) - 1) // T


def test_loss_matches_cross_entropy_of_the_scored_windows(val):
    plan = plan_windows(val, T, VOCAB, n_windows=12)
    scorer = Scorer(plan, VOCAB)
    scorer.consume(io.BytesIO(frames(plan, bigram)))
    x = torch.from_numpy(bigram(plan.inputs[plan.scored])).reshape(-1, VOCAB)
    y = torch.from_numpy(plan.targets[plan.scored]).reshape(-1)
    assert scorer.val_loss == pytest.approx(F.cross_entropy(x.double(), y).item(), rel=1e-9)
    assert scorer.tokens == 12 * T and scorer.num_params == 123
    assert math.isfinite(scorer.val_loss)


def test_a_model_that_reads_the_next_token_is_not_causal(val):
    plan = plan_windows(val, T, VOCAB, n_windows=12)
    with pytest.raises(ScoreRejected, match="not causal"):
        Scorer(plan, VOCAB).consume(io.BytesIO(frames(plan, peeking)))


@pytest.mark.parametrize(
    ("logits_of", "message"),
    [
        (lambda x: bigram(x)[:, :, :-1], "shape"),
        (lambda x: bigram(x)[:, :-1], "shape"),
        (lambda x: bigram(x)[..., None], "shape"),
        (lambda x: np.where(x[..., None] == 3, np.nan, bigram(x)), "non-finite"),
        (lambda x: np.where(x[..., None] == 3, np.inf, bigram(x)), "non-finite"),
    ],
)
def test_wrong_shapes_and_non_finite_logits_are_rejected(val, logits_of, message):
    plan = plan_windows(val, T, VOCAB, n_windows=12)
    with pytest.raises(ScoreRejected, match=message):
        Scorer(plan, VOCAB).consume(io.BytesIO(frames(plan, logits_of)))


def test_a_worker_that_stops_early_or_says_too_much_is_caught(val):
    plan = plan_windows(val, T, VOCAB, n_windows=12)
    good = frames(plan, bigram)
    with pytest.raises(ScoreTruncated):
        Scorer(plan, VOCAB).consume(io.BytesIO(good[:-7]))
    with pytest.raises(ScoreRejected, match="more output"):
        Scorer(plan, VOCAB).consume(io.BytesIO(good + b"x"))
    with pytest.raises(ScoreRejected, match="format"):
        Scorer(plan, VOCAB).consume(io.BytesIO(b"hello, world" + good))
