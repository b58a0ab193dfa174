"""Parameters come from what a checkpoint stores; views that claim more are refused."""

from __future__ import annotations

import io

import pytest
import torch

from darwin_bot.evaluate.claims import OVERCLAIMED, ClaimRejected, Report, throughput
from darwin_bot.evaluate.score_worker import OVERCLAIMED as WORKER_OVERCLAIMED
from darwin_bot.evaluate.score_worker import count_weights
from darwin_bot.evaluate.storage_count import count_storage, overclaim, tensors_in


def _saved(obj: object) -> object:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_tied_and_sliced_views_count_their_storage_once() -> None:
    w = torch.randn(65, 32)
    loaded = _saved({"wte": w, "head": w, "head_t": w.t(), "bias": torch.zeros(32)})
    count = count_storage(tensors_in(loaded))
    assert count == count_storage([w, torch.zeros(32)])
    assert (count.params, count.matrix_params, count.problem) == (65 * 32 + 32, 65 * 32, "")
    x = torch.randn(100)
    assert count_storage([x[10:20], x[::2]]).params == 100  # the bytes saved, not the views


def test_an_expanded_tensor_counts_what_it_stores_and_is_refused() -> None:
    w = torch.randn(65, 65)
    loaded = _saved({"model": {"w": w}, "pad": torch.zeros(1).expand(100_000, 1)})
    count = count_storage(tensors_in(loaded))
    assert count.params == 65 * 65 + 1  # 4 bytes are one element, not 100,000
    assert "claims more than it stores" in count.problem and "(100000, 1)" in count.problem


@pytest.mark.parametrize(
    ("view", "why"),
    [
        (lambda: torch.randn(2, 3).as_strided((2, 2), (1, 1)), "repeats its elements"),
        (lambda: torch.randn(5).as_strided((3, 3), (1, 1)), "repeats its elements"),
        (lambda: torch.randn(8).expand(3, 8), "repeats its elements"),
    ],
)
def test_overlapping_views_are_named(view, why) -> None:
    assert why in overclaim(view())


def test_honest_shapes_are_not_overclaims() -> None:
    for t in (
        torch.randn(3, 1, 4),
        torch.randn(4, 5).t(),
        torch.randn(6, 6)[::2, 1:],
        torch.empty(0),
    ):
        assert overclaim(t) == "", t.shape


def test_the_worker_counts_storage_and_flags_an_overclaim(tmp_path) -> None:
    honest, padded = tmp_path / "honest.pt", tmp_path / "padded.pt"
    w = torch.randn(65, 65)
    torch.save({"vocab_size": 65, "model": {"table.weight": w}}, honest)
    torch.save(
        {"vocab_size": 65, "model": {"table.weight": w}, "pad": torch.zeros(1).expand(9000, 1)},
        padded,
    )
    assert count_weights(str(honest)) == (65 * 65, 65 * 65)
    assert count_weights(str(padded)) == (OVERCLAIMED, 0)
    assert WORKER_OVERCLAIMED == OVERCLAIMED  # the two files agree on the sentinel


def test_an_overclaimed_count_is_a_rejected_claim() -> None:
    report = Report(iterations=1, tokens_seen=100, train_seconds=1.0, num_params=None)
    with pytest.raises(ClaimRejected, match="claims more than it stores"):
        throughput(report, 2.0, OVERCLAIMED, 1e12)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_expanded_checkpoint_through_darwin_evaluate_is_rejected(
    bwrap, make_tree, evaluate
) -> None:
    result = evaluate(make_tree(train="train_expanded.py", timeout_s=90.0)).result
    assert result["status"] == "rejected", result
    assert "claims more than it stores" in result["reason"]
    assert result["metrics"] is None
