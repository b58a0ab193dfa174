"""Hostile agents through ``darwin evaluate`` with the bubblewrap sandbox.

Each program tries one escape; the test asserts the sandbox stopped it and the
result is a value (failed / timeout / rejected), never a crash of the evaluator.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("bwrap")]


def _marked_processes(marker: bytes) -> list[int]:
    """Pids whose environment holds ``marker`` (the unique DARWIN_SEED of a test)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_model_that_peeks_at_later_tokens_is_rejected(make_tree, evaluate):
    honest = evaluate(make_tree(train="train_fake.py", model="model_table.py")).result
    assert honest["status"] == "ok", honest
    assert honest["extra"]["causal_probes"] >= 512
    cheat = evaluate(make_tree(train="train_fake.py", model="model_peek.py")).result
    assert cheat["status"] == "rejected"
    assert "not causal" in cheat["reason"]
    assert cheat["metrics"] is None


def test_crash_is_failed_with_the_traceback_tail(make_tree, evaluate):
    result = evaluate(make_tree(train="train_crash.py")).result
    assert result["status"] == "failed"
    assert "exited with code 1" in result["reason"]
    assert "Traceback" in result["log_tail"] and "boom-4f1c" in result["log_tail"]


def test_corrupted_model_file_is_rejected_as_not_exportable(make_tree, evaluate):
    result = evaluate(make_tree(train="train_corrupt.py")).result
    assert result["status"] == "rejected"
    assert "cannot be exported" in result["reason"] and "[1, 64]" in result["reason"]
    assert "saved garbage" in result["log_tail"]  # training itself went fine


def test_network_is_unreachable(make_tree, evaluate):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    try:
        result = evaluate(make_tree(train="train_socket.py", target=str(port))).result
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected to the host's loopback
    finally:
        listener.close()
    log = result["log_tail"]
    assert result["status"] == "failed"
    assert "CONNECTED" not in log
    assert log.count(": denied (") == 3, log


def test_secrets_in_the_parent_environment_do_not_reach_agent_code(
    make_tree, evaluate, monkeypatch
):
    monkeypatch.setenv("MY_SECRET_KEY", "hunter2")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "hunter3")
    monkeypatch.setenv("DARWIN_API_TOKEN", "hunter4")  # allowed prefix, secret-looking name
    monkeypatch.setenv("DARWIN_THREADS", "1")
    result = evaluate(make_tree(train="train_env.py")).result
    names = result["log_tail"].split("ENV:", 1)[1].split()
    assert "DARWIN_THREADS" in names and "DARWIN_DATA" in names  # the contract gets through
    for secret in ("MY_SECRET_KEY", "AWS_SESSION_TOKEN", "DARWIN_API_TOKEN"):
        assert secret not in names
    assert "hunter" not in result["log_tail"]


def test_writes_outside_the_output_folder_are_denied(make_tree, evaluate, tmp_path, corpus):
    host_file = tmp_path / "pwned.txt"
    before = (corpus / "train.bin").stat().st_mtime_ns
    tree = make_tree(train="train_write_outside.py", target=str(host_file))
    result = evaluate(tree).result
    log = result["log_tail"]
    assert result["status"] == "failed"
    assert "WRITTEN" not in log, log
    assert log.count(": denied (") == 7, log
    assert "WRITE out: ok" in log  # the one writable folder is writable
    assert not host_file.exists()
    assert not (tree / "seed" / "planted.py").exists()
    assert (corpus / "train.bin").stat().st_mtime_ns == before


def test_held_out_split_is_not_readable_from_training(make_tree, evaluate, corpus):
    assert (corpus / "val.bin").exists()  # there is something to find on the host
    result = evaluate(make_tree(train="train_find_val.py", target=str(corpus))).result
    assert "VAL: not found" in result["log_tail"], result["log_tail"]


def test_fork_bomb_is_bounded_by_the_process_limit(make_tree, evaluate):
    result = evaluate(make_tree(train="train_forkbomb.py", max_procs=32), "--seed", "90417").result
    log = result["log_tail"]
    assert result["status"] == "failed"
    assert "FORK: blocked after" in log, log
    assert int(log.split("blocked after ")[1].split()[0]) < 32
    assert _marked_processes(b"DARWIN_SEED=90417") == []  # every child is gone
    subprocess.run(["true"], check=True)  # and the host can still start processes


def test_endless_program_times_out_and_everything_it_started_dies(make_tree, evaluate):
    tree = make_tree(train="train_loop.py")
    run = evaluate(tree, "--timeout", "4", "--seed", "90418")
    assert run.result["status"] == "timeout" and "4 s limit" in run.result["reason"]
    assert "LOOP: started" in run.result["log_tail"]
    assert run.seconds < 4 + 3 + 10  # timeout + grace + start-up, not forever
    assert _marked_processes(b"DARWIN_SEED=90418") == []  # the child in its own session too


def test_unbounded_allocation_hits_the_memory_limit(make_tree, evaluate):
    result = evaluate(make_tree(train="train_alloc.py", memory_mb=768)).result
    log = result["log_tail"]
    assert result["status"] == "failed"
    assert "ALLOC: limited at" in log, log
    assert int(log.split("limited at ")[1].split()[0]) < 768
