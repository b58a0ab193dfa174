"""A tree trained in one generation is scored again, not trained again, on the next one's windows.

The engine's evaluator, the real harness and sandbox: the first evaluation
trains and keeps the exported graph; the next ones run only the graph scorer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from darwin_bot.cli.app import TrustedEvaluator
from darwin_bot.config import from_dict
from darwin_bot.evaluate import harness, windows
from darwin_bot.evaluate.export_step import GRAPH_FILE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.usefixtures("bwrap")]


def test_a_trained_tree_is_scored_again_on_each_generations_windows(
    make_tree, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(windows.ENV, "rescore-test")
    cfg = from_dict(
        {
            "budget": {"iters": 5, "data": str(corpus)},
            "sandbox": {"backend": "bwrap", "timeout_s": 120.0, "memory_mb": 2048},
        }
    )
    ev = TrustedEvaluator(cfg, tmp_path, secret_dir=tmp_path / "git")
    (tmp_path / "git").mkdir()
    tree = make_tree()

    ev.at_generation(3)
    first = ev(tree, seed=1)
    assert first.ok, first.reason + first.log_tail
    assert "rescored" not in first.extra

    def no_training(*args, **kwargs):
        raise AssertionError("a kept tree was trained again")

    with monkeypatch.context() as m:
        m.setattr(harness, "_train", no_training)
        again = ev(tree, seed=1)  # the same windows: the kept graph gives the same score
        ev.at_generation(4)
        later = ev(tree, seed=1)
    for result in (again, later):
        assert result.ok and result.extra["rescored"] is True, result.reason
        assert result.extra["train_wall_s"] == first.extra["train_wall_s"]  # kept, not re-run
        assert result.metrics is not None and result.metrics.score_wall_s > 0
    assert first.metrics is not None and again.metrics is not None and later.metrics is not None
    assert again.metrics.perplexity == first.metrics.perplexity
    assert first.extra["windows"] == f"secret {windows.of_generation('rescore-test', 3).name}"
    assert later.extra["windows"] == f"secret {windows.of_generation('rescore-test', 4).name}"
    assert later.metrics.perplexity != first.metrics.perplexity  # other text, another loss
    (kept,) = (tmp_path / "git" / "darwin-graphs").iterdir()
    assert (kept / GRAPH_FILE).is_file()
    size = sum(p.stat().st_size for p in kept.iterdir())
    print(f"kept for re-scoring: {size / 1e6:.2f} MB ({sorted(p.name for p in kept.iterdir())})")
    assert size < 20e6
