"""The trusted side of scoring, without processes: secret windows, probes, loss, contract checks."""

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
    WINDOW_SEED,
    Scorer,
    ScoreRejected,
    ScoreTruncated,
    detection_probability,
    plan_probes,
    secret_seed,
)

VOCAB, T = 11, 16


@pytest.fixture
def val() -> np.ndarray:
    return np.random.default_rng(3).integers(0, VOCAB, size=200 * T + 5).astype(np.uint16)


def frames(plan, logits_of, weights=(123, 100)) -> bytes:
    """What the graph worker sends when the graph maps one window [1, T] -> logits."""
    out = io.BytesIO()
    out.write(b"NPAR" + struct.pack("<QQ", *weights))
    for row in plan.inputs:
        arr = np.ascontiguousarray(logits_of(row[None, :]), dtype="<f4")
        out.write(b"DLGT" + struct.pack(f"<I{arr.ndim}I", arr.ndim, *arr.shape) + arr.tobytes())
    return out.getvalue()


def score(plan, logits_of) -> Scorer:
    scorer = Scorer(plan, VOCAB)
    scorer.consume(io.BytesIO(frames(plan, logits_of)))
    scorer.verdict()
    return scorer


TABLE = np.random.default_rng(5).normal(size=(VOCAB, VOCAB)).astype(np.float32)


def bigram(inputs: np.ndarray) -> np.ndarray:
    return TABLE[inputs]  # position t depends on token t only: causal


def peeker(positions, strength: float = 30.0):
    """Reads the next token at the positions ``positions(row)`` names."""

    def logits_of(inputs: np.ndarray) -> np.ndarray:
        mask = np.zeros(T, bool)
        mask[sorted(positions(inputs[0]))] = True
        nxt = np.roll(inputs, -1, axis=1)
        return TABLE[inputs] + strength * np.eye(VOCAB, dtype=np.float32)[nxt] * mask[None, :, None]

    return logits_of


def test_the_windows_are_the_seeds_the_same_for_one_seed_and_new_for_another(val):
    a = plan_probes(val, T, VOCAB, 12, window_seed=7)
    b = plan_probes(val, T, VOCAB, 12, window_seed=7)
    c = plan_probes(val, T, VOCAB, 12, window_seed=8)
    fixed = plan_probes(val, T, VOCAB, 12, window_seed=WINDOW_SEED)
    assert np.array_equal(a.window_ids, b.window_ids)  # one generation: paired windows
    assert not np.array_equal(a.window_ids, c.window_ids)
    assert not np.array_equal(a.window_ids, fixed.window_ids)
    assert not np.array_equal(a.cuts, b.cuts)  # the probes are drawn anew every time
    assert secret_seed() != secret_seed()
    # drawn from the whole split, not from a fixed subset of it
    seen = set()
    for seed in range(40):
        seen |= set(plan_probes(val, T, VOCAB, 12, seed).window_ids.tolist())
    assert len(seen) > 150


def test_probes_agree_up_to_the_cut_and_every_cut_is_tried(val):
    plan = plan_probes(val, T, VOCAB, 10, window_seed=1, n_probes=3 * (T - 1))
    assert sorted(np.bincount(plan.cuts).tolist()) == [3] * (T - 1)  # every position, 3 times
    for k, t in enumerate(plan.cuts):
        own = plan.windows[plan.probe_of[k]]
        assert np.array_equal(own[: t + 1], plan.probes[k, : t + 1])
        assert own[t + 1] != plan.probes[k, t + 1]
        tail = tuple(plan.probes[k, t + 1 :])  # real held-out text from an unscored window
        starts = [s * T for s in range((len(val) - 1) // T) if s not in plan.window_ids]
        assert any(tail == tuple(val[s + i : s + i + len(tail)]) for s in starts for i in range(T))
    assert np.array_equal(plan.inputs[:10], plan.windows)


def test_loss_is_the_cross_entropy_of_every_position_of_the_windows(val):
    plan = plan_probes(val, T, VOCAB, 12, window_seed=2, n_probes=20)
    scorer = score(plan, bigram)
    x = torch.from_numpy(bigram(plan.windows)).reshape(-1, VOCAB)
    y = torch.from_numpy(plan.targets).reshape(-1)
    assert np.array_equal(plan.targets[:, :-1], plan.windows[:, 1:])
    starts = plan.window_ids * T
    assert np.array_equal(plan.targets[:, -1], val[starts + T])  # the next window's first token
    assert scorer.val_loss == pytest.approx(F.cross_entropy(x.double(), y).item(), rel=1e-9)
    assert scorer.tokens == 12 * T and scorer.max_diff == 0.0 and scorer.weights.params == 123


def test_a_model_that_reads_the_next_token_anywhere_fixed_is_caught_for_certain(val):
    for position in (0, 7, T - 2):
        plan = plan_probes(val, T, VOCAB, 12, window_seed=3, n_probes=T - 1)
        with pytest.raises(ScoreRejected, match="not causal"):
            score(plan, peeker(lambda row, p=position: {p}))


def test_peeking_at_a_fraction_q_chosen_by_the_text_is_caught_with_1_minus_1_minus_q_to_n(val):
    """The stated probability, measured: a model that peeks where a hash of the prefix says."""

    def hashed(row):
        return {p for p in range(T - 1) if hash(tuple(row[: p + 1].tolist())) % 8 == 0}

    q, probes, trials = 1 / 8, 8, 300
    caught = 0
    for _ in range(trials):
        plan = plan_probes(val, T, VOCAB, 4, window_seed=secret_seed(), n_probes=probes)
        try:
            score(plan, peeker(hashed))
        except ScoreRejected:
            caught += 1
    expected = detection_probability(q, probes)  # 0.66
    sigma = math.sqrt(expected * (1 - expected) / trials)
    assert abs(caught / trials - expected) < 4 * sigma, (caught / trials, expected)


def test_a_nudge_under_the_tolerance_passes_and_buys_at_most_the_tolerance(val):
    plan = plan_probes(val, T, VOCAB, 12, window_seed=4)
    honest = score(plan, bigram).val_loss
    nudged = score(plan, peeker(lambda row: set(range(T - 1)), CAUSAL_TOL / 4)).val_loss
    assert honest - CAUSAL_TOL <= nudged < honest


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
    plan = plan_probes(val, T, VOCAB, 12, window_seed=5, n_probes=16)
    with pytest.raises(ScoreRejected, match=message):
        Scorer(plan, VOCAB).consume(io.BytesIO(frames(plan, logits_of)))


def test_a_worker_that_stops_early_or_says_too_much_is_caught(val):
    plan = plan_probes(val, T, VOCAB, 12, window_seed=6, n_probes=16)
    good = frames(plan, bigram)
    with pytest.raises(ScoreTruncated):
        Scorer(plan, VOCAB).consume(io.BytesIO(good[:-7]))
    with pytest.raises(ScoreRejected, match="more output"):
        Scorer(plan, VOCAB).consume(io.BytesIO(good + b"x"))
    with pytest.raises(ScoreRejected, match="format"):
        Scorer(plan, VOCAB).consume(io.BytesIO(b"hello, world, here" + good))
    with pytest.raises(ScoreTruncated):
        Scorer(plan, VOCAB).verdict()  # nothing came


def test_detection_probability_formula():
    assert detection_probability(0.0, 128) == 0.0
    assert detection_probability(1 / 63, 512) == pytest.approx(1 - (62 / 63) ** 512)
    assert detection_probability(1.0, 1) == 1.0
