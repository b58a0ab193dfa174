"""Sandbox plumbing, the cache key and the peak table, without running agent code."""

from __future__ import annotations

from pathlib import Path

import pytest

from darwin_bot.errors import SandboxError
from darwin_bot.evaluate import peak, sandbox, tree_hash


def test_scrubbed_environment_is_an_allowlist_without_credentials(monkeypatch):
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("DARWIN_THREADS", "2")
    monkeypatch.setenv("HOSTILE_VAR", "x")
    for name in ("MY_SECRET_KEY", "DB_PASSWORD", "DARWIN_TOKEN", "GCP_CREDENTIALS", "AWS_SECRET"):
        monkeypatch.setenv(name, "hunter2")
    env = sandbox.scrub_env({"DARWIN_OUT": "/sandbox/out", "DARWIN_API_KEY": "leak"})
    assert env["LANG"] == "C.UTF-8" and env["DARWIN_THREADS"] == "2"
    assert env["DARWIN_OUT"] == "/sandbox/out" and env["HOME"] == "/tmp"
    assert "HOSTILE_VAR" not in env and "DARWIN_API_KEY" not in env
    assert "hunter2" not in env.values()


def test_an_unusable_backend_says_what_to_install(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda _: None)
    assert sandbox.probe.__wrapped__("bwrap") == "bwrap is not installed"
    monkeypatch.setattr(sandbox, "probe", lambda name: None if name == "none" else "missing")
    with pytest.raises(SandboxError, match="install bubblewrap"):
        sandbox.resolve_backend("bwrap")
    with pytest.raises(SandboxError, match="--sandbox none"):
        sandbox.resolve_backend("auto")  # never falls back to none by itself
    with pytest.raises(SandboxError, match="unknown sandbox backend"):
        sandbox.resolve_backend("docker")
    assert sandbox.resolve_backend("none") == "none"


