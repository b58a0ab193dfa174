"""``darwin data prepare --input FILE`` for any UTF-8 text: the corpus, its hash, bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from darwin_bot.cli import main
from darwin_bot.program import corpus as data
from tests.conftest import SHARED_CORPUS, require_tool

# Non-ASCII on purpose: the vocabulary is the file's own characters, not tiny Shakespeare's 65.
LINE = "Ça va? Straße, naïve café: 東京 → π ≈ 3.14159 ✓\n"


def _own_text(folder: Path, lines: int = 400) -> Path:
    path = folder / "my notes.txt"
    path.write_text("".join(f"{i} {LINE}" for i in range(lines)), encoding="utf-8")
    return path


def _prepare(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(["data", "prepare", *argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_own_text_is_prepared_with_its_vocabulary_split_and_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _own_text(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = _prepare(["--input", str(src)], capsys)
    assert (code, err) == (0, "")
    folder = tmp_path / "data" / "my_notes_char"  # named after the file, never shakespeare_char
    assert 'budget.data = "data/my_notes_char"' in out
    meta = data.load_meta(folder)
    text = src.read_text(encoding="utf-8")
    assert meta["kind"] == "text"
    assert meta["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert meta["itos"] == sorted(set(text)) and "東" in meta["itos"]
    train = np.fromfile(folder / "train.bin", dtype=np.uint16)
    val = np.fromfile(folder / "val.bin", dtype=np.uint16)
    assert len(train) == int(len(text) * 0.9) and len(train) + len(val) == len(text)
    decoded = "".join(meta["itos"][i] for i in np.concatenate([train, val]))
    assert decoded == text  # the held-out split is the text's last tenth, losslessly
    code, out, _ = _prepare(["--input", str(src)], capsys)
    assert code == 0 and "up to date" in out


def test_canonical_file_still_lands_where_budget_data_looks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool(SHARED_CORPUS.is_file(), f"tiny Shakespeare corpus not at {SHARED_CORPUS}")
    monkeypatch.chdir(tmp_path)
    code, _, err = _prepare(["--input", str(SHARED_CORPUS), "--canonical"], capsys)
    assert (code, err) == (0, "")
    meta = data.load_meta(tmp_path / "data" / "shakespeare_char")
    assert (meta["kind"], meta["sha256"], meta["vocab_size"]) == (
        "shakespeare",
        data.SHAKESPEARE_SHA256,
        65,
    )


def _bad_inputs(folder: Path) -> dict[str, tuple[bytes, str]]:
    text = _own_text(folder).read_bytes()
    return {
        "empty.txt": (b"", "is empty"),
        "model.bin": (b"\x00\x01\x02" + text, "looks binary"),
        "latin1.txt": ("café\n".encode("latin-1") * 4000, "is not UTF-8 text"),
        "tiny.txt": (text[:5000], "is too small"),
        "same.txt": (b"a" * 20000, "single distinct character"),
    }


@pytest.mark.parametrize("name", ["empty.txt", "model.bin", "latin1.txt", "tiny.txt", "same.txt"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    content, says = _bad_inputs(tmp_path)[name]
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out"
    code, _, err = _prepare(["--input", str(path), "--out", str(out)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("darwin: error: ") and says in err
    assert not out.exists()


def test_too_small_names_the_size_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("x y\n" * 2000, encoding="utf-8")  # 8,000 characters: 800 held out
    with pytest.raises(data.DataError, match=r"8,000 characters hold out 800.*at least 10,250"):
        data.prepare_text(tmp_path / "out", path)


def test_canonical_flag_refuses_another_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _own_text(tmp_path)
    out = tmp_path / "out"
    code, _, err = _prepare(["--input", str(src), "--canonical", "--out", str(out)], capsys)
    assert code == 2 and "not the canonical tiny Shakespeare" in err
    assert not out.exists()
    code, _, _ = _prepare(["--input", str(src), "--out", str(out)], capsys)
    assert code == 0 and json.loads((out / "meta.json").read_text())["kind"] == "text"
