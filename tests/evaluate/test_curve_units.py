"""The trusted curve's parts without a sandbox: the snapshots, the weights put into the graph,
the scoring protocol, where the points go on the budget axis, and the contracts' fractions."""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from darwin_bot.core import Budget, EvalResult, Metrics, Status
from darwin_bot.core import time_to_loss as ttl
from darwin_bot.evaluate import curve as curve_mod
from darwin_bot.evaluate import curve_watch
from darwin_bot.evaluate.curve_score import UNFIT, CurveConsumer
from darwin_bot.evaluate.curve_weights import KEPT_ELEMENTS, Unfit, state_dict, substitute
from darwin_bot.evaluate.scoring import Scorer, plan_probes
from darwin_bot.program import DarwinContract
from darwin_bot.program.nanogpt import NanoGPTContract, eval_interval


def _save(path: Path, value: float) -> None:
    """The seed's way: torch.save elsewhere, then rename over the checkpoint."""
    torch.save({"model": {"w": torch.full((4,), value)}}, str(path) + ".tmp")
    os.replace(str(path) + ".tmp", path)


def _watcher(tmp_path: Path, limit: int = 2) -> curve_watch.CheckpointWatcher:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    w = curve_watch.CheckpointWatcher(out, "checkpoint.pt", tmp_path / "curve", limit, "model.pt")
    w.dest.mkdir()
    return w


def test_each_new_checkpoint_is_copied_once_and_later_writes_cannot_change_a_copy(tmp_path):
    w = _watcher(tmp_path)
    w.poll()
    assert w.snapshots == []
    _save(w.out / "checkpoint.pt", 1.0)
    w.poll()
    w.poll()  # unchanged: not copied again
    assert len(w.snapshots) == 1
    _save(w.out / "checkpoint.pt", 2.0)
    w.poll()
    _save(w.out / "checkpoint.pt", 3.0)  # past the points asked for: not taken
    w.poll()
    assert len(w.snapshots) == 2
    values = [float(torch.load(s.path, weights_only=True)["model"]["w"][0]) for s in w.snapshots]
    assert values == [1.0, 2.0]
    assert w.snapshots[0].at_s <= w.snapshots[1].at_s


def test_links_fifos_and_files_that_never_become_a_zip_are_not_copied(tmp_path):
    w = _watcher(tmp_path)
    secret = tmp_path / "secret.pt"
    _save(secret, 9.0)
    (w.out / "checkpoint.pt").symlink_to(secret)
    w.poll()
    (w.out / "checkpoint.pt").unlink()
    os.mkfifo(w.out / "checkpoint.pt")  # opening it would block the harness
    w.poll()
    assert w.snapshots == [] and w.skipped == []
    (w.out / "checkpoint.pt").unlink()
    (w.out / "checkpoint.pt").write_bytes(b"PK\x03\x04 a zip's start, never its end")
    for _ in range(curve_watch.GIVE_UP_TRIES):
        w.poll()
    assert w.snapshots == [] and "not a torch zip archive" in w.skipped[0]
    assert list(w.dest.iterdir()) == []  # nothing half-copied left behind


def test_a_sparse_checkpoint_is_refused_without_being_copied(tmp_path, monkeypatch):
    # a hole then a zip: no disk for the program, its whole size written here if copied
    w = _watcher(tmp_path)
    _save(tmp_path / "real.pt", 1.0)
    with open(w.out / "checkpoint.pt", "wb") as f:
        f.truncate(64 * 1024 * 1024)
        f.seek(64 * 1024 * 1024)
        f.write((tmp_path / "real.pt").read_bytes())
    assert os.stat(w.out / "checkpoint.pt").st_blocks * 512 < 1024 * 1024  # it has a hole
    copied = []
    monkeypatch.setattr(curve_watch.shutil, "copyfileobj", lambda *a, **k: copied.append(a))
    w.poll()
    assert w.snapshots == [] and copied == []
    assert w.skipped == ["the checkpoint is a sparse file (holes): save it with torch.save"]


def test_the_thread_takes_snapshots_while_the_program_runs_and_notes_the_model(tmp_path):
    w = _watcher(tmp_path)
    with w:
        _save(w.out / "checkpoint.pt", 1.0)
        deadline = w.elapsed() + 20
        while not w.snapshots and w.elapsed() < deadline:
            curve_watch.time.sleep(0.05)
        _save(w.out / "model.pt", 5.0)
    assert len(w.snapshots) == 1 and w.model_at_s is not None
    assert w.model_at_s >= w.snapshots[0].at_s


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.register_buffer("scale", torch.ones(2))


def _graph_weights(net: torch.nn.Module, prefix: str = "inner.") -> dict[str, torch.Tensor]:
    """What the scorer holds for an exported wrapper of ``net``: its tensors under the prefix."""
    return {prefix + k: v.detach().clone() for k, v in net.state_dict().items()}