def test_tree_hash_covers_the_evolvable_files_only(tmp_path: Path):
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "train.py").write_text("print(1)\n")
    (seed / "model.py").write_text("x = 1\n")
    first = tree_hash(tmp_path)
    (tmp_path / "README.md").write_text("not evolvable\n")
    (seed / "__pycache__").mkdir()
    (seed / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0")
    assert tree_hash(tmp_path) == first
    (seed / "model.py").write_text("x = 2\n")
    assert tree_hash(tmp_path) != first
    (seed / "model.py").write_text("x = 1\n")
    (seed / "model.py").rename(seed / "model2.py")
    assert tree_hash(tmp_path) != first  # names count, not only bytes
    assert tree_hash(tmp_path, ("README.md",)) != tree_hash(tmp_path)


def test_peak_table_matches_the_longest_name_first():
    assert peak.lookup("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak.lookup("NVIDIA A10G") == 70e12
    assert peak.lookup("NVIDIA A10") == 125e12
    assert peak.lookup("NVIDIA H100 PCIe") == 756e12
    assert peak.lookup("NVIDIA H200") == 989e12
    assert peak.lookup("NVIDIA L40S") == 362e12
    assert peak.lookup("NVIDIA L4") == 121e12
    assert peak.lookup("AMD Instinct MI300X") == 1307e12
    assert peak.lookup("Some Future GPU") is None


def test_cpu_peak_is_measured_and_named():
    p = peak.peak("cpu", fresh=True)  # not the kept figure: probed now
    assert p.source == "measured" and p.flops > 1e8
    assert p.device.startswith("cpu")


def test_scoring_is_held_to_what_the_cost_limit_leaves_after_training():
    import dataclasses

    from darwin_bot.core import Budget, Status
    from darwin_bot.evaluate import EvalOptions
    from darwin_bot.evaluate.limits import score_limit

    opts = EvalOptions(budget=Budget(iters=100), baseline_train_wall_s=60,
                       baseline_score_wall_s=20, max_cost_ratio=1.5, allowance_s=5,
                       timeout_s=900)  # fmt: skip
    limit = score_limit(opts, train_wall_s=50.0)
    assert limit.status is Status.OVER_BUDGET and limit.seconds == 1.5 * 80 + 5 - 50
    assert score_limit(opts, train_wall_s=200.0).seconds == 1.0  # nothing left: a token second
    for free in (
        dataclasses.replace(opts, baseline_score_wall_s=None),  # a baseline from before v3
        dataclasses.replace(opts, smoke=True),
        dataclasses.replace(opts, timeout_s=30),  # the sandbox's own limit is tighter
    ):
        assert score_limit(free, 50.0).status is Status.TIMEOUT


def test_the_wall_limit_follows_the_budget():
    from darwin_bot.core import Budget, Status
    from darwin_bot.evaluate.harness import EvalOptions, wall_limit

    seconds = wall_limit(EvalOptions(budget=Budget(seconds=10), allowance_s=15, timeout_s=900))
    assert seconds.seconds == 25 and seconds.status is Status.TIMEOUT
    iters = EvalOptions(budget=Budget(iters=100), timeout_s=900)
    assert wall_limit(iters).seconds == 900  # no baseline: only the sandbox's limit
    capped = wall_limit(EvalOptions(budget=Budget(iters=100), baseline_train_wall_s=60,
                                    max_cost_ratio=1.5, allowance_s=15))  # fmt: skip
    assert capped.seconds == 105 and capped.status is Status.OVER_BUDGET
    assert wall_limit(EvalOptions(budget=Budget(seconds=9000), timeout_s=900)).seconds == 900


def test_claims_the_measurements_rule_out_are_rejected():
    from darwin_bot.evaluate.claims import ClaimRejected, Report, throughput

    honest = Report(iterations=100, tokens_seen=76_800, train_seconds=60.0, num_params=795_904)
    t = throughput(honest, wall_s=67.0, weight_params=804_096, peak_flops=1e11)
    assert t.flops_per_token == 6 * 804_096 and t.tokens_per_s == pytest.approx(1280.0)
    assert t.mfu == pytest.approx(6 * 804_096 * 1280 / 1e11)
    with pytest.raises(ClaimRejected, match="peak FLOP/s"):
        throughput(Report(100, 76_800e6, 60.0, None), 67.0, 804_096, 1e11)
    with pytest.raises(ClaimRejected, match="saved weights hold"):
        throughput(Report(100, 76_800, 60.0, 8e6), 67.0, 804_096, 1e11)
    with pytest.raises(ClaimRejected, match="process ran"):
        throughput(Report(100, 76_800, 600.0, None), 67.0, 804_096, 1e11)
    fast = throughput(Report(100, 76_800, 1.0, None), 67.0, 804_096, 1e11)
    assert fast.train_seconds == 33.5  # a claimed loop time under half the wall is not believed
    unreadable = throughput(Report(100, 76_800e6, 60.0, None), 67.0, 0, 1e11)
    assert unreadable.mfu == 0.0  # no weights to count: no MFU, not a rejection


def test_the_tail_passes_whole_lines_on_and_survives_a_bad_watcher() -> None:
    import os

    from darwin_bot.evaluate.sandbox.proc import _Tail

    seen: list[str] = []

    def watch(line: str) -> None:
        seen.append(line)
        if line == "boom":
            raise RuntimeError("a display bug must not stop the reading")

    r, w = os.pipe()
    with os.fdopen(r, "rb") as reader:
        tail = _Tail(reader, limit=64, on_line=watch)
        with os.fdopen(w, "wb", buffering=0) as writer:
            for chunk in (b"iter 1: lo", b"ss 2.0\nboom\n", b"x" * 200 + b"\n", b"iter 2: loss\n"):
                writer.write(chunk)
        tail.thread.join(timeout=10)
    assert seen == ["iter 1: loss 2.0", "boom", "iter 2: loss"]  # the 200-byte line dropped
    assert tail.text().endswith("iter 2: loss\n")
