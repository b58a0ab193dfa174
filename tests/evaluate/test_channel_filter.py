"""Every sandbox denies what only a page-cache channel needs, and shares no data file's inode.

The probe program (``programs/train_cache_relay.py``) tries each call on a file the
sandbox can read; it runs under the real launcher, in bwrap and in the unshare
backend, and through ``darwin evaluate``, where the honest training after it
must still score ``ok``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from darwin_bot.evaluate import Limits, Mount, scrub_env, seccomp
from darwin_bot.evaluate.sandbox import probe, run_sandboxed
from darwin_bot.evaluate.scratch import make_train_data
from tests.conftest import require_tool

PROGRAMS = Path(__file__).resolve().parent / "programs"
DENIED = (
    "fadvise64", "readahead", "mincore", "cachestat", "preadv2_nowait", "madvise_pageout",
    "io_uring_setup", "io_setup", "x32_fadvise64",
)  # fmt: skip
ALLOWED = ("preadv2_plain", "madvise_dontneed")


def _probes(log: str) -> dict[str, str]:
    return dict(re.findall(r"PROBE (\w+): (\S+)", log))


def _assert_filtered(log: str) -> None:
    seen = _probes(log)
    assert set(seen) == set(DENIED) | set(ALLOWED), log
    assert {n: seen[n] for n in DENIED} == dict.fromkeys(DENIED, "EPERM"), log
    assert all(seen[n] == "allowed" for n in ALLOWED), log


def test_the_filter_checks_the_architecture_first_and_ends_in_a_verdict() -> None:
    prog = seccomp.program()
    raw = seccomp.packed()
    assert len(raw) == 8 * len(prog) and struct.unpack("=HBBI", raw[:8]) == prog[0]
    assert prog[0] == (seccomp.LD_ABS, 0, 0, seccomp.OFF_ARCH)
    assert prog[1][0] == seccomp.JEQ and prog[1][3] == seccomp.AUDIT_ARCH_X86_64
    assert prog[-2:] == [
        (seccomp.RET, 0, 0, seccomp.RET_ALLOW),
        (seccomp.RET, 0, 0, seccomp.RET_EPERM),
    ]
    for i, (code, jt, jf, _k) in enumerate(prog):  # every jump lands inside the program
        if code in (seccomp.JEQ, seccomp.JGE, seccomp.JSET):
            assert i + 1 + max(jt, jf) < len(prog)
    denied = {k for code, _jt, _jf, k in prog if code == seccomp.JEQ}
    assert {seccomp.NR[n] for n in seccomp.DENIED} <= denied
    assert seccomp.NR["cachestat"] == 451 and seccomp.NR["fadvise64"] == 221


def test_another_machine_gets_a_stated_reason_not_a_silent_gap(monkeypatch) -> None:
    monkeypatch.setattr(seccomp.platform, "machine", lambda: "aarch64")
    assert "x86_64 Linux only" in seccomp.install()  # installs nothing, says why


@pytest.mark.parametrize("backend", ["bwrap", "unshare"])
def test_each_channel_call_is_denied_in_the_sandbox(backend: str, tmp_path: Path) -> None:
    why = probe(backend)
    require_tool(why is None, f"{backend} sandbox unusable: {why}")
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    np.arange(50_000, dtype=np.uint16).tofile(data / "train.bin")
    src = (PROGRAMS / "train_cache_relay.py").read_text()
    (out / "probe.py").write_text(src[: src.index("runpy.run_path(")])  # the probes alone
    mounts = [Mount("data", data), Mount("out", out, writable=True)]
    env = {**scrub_env(), "DARWIN_DATA": mounts[0].inside(backend)}
    run = run_sandboxed(
        [sys.executable, f"{mounts[1].inside(backend)}/probe.py"],
        backend=backend,
        mounts=mounts,
        cwd=mounts[1].inside(backend),
        env=env,
        limits=Limits(timeout_s=60, memory_mb=2048),
    )
    assert run.returncode == 0, run.log_tail
    _assert_filtered(run.log_tail)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_an_honest_training_runs_under_the_filter_and_the_probes_gain_nothing(
    bwrap: None, make_tree, evaluate
) -> None:
    result = evaluate(make_tree(train="train_cache_relay.py", timeout_s=90.0)).result
    assert result["status"] == "ok", result["reason"]
    _assert_filtered(result["log_tail"])


def _relay_module():
    spec = importlib.util.spec_from_file_location("relay", PROGRAMS / "model_cache_relay.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_relay_is_a_working_channel_outside_the_sandbox() -> None:
    """Unfiltered, one process's 32 bits reach another through a shared file's page cache."""
    relay = _relay_module()
    for _ in range(3):  # another reader of the carrier could spoil one try
        word = "".join(str(b & 1) for b in os.urandom(relay.BITS))
        relay.send(relay.carrier(), word)  # here; received by another process
        argv = [sys.executable, str(PROGRAMS / "model_cache_relay.py"), relay.carrier(), "receive"]
        got = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
        if got == word:
            return
    pytest.fail(f"the relay carried nothing outside the sandbox: sent {word}, received {got}")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_page_cache_relay_between_scoring_sandboxes_carries_nothing(
    bwrap: None, make_tree, evaluate
) -> None:
    # the same public windows for both: secret ones differ per evaluation, and the two
    # perplexities are compared to the last digit
    honest = evaluate(make_tree(timeout_s=90.0), "--fixed-windows").result
    relay = evaluate(make_tree(model="model_cache_relay.py", timeout_s=90.0), "--fixed-windows")
    relay = relay.result
    assert relay["status"] == "ok", relay["reason"]
    log = relay["log_tail"]
    assert log.count("RELAY received: denied") == log.count("RELAY sent: denied") >= 1, log
    assert "RELAY received 0" not in log and "RELAY received 1" not in log
    assert relay["metrics"]["perplexity"] == pytest.approx(
        honest["metrics"]["perplexity"], rel=1e-9
    )


def test_each_evaluation_gets_its_own_copy_of_the_training_data(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    np.arange(1000, dtype=np.uint16).tofile(corpus / "train.bin")
    (corpus / "meta.json").write_text('{"vocab_size": 1000}')
    make_train_data(corpus, tmp_path / "scratch", smoke=False)
    copy, original = os.stat(tmp_path / "scratch" / "train.bin"), os.stat(corpus / "train.bin")
    assert (copy.st_dev, copy.st_ino) != (original.st_dev, original.st_ino)  # no shared page cache
    assert (tmp_path / "scratch" / "train.bin").read_bytes() == (corpus / "train.bin").read_bytes()
