"""The trusted side of scoring, without processes: twin windows, loss, contract checks."""

from __future__ import annotations

import io
import math
import struct

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from darwin_bot.evaluate.scoring import (
    CAUSAL_TOL,
    Scorer,
    ScoreRejected,
    ScoreTruncated,
    detection_probability,
    plan_twins,
)

VOCAB, T = 11, 16


@pytest.fixture
def val() -> np.ndarray:
    return np.random.default_rng(3).integers(0, VOCAB, size=200 * T + 5).astype(np.uint16)


def frames(side, logits_of, weights=(123, 100)) -> bytes:
    """What a worker whose model maps inputs [B, T] -> logits would send for one side."""
    out = io.BytesIO()
    out.write(b"NPAR" + struct.pack("<QQ", *weights))
    for start in range(0, len(side.inputs), 32):
        arr = np.ascontiguousarray(logits_of(side.inputs[start : start + 32]), dtype="<f4")
        out.write(b"DLGT" + struct.pack(f"<I{arr.ndim}I", arr.ndim, *arr.shape) + arr.tobytes())
    return out.getvalue()


def score(plan, logits_of, logits_b=None, weights_b=(123, 100)) -> Scorer:
    scorer = Scorer(plan, VOCAB)
    scorer.consume(0, io.BytesIO(frames(plan.sides[0], logits_of)))
    scorer.consume(1, io.BytesIO(frames(plan.sides[1], logits_b or logits_of, weights_b)))
    scorer.verdict()
    return scorer


TABLE = np.random.default_rng(5).normal(size=(VOCAB, VOCAB)).astype(np.float32)


def bigram(inputs: np.ndarray) -> np.ndarray:
    return TABLE[inputs]  # position t depends on token t only: causal


def peeker(positions: set[int], strength: float = 30.0):
    """Reads the next token at the given positions (a 1-token lookahead on a fraction of them)."""
    mask = np.zeros(T, bool)
    mask[sorted(positions)] = True

    def logits_of(inputs: np.ndarray) -> np.ndarray:
        nxt = np.roll(inputs, -1, axis=1)
        boost = strength * np.eye(VOCAB, dtype=np.float32)[nxt] * mask[None, :, None]
        return TABLE[inputs] + boost

    return logits_of


def test_twins_agree_up_to_the_cut_and_each_side_gets_one_version_of_every_pair(val):
    plan = plan_twins(val, T, VOCAB, n_windows=10, min_pairs=24)
    again = plan_twins(val, T, VOCAB, n_windows=10, min_pairs=24)
    assert plan.pairs == 24 and plan.scored_windows == 10  # 14 decoys
    scored = {tuple(r) for r in plan.originals[plan.scored]}
    assert scored == {tuple(r) for r in again.originals[again.scored]}  # same windows every time
    assert not np.array_equal(plan.cuts, again.cuts)  # cuts from a secret source, not a seed
    for i, t in enumerate(plan.cuts):
        assert np.array_equal(plan.originals[i, : t + 1], plan.twins[i, : t + 1])
        assert plan.originals[i, t + 1] != plan.twins[i, t + 1]
    a, b = plan.sides
    assert sorted(a.pair) == sorted(b.pair) == list(range(24))
    assert np.array_equal(a.original[np.argsort(a.pair)], ~b.original[np.argsort(b.pair)])
    for side in plan.sides:
        for row, pair, orig in zip(side.inputs, side.pair, side.original, strict=True):
            assert np.array_equal(row, (plan.originals if orig else plan.twins)[pair])