def test_a_checkpoint_replaces_every_weight_of_the_graph_by_name():
    final, early = _Net(), _Net()
    graph = _graph_weights(final)
    graph["inner.lin.weight"] = graph["inner.lin.weight"].t().contiguous().t()  # odd strides
    saved = {"model": {"_orig_mod." + k: v for k, v in early.state_dict().items()}, "iter": 3}
    got = substitute(graph, state_dict(saved))
    for key, value in early.state_dict().items():
        assert torch.equal(got["inner." + key], value)
    assert got["inner.lin.weight"].stride() == graph["inner.lin.weight"].stride()


def test_a_checkpoint_that_lacks_what_forward_reads_or_differs_in_shape_does_not_fit():
    final = _Net()
    graph = _graph_weights(final)
    graph["inner.hidden_final_weights"] = torch.zeros(KEPT_ELEMENTS + 1)  # never saved
    with pytest.raises(Unfit, match="lacks 1 of the graph's weights"):
        substitute(graph, state_dict(final.state_dict()))
    graph = _graph_weights(final)
    graph["lifted_tensor_0"] = torch.tensor(0.5)  # a constant export lifted: may stay
    assert torch.equal(substitute(graph, final.state_dict())["lifted_tensor_0"], torch.tensor(0.5))
    wrong = {**final.state_dict(), "lin.weight": torch.zeros(3, 3)}
    with pytest.raises(Unfit, match="lin.weight is"):
        substitute(_graph_weights(final), wrong)
    with pytest.raises(Unfit, match="not a state dict"):
        state_dict([1, 2])


def _frames(plan, logits: np.ndarray) -> bytes:
    rows = len(plan.windows) + len(plan.probes)
    out = b"NPAR" + struct.pack("<QQ", 0, 0)
    for _ in range(rows):
        out += b"DLGT" + struct.pack("<I3I", 3, *logits.shape) + logits.astype("<f4").tobytes()
    return out


def test_the_curve_protocol_gives_each_checkpoint_its_loss_or_its_reason():
    vocab, context = 5, 8
    val = np.arange(400, dtype=np.uint16) % vocab
    plan = plan_probes(val, context, vocab, 4, 1, n_probes=6, rng=np.random.default_rng(0))
    uniform = np.zeros((1, context, vocab))
    why = b"the checkpoint lacks 2 of the graph's weights"
    stream = io.BytesIO(
        _frames(plan, uniform) + UNFIT + struct.pack("<I", len(why)) + why + _frames(plan, uniform)
    )
    consumer = CurveConsumer([Scorer(plan, vocab) for _ in range(3)])
    consumer.consume(stream)
    assert consumer.done == 3 and consumer.unfit == {1: why.decode()}
    for k in (0, 2):
        consumer.scorers[k].verdict()
        assert consumer.scorers[k].val_loss == pytest.approx(np.log(vocab))


def _result(budget: Budget) -> EvalResult:
    m = Metrics(2.0, 7.39, 0.01, 1.0, 1.0, 1.0)
    return EvalResult(Status.OK, "", m, "cpu", 0, budget, "5", "h")


def test_a_program_that_saves_no_checkpoint_is_scored_at_the_end_only_and_says_so(tmp_path):
    w = _watcher(tmp_path, limit=3)
    run = curve_mod.CurveRun((0.25, 0.5, 0.75), (0.25, 0.5, 0.75), w)
    run.on_line("iter 10: loss 2.5000, time 1ms")
    w.model_at_s = w.elapsed() + 1.0  # the model was written after that log line
    layout = curve_mod.lay_out(run, Budget(iters=10), None, 0.0, 13.0)
    result = curve_mod.attach(_result(Budget(iters=10)), layout, None)  # type: ignore[arg-type]  # nothing to score
    curve = result.extra["curve"]
    assert [p["budget_fraction"] for p in curve["points"]] == [1.0]
    assert curve["points"][0]["val_loss"] == 2.0 and curve["points"][0]["iteration"] == 10
    assert "saved no checkpoint.pt" in curve["note"] and "scored at the end only" in curve["note"]


def test_points_go_where_the_harness_clock_puts_them():
    place, axis_for, at, A = curve_mod.place, curve_mod.axis_for, curve_mod.Clock, curve_mod.Axis
    iters = Budget(iters=100)
    # seconds budget: the clock's share of the budget, whatever was asked
    assert place(A.SECONDS, Budget(seconds=40), at(10.0, 3.0), 0.75, at(40.0, 9.0)) == 0.25
    # iteration budget on a GPU: the share of the run's wall time, never below the fraction asked
    assert place(A.WALL, iters, at(36.0), 0.25, at(40.0)) == 0.9  # saved late: counted late
    assert place(A.WALL, iters, at(2.0), 0.25, at(40.0)) == 0.25
    assert place(A.WALL, iters, at(50.0), None, at(40.0)) == 1.0
    # on a CPU: the share of the tree's CPU time, whatever the wall clock says
    assert place(A.CPU, iters, at(36.0, 5.0), 0.25, at(40.0, 10.0)) == 0.5
    assert place(A.CPU, iters, at(2.0, 1.0), 0.25, at(40.0, 10.0)) == 0.25
    assert axis_for(Budget(seconds=40), "cpu", True) is A.SECONDS
    assert axis_for(iters, "cpu", True) is A.CPU
    assert axis_for(iters, "wall", True) is A.WALL  # a GPU is charged wall time
    assert axis_for(iters, "cpu", False) is A.WALL  # the tree was never read


