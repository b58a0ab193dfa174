"""One evaluation per device: what each concurrent sandbox is given (no GPU needed)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from darwin_bot.evaluate import SandboxRun
from darwin_bot.evaluate.devices import DevicePool, Slot, plan_slots


def test_workers_never_outnumber_the_gpus_and_cpu_workers_split_the_cores():
    four = plan_slots(None, gpus=4, cores=16)
    assert [s.name for s in four] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert all(s.threads == 4 for s in four)
    assert len(plan_slots(8, gpus=4, cores=16)) == 4  # 8 asked for, 4 devices
    assert [s.name for s in plan_slots(2, gpus=4, cores=16)] == ["cuda:0", "cuda:1"]
    cpu = plan_slots(None, gpus=0, cores=8)
    assert len(cpu) == 4 and {s.threads for s in cpu} == {2} and {s.name for s in cpu} == {"cpu"}
    assert [s.threads for s in plan_slots(1, gpus=0, cores=8)] == [8]
    assert len(plan_slots(16, gpus=0, cores=2)) == 2  # never more workers than cores


def test_a_slot_is_held_by_one_evaluation_at_a_time():
    pool = DevicePool([Slot("cuda", "0"), Slot("cuda", "1")])
    with pool.take() as a, pool.take() as b:
        assert a != b
        got: list[Slot] = []
        waiter = threading.Thread(target=lambda: got.append(pool._free.get()))
        waiter.start()
        waiter.join(timeout=0.3)
        assert waiter.is_alive() and not got  # a third evaluation waits for a device
    waiter.join(timeout=5)
    assert got


@pytest.mark.parametrize("n", [2, 3])
def test_n_concurrent_evaluations_on_n_devices_get_n_different_devices(
    n, corpus, tmp_path, monkeypatch
):
    from darwin_bot.cli import app
    from darwin_bot.config import from_dict
    from darwin_bot.evaluate import harness
    from darwin_bot.paths import seed_source

    seen: list[dict[str, str]] = []
    together = threading.Barrier(n, timeout=60)  # all n sandboxes are running at once

    def sandbox(command, **kw):
        seen.append({"env": dict(kw["env"]), "device": kw["device"]})
        together.wait()
        return SandboxRun(kw["backend"], returncode=1, timed_out=False, wall_s=0.1, log_tail="")

    monkeypatch.setattr(harness, "run_sandboxed", sandbox)
    cfg = from_dict({"budget": {"data": str(corpus)}, "sandbox": {"backend": "auto"}})
    pool = DevicePool(plan_slots(None, gpus=n, cores=2 * n))
    evaluator = app.TrustedEvaluator(cfg, tmp_path, pool=pool)
    tree = Path(seed_source()).parent
    with ThreadPoolExecutor(max_workers=n) as workers:
        results = list(workers.map(lambda s: evaluator(tree, seed=s), range(n)))
    visible = sorted(s["env"]["CUDA_VISIBLE_DEVICES"] for s in seen)
    assert visible == [str(i) for i in range(n)]  # each sandbox sees only its own GPU
    assert {s["env"]["DARWIN_DEVICE"] for s in seen} == {"cuda"}
    assert {s["env"]["OMP_NUM_THREADS"] for s in seen} == {"2"}  # the cores split, not all each
    assert sorted(r.extra["worker_device"] for r in results) == [f"cuda:{i}" for i in range(n)]
