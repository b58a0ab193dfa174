"""benchmarks/seed_throughput.py and _nanogpt.py: log parsing, the scratch copy, the pairing."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import sys
from pathlib import Path
from types import ModuleType

import pytest

from darwin_bot.program import corpus as data

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
NANOGPT = os.environ.get("DARWIN_NANOGPT")  # a karpathy/nanoGPT checkout, for the opt-in test


def _load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))  # seed_throughput imports _nanogpt beside it
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


@pytest.fixture(scope="module")
def ng() -> ModuleType:
    return _load("_nanogpt")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load("seed_throughput")


def test_iteration_lines_of_both_programs_parse(ng: ModuleType) -> None:
    log = "\n".join(
        [
            "step 0: train loss 4.1676, val loss 4.1649",
            "iter 0: loss 4.1897, time 9070.14ms, mfu -100.00%",  # nanoGPT
            "iter 1: loss 3.9012, time 60.41ms, mfu 0.01%",
            "iter 2: loss 3.8000, time 58.50ms, lr 1.00e-03, 13,128 tok/s, mfu 0.28%",  # seed
            "iter 3: loss nan, time 1.00ms",
            "preset tiny: 0.80M parameters on cpu, 768 tokens per iteration",
        ]
    )
    assert ng.parse_iter_times(log) == pytest.approx({0: 9.07014, 1: 0.06041, 2: 0.0585, 3: 0.001})


def test_scratch_copy_leaves_the_checkout_alone(ng: ModuleType, tmp_path: Path) -> None:
    checkout = tmp_path / "nanoGPT"
    for name in ng.NEEDED:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text(f"# {name}\n")
    corpus = data.prepare_synthetic(tmp_path / "corpus", seed=0, tokens=5_000)
    before = sorted(str(p.relative_to(checkout)) for p in checkout.rglob("*"))
    scratch = ng.prepare_scratch(checkout, corpus, tmp_path / "scratch")
    assert sorted(str(p.relative_to(checkout)) for p in checkout.rglob("*")) == before
    for name in ng.NEEDED:
        assert (scratch / name).read_text() == f"# {name}\n"
        assert not (scratch / name).is_symlink()  # Python would resolve it into the checkout
    dataset = scratch / "data" / "shakespeare_char"
    assert (dataset / "val.bin").read_bytes() == (corpus / "val.bin").read_bytes()
    meta = json.loads((corpus / "meta.json").read_text())
    with open(dataset / "meta.pkl", "rb") as f:
        pkl = pickle.load(f)
    assert pkl["vocab_size"] == meta["vocab_size"]
    assert pkl["stoi"] == meta["stoi"]
    assert [pkl["itos"][i] for i in range(meta["vocab_size"])] == list(meta["itos"])


def test_nanogpt_runs_the_seeds_schedule(ng: ModuleType, tmp_path: Path) -> None:
    config = {k: i + 1 for i, k in enumerate(ng.SHARED_KEYS)} | {"max_iters": 200, "bf16": False}
    args = type("Args", (), {"nanogpt_eval_iters": 20})()
    cmd = ng.nanogpt_command(args, config, "cpu", tmp_path / "out")
    assert cmd[1:3] == ["train.py", "config/train_shakespeare_char.py"]
    flags = dict(arg[2:].split("=", 1) for arg in cmd[3:])
    assert {k: flags[k] for k in ng.SHARED_KEYS} == {k: str(config[k]) for k in ng.SHARED_KEYS}
    assert flags["max_iters"] == flags["lr_decay_iters"] == flags["eval_interval"] == "200"
    assert (flags["log_interval"], flags["compile"], flags["dtype"]) == ("1", "False", "float32")
    assert flags["out_dir"] == str(tmp_path / "out")


def test_timed_window_and_spread(ng: ModuleType) -> None:
    run = {"iter_seconds": [9.0, 0.5, 0.1, 0.3, 0.2, 5.0], "wall_seconds": 20.0}
    t = ng.timed(run, 1, 4, tokens_per_iter=100)  # iterations 1..4: 0.5, 0.1, 0.3, 0.2
    assert t["median_iter_ms"] == pytest.approx(250.0)
    assert t["tokens_per_s"] == pytest.approx(400.0)
    assert t["mean_iter_ms"] == pytest.approx(275.0)
    s = ng.spread([1.2, 0.9, 1.0, 1.1, 1.3])
    assert (s["median"], s["min"], s["max"]) == (1.1, 0.9, 1.3)
    assert s["q1"] == pytest.approx(1.0) and s["q3"] == pytest.approx(1.2)


def test_not_a_checkout_is_one_line_and_exit_2(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = data.prepare_synthetic(tmp_path / "corpus", seed=0, tokens=5_000)
    rc = bench.main(["--data", str(corpus), "--nanogpt", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith(f"seed_throughput: --nanogpt {tmp_path} is not a nanoGPT checkout")
    assert len(err.splitlines()) == 1


@pytest.mark.nanogpt_checkout  # opt-in: deselected unless DARWIN_NANOGPT is set (tests/conftest.py)
@pytest.mark.timeout(900)
def test_side_by_side_against_real_nanogpt(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = data.prepare_synthetic(tmp_path / "corpus", seed=0, tokens=20_000)
    argv = ["--data", str(corpus), "--nanogpt", str(NANOGPT), "--pairs", "1", "--iters", "8",
            "--skip", "2", "--threads", "1", "--nanogpt-eval-iters", "2", "--eval-windows", "8"]  # fmt: skip
    assert bench.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "ok" and report["pairs"] == 1
    assert report["timed_iterations"] == [2, 7]
    row = report["runs"][0]
    for side in ("seed", "nanogpt"):
        assert 1.0 < row[side]["val_loss"] < 4.0  # near log(16) = 2.77 for this corpus
        assert row[side]["median_iter_ms"] > 0
    assert report["ratio_tokens_per_s"]["values"] == [
        row["seed"]["tokens_per_s"] / row["nanogpt"]["tokens_per_s"]
    ]
