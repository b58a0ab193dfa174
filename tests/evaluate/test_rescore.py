"""A tree trained in one generation is scored again, not trained again, on the next one's windows.

The engine's evaluator, the real harness and sandbox: the first evaluation
trains and keeps the exported graph and its curve's checkpoints; the next ones
run only the graph scorer, the curve included. The kept entry's logic (what
makes an entry whole) is tested on its own, quickly.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from darwin_bot.cli.app import TrustedEvaluator
from darwin_bot.config import from_dict
from darwin_bot.core import Budget
from darwin_bot.evaluate import SandboxRun, harness, rescore, windows
from darwin_bot.evaluate import curve as curve_mod
from darwin_bot.evaluate.claims import Report
from darwin_bot.evaluate.export_step import GRAPH_FILE


def _placement(point: dict) -> dict:
    """A curve point without what a re-score measures again."""
    return {k: v for k, v in point.items() if k not in ("val_loss", "reason")}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("bwrap")
def test_a_trained_tree_is_scored_again_on_each_generations_windows(
    make_tree, corpus: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(windows.ENV, "rescore-test")
    cfg = from_dict(
        {
            "budget": {"iters": 8, "data": str(corpus)},
            "sandbox": {"backend": "bwrap", "timeout_s": 120.0, "memory_mb": 2048},
        }
    )
    ev = TrustedEvaluator(cfg, tmp_path, secret_dir=tmp_path / "git")
    (tmp_path / "git").mkdir()
    tree = make_tree("train_curve.py", target="on time")  # saves the curve's checkpoints

    ev.at_generation(3)
    first = ev(tree, seed=1)
    assert first.ok, first.reason + first.log_tail
    assert "rescored" not in first.extra
    curve = first.extra["curve"]
    assert len(curve["points"]) >= 2 and curve["points"][0]["val_loss"] is not None, curve

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
        rescored = result.extra["curve"]
        for field in ("requested", "axis", "windows", "probes", "note"):
            assert rescored[field] == curve[field], field
        assert list(map(_placement, rescored["points"])) == list(map(_placement, curve["points"]))
        assert rescored["score_wall_s"] > 0  # its checkpoints were scored again
        assert rescored["points"][-1]["val_loss"] == result.metrics.val_loss
    assert first.metrics is not None and again.metrics is not None and later.metrics is not None
    assert again.metrics.perplexity == first.metrics.perplexity
    assert again.extra["curve"]["points"] == curve["points"]  # same windows: the same losses
    assert first.extra["windows"] == f"secret {windows.of_generation('rescore-test', 3).name}"
    assert later.extra["windows"] == f"secret {windows.of_generation('rescore-test', 4).name}"
    assert later.metrics.perplexity != first.metrics.perplexity  # other text, another loss
    new = [p["val_loss"] for p in later.extra["curve"]["points"][:-1]]
    assert all(v is not None and math.isfinite(v) for v in new)
    assert all(v != p["val_loss"] for v, p in zip(new, curve["points"], strict=False))
    (kept,) = (tmp_path / "git" / "darwin-graphs").iterdir()
    assert (kept / GRAPH_FILE).is_file()
    size = sum(p.stat().st_size for p in kept.iterdir())
    print(f"kept for re-scoring: {size / 1e6:.2f} MB ({sorted(p.name for p in kept.iterdir())})")
    assert size < 20e6


def _ctx(tmp_path: Path) -> SimpleNamespace:
    opts = SimpleNamespace(
        smoke=False, keep_dir=tmp_path / "kept", seed=1, preset="tiny", budget=Budget(iters=8)
    )
    opts.program = "darwin"
    return SimpleNamespace(
        opts=opts, hash="t1", device="cpu", meta={"sha256": "c"}, scratch=tmp_path / "scratch"
    )


def _layout(folder: Path, checkpoints: int) -> curve_mod.Layout:
    """A curve of ``checkpoints`` copies in ``folder``, then the end."""
    folder.mkdir(parents=True, exist_ok=True)
    fractions = (0.25, 0.5, 0.75)[:checkpoints]
    paths = []
    for k in range(checkpoints):
        paths.append(folder / f"point-{k}.pt")
        paths[-1].write_bytes(bytes([k]) * 40)
    points = [
        curve_mod.CurvePoint(f, f + 0.1, 2.0 * (k + 1), 1.5 * (k + 1), None, 2 * (k + 1), 3.0 - k)
        for k, f in enumerate(fractions)
    ]
    points.append(curve_mod.CurvePoint(None, 1.0, 9.0, 7.0, None, 8, float("nan")))
    note = "" if checkpoints else "the program saved no checkpoint.pt ...: scored at the end only"
    axis = curve_mod.Axis.CPU
    return curve_mod.Layout(fractions, axis, tuple(points), note, tuple(paths))


def _keep(ctx: SimpleNamespace, layout: curve_mod.Layout | None) -> None:
    out = ctx.scratch / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / GRAPH_FILE).write_bytes(b"g" * 100)
    (out / "model.pt").write_bytes(b"w" * 50)
    run = SandboxRun("bwrap", 0, False, 9.5, "iter 8", max_rss_mb=9.0, cpu_s=7.5)
    report = Report(8, 320.0, 2.0, None)
    rescore.keep("6", ctx, (GRAPH_FILE, "model.pt"), run, report, {"a": 1}, layout)


def test_a_kept_curve_comes_back_whole_or_the_run_is_trained_again(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    layout = _layout(tmp_path / "watched", 3)
    _keep(ctx, layout)
    kept = rescore.find("6", ctx)
    assert kept is not None and kept.curve is not None
    names = sorted(p.name for p in kept.folder.iterdir())
    curve_files = [rescore.CURVE_FILE.format(k) for k in range(3)]
    assert names == sorted([GRAPH_FILE, rescore.KEPT, "model.pt", *curve_files])
    dest = tmp_path / "restored"
    *_, restored = rescore.restore(kept, dest)
    assert restored is not None and restored.points[:-1] == layout.points[:-1]
    assert restored.points[-1].train_loss is None  # NaN is kept as JSON's null, as shown
    assert (restored.axis, restored.note, restored.requested) == (layout.axis, "", layout.requested)
    assert [p.read_bytes() for p in restored.paths] == [p.read_bytes() for p in layout.paths]
    assert all(p.parent == dest for p in restored.paths)  # private copies for the scorer

    # a checkpoint missing, or changed in place: not whole, so trained again and kept anew
    for damage in (
        lambda f: (f / "darwin-curve-1.pt").unlink(),
        lambda f: (f / "darwin-curve-2.pt").write_bytes(b"x" * 40),  # the same size
        lambda f: (f / rescore.KEPT).write_text("{not json", encoding="utf-8"),
    ):
        folder = kept.folder
        damage(folder)
        assert rescore.find("6", ctx) is None
        assert not folder.exists()  # removed: the run trained again keeps its files anew
        _keep(ctx, layout)
        kept = rescore.find("6", ctx)
        assert kept is not None and kept.curve is not None and len(kept.curve.paths) == 3

    # a run that saved no checkpoint is scored at the end only again, and says so again
    other = _ctx(tmp_path)
    other.hash = "t2"
    _keep(other, _layout(tmp_path / "none", 0))
    bare = rescore.find("6", other)
    assert bare is not None and bare.curve is not None and bare.curve.paths == ()
    assert "scored at the end only" in bare.curve.note and len(bare.curve.points) == 1


def test_the_kept_files_cap_counts_the_curves_checkpoints(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    _keep(ctx, _layout(tmp_path / "watched", 3))  # 3 checkpoints of 40 bytes
    (entry,) = ctx.opts.keep_dir.iterdir()
    rest = sum(p.stat().st_size for p in entry.iterdir() if not p.name.startswith("darwin-curve"))
    newer = ctx.opts.keep_dir / "newer"
    newer.mkdir()
    (newer / GRAPH_FILE).write_bytes(b"n" * 100)
    rescore._prune(ctx.opts.keep_dir, limit=100 + rest + 60)  # room for it without its curve
    assert [p.name for p in ctx.opts.keep_dir.iterdir()] == ["newer"]