def _run_seen(tmp_path: Path, model_at: tuple[float, float | None]) -> curve_mod.CurveRun:
    """A run whose watcher saw checkpoints at (wall, CPU) 3/2, 5/4, 7/6 s, the model at ``model_at``."""
    tmp_path.mkdir()
    w = _watcher(tmp_path, limit=3)
    w.snapshots = [
        curve_watch.Snapshot(w.dest / f"p{k}", t, t - 1.0) for k, t in enumerate((3.0, 5.0, 7.0))
    ]
    w.model_at_s, w.model_cpu_s, w.tree_read = *model_at, True
    return curve_mod.CurveRun((0.25, 0.5, 0.75), (0.25, 0.5, 0.75), w)


def _time_to_loss(run: curve_mod.CurveRun, measure: str, target: float) -> float:
    result = _result(Budget(iters=100))
    axis, end, clocks = curve_mod._clocks(run, result.budget, measure, 8.5, 9.5)
    points = [
        ttl.CurvePoint(curve_mod.place(axis, result.budget, c, f, end), c.wall_s, loss)
        for c, f, loss in zip(
            [*clocks, end], [*run.fractions, None], (3.0, 2.6, 2.5, 2.45), strict=True
        )
    ]
    reached = ttl.time_to_loss(points, target)
    assert reached is not None
    return reached.fraction


def test_a_pause_before_the_last_write_gains_nothing_on_the_cpu_axis(tmp_path):
    honest = _run_seen(tmp_path / "honest", (9.0, 8.0))
    sleepy = _run_seen(tmp_path / "sleepy", (29.0, 8.0))  # slept 20 s, no CPU, then wrote
    on_cpu = [_time_to_loss(r, "cpu", 2.55) for r in (honest, sleepy)]
    assert on_cpu[1] == pytest.approx(on_cpu[0]) and on_cpu[0] == pytest.approx(0.625)
    # on the wall axis (a GPU's) the same pause makes it reach the loss "sooner"
    on_wall = [_time_to_loss(r, "wall", 2.55) for r in (honest, sleepy)]
    assert on_wall[1] == pytest.approx(0.625) and on_wall[0] == pytest.approx(0.6667, abs=1e-3)


def test_a_cpu_figure_read_after_the_exit_counts_as_the_runs_total(tmp_path):
    run = _run_seen(tmp_path / "run", (9.0, None))  # the model's last write seen after the reap
    run.watcher.snapshots[2] = dataclasses.replace(run.watcher.snapshots[2], cpu_s=None)
    axis, end, clocks = curve_mod._clocks(run, Budget(iters=100), "cpu", 8.5, 9.5)
    assert axis is curve_mod.Axis.CPU and end.cpu_s == 8.5
    assert [c.cpu_s for c in clocks] == [2.0, 4.0, 8.5]  # late, never early


def test_the_watcher_stamps_a_snapshot_with_the_cpu_time_of_the_tree_it_was_given(tmp_path):
    w = _watcher(tmp_path)
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass\n"
    burn += "time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", burn])
    try:
        w.started(proc.pid)
        deadline = time.monotonic() + 30
        while (w.cpu() or 0.0) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.05)
        _save(w.out / "checkpoint.pt", 1.0)
        w.poll()
    finally:
        proc.kill()
        proc.wait()
    assert w.tree_read and w.snapshots[0].cpu_s is not None and w.snapshots[0].cpu_s >= 0.4
    w._root = None  # what __exit__ does once the tree is reaped
    _save(w.out / "model.pt", 2.0)
    w.poll()
    assert w.model_at_s is not None and w.model_cpu_s is None


def test_contracts_ask_for_the_fractions_they_can_save_at():
    asked = (0.25, 0.5, 0.75)
    assert DarwinContract().curve_fractions(Budget(iters=10), asked) == asked
    assert eval_interval(100, asked) == 25 and eval_interval(10, asked) == 10
    assert eval_interval(100, (0.1, 0.5)) == 100  # not evenly spaced: one save, at the end
    nano = NanoGPTContract()
    assert nano.curve_fractions(Budget(iters=100), asked) == asked
    assert nano.curve_fractions(Budget(iters=10), asked) == ()
    with pytest.raises(Exception, match="increasing"):
        curve_mod.check_fractions((0.5, 0.25))
    assert curve_mod.train_env(asked) == {"DARWIN_CURVE": "0.25,0.5,0.75"}
