"""Corpus preparation: tiny Shakespeare (from the shared copy), the synthetic source, the CLI."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import numpy as np
import pytest

from darwin_bot.cli import main
from darwin_bot.errors import DataError
from darwin_bot.program import corpus as data
from tests.conftest import SHARED_CORPUS, require_tool

FILES = ("train.bin", "val.bin", "meta.json")


def _corpus() -> Path:
    require_tool(SHARED_CORPUS.is_file(), f"tiny Shakespeare corpus not at {SHARED_CORPUS}")
    return SHARED_CORPUS


@pytest.fixture(scope="module")
def shakespeare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return data.prepare_shakespeare(tmp_path_factory.mktemp("sh") / "out", input_path=_corpus())


def _closed_port_url() -> str:
    """A loopback URL nothing listens on: the download fails fast, without the network."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/input.txt"


# --------------------------------------------------------------------------- Shakespeare


def test_shakespeare_vocab_and_split(shakespeare: Path) -> None:
    text = _corpus().read_text(encoding="utf-8")
    meta = data.load_meta(shakespeare)
    assert meta["kind"] == "shakespeare"
    assert meta["vocab_size"] == 65
    assert meta["itos"] == sorted(set(text))
    assert meta["sha256"] == data.SHAKESPEARE_SHA256
    assert meta["train_tokens"] == int(len(text) * 0.9)
    assert meta["train_tokens"] + meta["val_tokens"] == len(text)
    train = np.fromfile(shakespeare / "train.bin", dtype=np.uint16)
    val = np.fromfile(shakespeare / "val.bin", dtype=np.uint16)
    assert (len(train), len(val)) == (meta["train_tokens"], meta["val_tokens"])
    decoded = "".join(meta["itos"][i] for i in np.concatenate([train[:200], val[-200:]]))
    assert decoded == text[:200] + text[-200:]
    assert all(meta["stoi"][ch] == i for i, ch in enumerate(meta["itos"]))


def test_second_prepare_is_a_no_op(shakespeare: Path) -> None:
    before = {
        n: ((shakespeare / n).read_bytes(), (shakespeare / n).stat().st_mtime_ns) for n in FILES
    }
    said: list[str] = []
    data.prepare_shakespeare(shakespeare, input_path=_corpus(), echo=said.append)
    after = {
        n: ((shakespeare / n).read_bytes(), (shakespeare / n).stat().st_mtime_ns) for n in FILES
    }
    assert after == before
    assert "up to date" in said[-1]


def test_complete_folder_is_not_downloaded_again(shakespeare: Path) -> None:
    said: list[str] = []
    data.prepare_shakespeare(shakespeare, url=_closed_port_url(), echo=said.append)
    assert "up to date" in said[-1]


def test_checksum_mismatch_is_an_error(tmp_path: Path) -> None:
    modified = tmp_path / "input.txt"
    modified.write_bytes(b"To be, or not to be, that is the question.\n" * 100)
    with pytest.raises(DataError, match=f"expected {data.SHAKESPEARE_SHA256}"):
        data.prepare_shakespeare(tmp_path / "out", input_path=modified)
    assert not (tmp_path / "out").exists()


def test_modified_copy_of_the_corpus_is_rejected(tmp_path: Path) -> None:
    modified = tmp_path / "input.txt"
    modified.write_bytes(_corpus().read_bytes().replace(b"ROMEO", b"ROMAN", 1))
    with pytest.raises(DataError, match="not the canonical tiny Shakespeare"):
        data.prepare_shakespeare(tmp_path / "out", input_path=modified)


def test_missing_input_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist.*--synthetic"):
        data.prepare_shakespeare(tmp_path / "out", input_path=tmp_path / "nope.txt")


def test_failed_download_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"could not download .*--input FILE.*--synthetic"):
        data.prepare_shakespeare(tmp_path / "out", url=_closed_port_url())


def test_check_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        data.check_data_dir(tmp_path / "missing", need_val=False)
    with pytest.raises(DataError, match=r"no train.bin in .*darwin data prepare"):
        data.check_data_dir(tmp_path, need_val=False)
    data.prepare_synthetic(tmp_path, tokens=5000)
    data.check_data_dir(tmp_path, need_val=True)
    (tmp_path / "val.bin").unlink()
    data.check_data_dir(tmp_path, need_val=False)  # agents' folders hold no held-out data
    with pytest.raises(DataError, match="no val.bin"):
        data.check_data_dir(tmp_path, need_val=True)
    (tmp_path / "train.bin").write_bytes(b"\0\0" * 10)
    with pytest.raises(DataError, match="meta.json says"):
        data.check_data_dir(tmp_path, need_val=False)
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        data.load_meta(tmp_path)