def test_twin_suffixes_are_held_out_text_that_no_side_receives(val):
    plan = plan_twins(val, T, VOCAB, n_windows=10, min_pairs=24)
    assert plan.suffix_source == "held-out"
    sent = {tuple(r) for r in plan.originals}
    windows = [tuple(val[k * T : (k + 1) * T]) for k in range((len(val) - 1) // T)]
    spare = [w for w in windows if w not in sent]
    for i, t in enumerate(plan.cuts):
        tail = tuple(plan.twins[i, t + 1 :])
        homes = [w for w in spare if any(w[s : s + len(tail)] == tail for s in range(T))]
        assert homes, "a twin's suffix comes from a spare held-out window"
    full = plan_twins(val, T, VOCAB, n_windows=None, spare_text=val[::-1].copy())
    assert full.suffix_source == "train" and full.scored_windows == len(windows)


def test_loss_is_the_cross_entropy_of_the_scored_originals(val):
    plan = plan_twins(val, T, VOCAB, n_windows=12, min_pairs=20)
    scorer = score(plan, bigram)
    x = torch.from_numpy(bigram(plan.originals[plan.scored])[:, :-1]).reshape(-1, VOCAB)
    y = torch.from_numpy(plan.targets[plan.scored][:, :-1]).reshape(-1)
    assert np.array_equal(plan.targets[:, :-1], plan.originals[:, 1:])  # the window's own tokens
    assert scorer.val_loss == pytest.approx(F.cross_entropy(x.double(), y).item(), rel=1e-9)
    assert scorer.tokens == 12 * (T - 1) and scorer.max_diff == 0.0
    assert math.isfinite(scorer.val_loss)


def test_a_model_that_reads_the_next_token_everywhere_is_rejected(val):
    plan = plan_twins(val, T, VOCAB, n_windows=12)
    with pytest.raises(ScoreRejected, match="not causal"):
        score(plan, peeker(set(range(T - 1))))


def test_peeking_at_a_fraction_q_of_positions_is_caught_with_probability_1_minus_1_minus_q_to_n(
    val,
):
    """The stated detection probability, measured: 400 evaluations of a model that peeks at q."""
    q_positions = {3, 9}  # q = 2 of the T-1 = 15 positions that have a next token
    q, pairs, trials = len(q_positions) / (T - 1), 8, 400
    caught = 0
    for _ in range(trials):
        plan = plan_twins(val, T, VOCAB, n_windows=4, min_pairs=pairs)
        try:
            score(plan, peeker(q_positions))
        except ScoreRejected:
            caught += 1
    expected = detection_probability(q, pairs)  # 0.68
    sigma = math.sqrt(expected * (1 - expected) / trials)
    assert abs(caught / trials - expected) < 4 * sigma, (caught / trials, expected)


def test_a_nudge_under_the_tolerance_passes_and_buys_at_most_the_tolerance(val):
    plan = plan_twins(val, T, VOCAB, n_windows=12)
    honest = score(plan, bigram).val_loss
    nudged = score(plan, peeker(set(range(T - 1)), strength=CAUSAL_TOL / 4)).val_loss
    assert honest - CAUSAL_TOL <= nudged < honest  # it gains, but less than the tolerance


def test_different_weights_on_the_two_sides_are_rejected(val):
    plan = plan_twins(val, T, VOCAB, n_windows=12)
    with pytest.raises(ScoreRejected, match="different weights"):
        score(plan, bigram, weights_b=(999, 100))


@pytest.mark.parametrize(
    ("logits_of", "message"),
    [
        (lambda x: bigram(x)[:, :, :-1], "shape"),
        (lambda x: bigram(x)[:, :-1], "shape"),
        (lambda x: bigram(x)[..., None], "shape"),
        (lambda x: np.where(x[..., None] == 3, np.nan, bigram(x)), "non-finite"),
        (lambda x: np.where(x[..., None] == 3, np.inf, bigram(x)), "non-finite"),
        (lambda x: np.where(x[..., None] == 3, -np.inf, bigram(x)), "non-finite"),
    ],
)
def test_wrong_shapes_and_non_finite_logits_are_rejected(val, logits_of, message):
    plan = plan_twins(val, T, VOCAB, n_windows=12)
    with pytest.raises(ScoreRejected, match=message):
        Scorer(plan, VOCAB).consume(0, io.BytesIO(frames(plan.sides[0], logits_of)))


def test_a_worker_that_stops_early_or_says_too_much_is_caught(val):
    plan = plan_twins(val, T, VOCAB, n_windows=12)
    good = frames(plan.sides[0], bigram)
    with pytest.raises(ScoreTruncated):
        Scorer(plan, VOCAB).consume(0, io.BytesIO(good[:-7]))
    with pytest.raises(ScoreRejected, match="more output"):
        Scorer(plan, VOCAB).consume(0, io.BytesIO(good + b"x"))
    with pytest.raises(ScoreRejected, match="format"):
        Scorer(plan, VOCAB).consume(0, io.BytesIO(b"hello, world, here" + good))
    one_side = Scorer(plan, VOCAB)
    one_side.consume(0, io.BytesIO(good))
    with pytest.raises(ScoreTruncated):
        one_side.verdict()  # the other side never came


def test_detection_probability_formula():
    assert detection_probability(0.0, 128) == 0.0
    assert detection_probability(1 / 63, 128) == pytest.approx(1 - (62 / 63) ** 128)
    assert detection_probability(1.0, 1) == 1.0


def test_the_last_position_whose_target_lies_in_the_next_window_is_not_scored(val):
    """Another row may hold the next window: knowing its first token must buy nothing."""
    plan = plan_twins(val, T, VOCAB, n_windows=12)

    def last_position_oracle(inputs: np.ndarray) -> np.ndarray:
        out = bigram(inputs).copy()
        out[:, -1, :] = 50.0 * np.random.default_rng(0).random((len(inputs), VOCAB))
        return out

    assert score(plan, last_position_oracle).val_loss == score(plan, bigram).val_loss
