"""The CPU time of a sandboxed tree, read from the kernel: all of it, and only work."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from darwin_bot.evaluate import Limits, Mount, resolve_backend, run_sandboxed, scrub_env
from darwin_bot.evaluate.accounting import Usage, thread_env

SPIN = "import time\ne = time.process_time() + {s}\nwhile time.process_time() < e: pass\n"

# Spins 0.6 s in a thread, in a child it waits for, in an orphan it never waits for
# (in a session of its own), and in itself; then sleeps.
TREE = f"""
import os, subprocess, sys, threading, time
def spin(s):
    e = time.thread_time() + s
    while time.thread_time() < e: pass
t = threading.Thread(target=spin, args=(0.6,)); t.start()
subprocess.run([sys.executable, "-c", {SPIN.format(s=0.6)!r}])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        spin(0.6); os._exit(0)
    os._exit(0)
spin(0.6); t.join(); time.sleep(1.5)
"""


def _run(backend: str, code: str, tmp_path: Path, **limits: float):
    out = Mount("out", tmp_path, writable=True)
    return run_sandboxed(
        [sys.executable, "-c", code], backend=backend, mounts=[out], cwd=out.inside(backend),
        env=scrub_env(), limits=Limits(**{"timeout_s": 60.0, **limits}),
    )  # fmt: skip


@pytest.mark.parametrize("backend", ["bwrap", "unshare", "none"])
def test_the_whole_tree_is_charged_threads_children_and_orphans(backend, tmp_path):
    backend = resolve_backend(backend)
    run = _run(backend, TREE, tmp_path)
    assert run.returncode == 0, run.log_tail
    # 4 x 0.6 s of spinning (+ interpreter start-ups); the 1.5 s of sleep is not charged
    assert 2.3 < run.cpu_s < 2.4 + 2.0, run.cpu_s
    assert run.wall_s > 1.5


def test_waiting_is_not_work(tmp_path):
    run = _run(resolve_backend("auto"), "import time; time.sleep(2)", tmp_path)
    assert run.returncode == 0 and run.wall_s >= 2.0
    assert run.cpu_s < 1.0, run.cpu_s


def test_a_tree_is_stopped_at_its_cpu_budget_not_before(tmp_path):
    started = time.monotonic()
    run = _run(resolve_backend("auto"), "while True: pass", tmp_path, cpu_s=1.5)
    assert run.timed_out and run.cpu_limited and run.returncode is None
    assert run.cpu_s >= 1.5 and time.monotonic() - started < 30
    sleeper = _run(resolve_backend("auto"), "import time; time.sleep(3)", tmp_path, cpu_s=1.5)
    assert sleeper.returncode == 0 and not sleeper.cpu_limited  # 3 s of wall, no CPU


def test_threads_are_fixed_and_waiting_threads_sleep():
    env = thread_env(3)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["OMP_NUM_THREADS"] == "3"
    assert env["DARWIN_THREADS"] == "3" and thread_env(None) == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_a_run_that_mostly_waited_is_contended():
    assert Usage(wall_s=100.0, cpu_s=40.0, threads=2).contended  # 20% busy
    assert not Usage(wall_s=100.0, cpu_s=150.0, threads=2).contended  # 75% busy
    assert Usage(wall_s=0.0, cpu_s=0.0, threads=2).busy == 1.0


def test_work_left_running_at_exit_is_charged_up_to_the_last_poll(tmp_path):
    # The orphan is killed when the program exits, and the kernel reaps it without
    # charging anyone: the trusted side's polls of /proc have seen its work.
    code = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        e = time.process_time() + 1.0
        while time.process_time() < e: pass
        open("spun", "w").close()
        while True: pass
    os._exit(0)
while not os.path.exists("spun"): time.sleep(0.05)
time.sleep(1.5)  # three polls
"""
    run = _run(resolve_backend("auto"), code, tmp_path)
    assert run.returncode == 0 and (tmp_path / "spun").exists()
    assert run.cpu_s >= 1.0, run.cpu_s


def test_on_a_cpu_the_cost_limit_is_a_cpu_budget_and_on_a_gpu_a_wall_clock():
    from darwin_bot.core import CONTENTION_SLACK, Budget, Status
    from darwin_bot.evaluate import EvalOptions
    from darwin_bot.evaluate.limits import score_limit, train_limit

    opts = EvalOptions(budget=Budget(iters=100), allowance_s=5.0, timeout_s=900.0,
                       baseline_train_wall_s=60.0, baseline_score_wall_s=20.0,
                       baseline_train_cpu_s=10.0, baseline_score_cpu_s=4.0)  # fmt: skip
    cpu = train_limit(opts, "cpu")
    assert cpu.seconds == 900.0  # no wall-clock kill a busy machine could trip
    assert cpu.cpu_s == CONTENTION_SLACK * 1.5 * 10.0 + 5.0 and cpu.status is Status.OVER_BUDGET
    gpu = train_limit(opts, "cuda")
    assert gpu.cpu_s is None and gpu.seconds == 1.5 * 60.0 + 5.0
    left = score_limit(opts, train_wall_s=500.0, device="cpu", train_cpu_s=12.0)
    allowed = 1.5 * 10.0 + 1.5 * 4.0
    assert left.seconds == 900.0 and left.cpu_s == CONTENTION_SLACK * allowed + 5.0 - 12.0
    assert score_limit(opts, 50.0, "cuda").cpu_s is None


def test_the_scoring_sandbox_gets_the_thread_settings_training_gets(tmp_path, monkeypatch):
    # Without them the scoring worker's OpenMP threads spin while a sibling waits for a
    # core, and the program is charged the machine's load (60 CPU s for 4 s of work seen).
    import numpy as np

    from darwin_bot.evaluate import Limits, SandboxRun, score_run
    from darwin_bot.evaluate.scoring import plan_probes

    given: dict[str, str] = {}

    def sandbox(command, **kw):
        given.update(kw["env"])
        return SandboxRun(kw["backend"], None, True, 0.1, "")

    monkeypatch.setattr(score_run, "run_sandboxed", sandbox)
    val = np.arange(1000, dtype=np.uint16) % 7
    plan = plan_probes(val, 8, 7, 4, 1, n_probes=8, rng=np.random.default_rng(0))
    (tmp_path / "g.pt2").write_bytes(b"")
    job = score_run.ScoreJob("none", "cpu", tmp_path / "score", tmp_path / "g.pt2",
                             tmp_path / "none.pt", "", Limits(5.0), threads=2)  # fmt: skip
    score_run.score_graph(job, plan, 7)
    assert given["OMP_WAIT_POLICY"] == "PASSIVE" and given["OMP_NUM_THREADS"] == "2"
    assert given["DARWIN_THREADS"] == "2"