# --------------------------------------------------------------------------- synthetic


def test_uniform_chains_have_entropy_log_alphabet() -> None:
    for order in (0, 1, 2):
        table = np.full((7**order, 7), 1 / 7)
        assert data.markov_entropy_rate(table, order) == pytest.approx(math.log(7), abs=1e-12)


def test_two_state_chain_entropy_by_hand() -> None:
    p, q = 0.1, 0.4  # P(0 -> 1), P(1 -> 0); stationary law (q, p) / (p + q) = (0.8, 0.2)

    def h(x: float) -> float:
        return -x * math.log(x) - (1 - x) * math.log(1 - x)

    table = np.array([[1 - p, p], [q, 1 - q]])
    assert data.stationary_distribution(table, 1) == pytest.approx([0.8, 0.2])
    assert data.markov_entropy_rate(table, 1) == pytest.approx(0.8 * h(p) + 0.2 * h(q))


def test_synthetic_entropy_rate_matches_the_sample(tmp_path: Path) -> None:
    data.prepare_synthetic(tmp_path, seed=3, tokens=300_000, order=2, alphabet=16)
    meta = data.load_meta(tmp_path)
    assert meta["kind"] == "synthetic" and meta["vocab_size"] == 16
    rate = meta["entropy_rate_nats"]
    assert 0.3 < rate < math.log(16) - 0.5  # learnable: far below the uniform rate
    ids = np.concatenate([np.fromfile(tmp_path / n, dtype=np.uint16) for n in FILES[:2]])
    # plug-in estimate of H(X_t | X_{t-2}, X_{t-1}) from counts of (context, next), with the
    # Miller-Madow correction for its downward bias: (cells seen - contexts seen) / 2N
    ctx = ids[:-2].astype(np.int64) * 16 + ids[1:-1]
    joint = np.bincount(ctx * 16 + ids[2:], minlength=16**3).reshape(16**2, 16).astype(float)
    n = joint.sum()
    cond = joint / np.maximum(joint.sum(axis=1, keepdims=True), 1)  # P(next | context)
    nz = joint > 0
    estimate = float(-(joint[nz] * np.log(cond[nz])).sum() / n)
    estimate += (nz.sum() - (joint.sum(axis=1) > 0).sum()) / (2 * n)
    # tight enough to catch a wrong stationary law (uniform weights are off by ~0.016 here)
    assert estimate == pytest.approx(rate, abs=0.008)


def test_synthetic_is_seeded_and_idempotent(tmp_path: Path) -> None:
    a = data.prepare_synthetic(tmp_path / "a", seed=1, tokens=5000)
    said: list[str] = []
    data.prepare_synthetic(tmp_path / "a", seed=1, tokens=5000, echo=said.append)
    assert "up to date" in said[-1]
    b = data.prepare_synthetic(tmp_path / "b", seed=1, tokens=5000)
    c = data.prepare_synthetic(tmp_path / "c", seed=2, tokens=5000)
    assert (a / "train.bin").read_bytes() == (b / "train.bin").read_bytes()
    assert (a / "train.bin").read_bytes() != (c / "train.bin").read_bytes()
    meta = json.loads((a / "meta.json").read_text())
    assert (meta["train_tokens"], meta["val_tokens"]) == (4500, 500)


def test_synthetic_rejects_bad_sizes(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="alphabet"):
        data.prepare_synthetic(tmp_path, alphabet=1)
    with pytest.raises(DataError, match="tokens"):
        data.prepare_synthetic(tmp_path, tokens=10)


# --------------------------------------------------------------------------- CLI


def test_cli_prepare_from_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    main(["data", "prepare", "--input", str(_corpus()), "--out", str(out)])
    assert "vocab 65" in capsys.readouterr().out
    assert data.load_meta(out)["source"] == str(_corpus())
    main(["data", "prepare", "--input", str(_corpus()), "--out", str(out)])
    assert "up to date" in capsys.readouterr().out


def test_cli_prepare_synthetic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["data", "prepare", "--synthetic", "--tokens", "4000", "--out", str(tmp_path)])
    assert data.load_meta(tmp_path)["train_tokens"] == 3600
    assert "synthetic" in capsys.readouterr().out


def test_cli_missing_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["data", "prepare", "--input", str(tmp_path / "nope.txt"), "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("darwin: error: input file") and "nope.txt" in err
