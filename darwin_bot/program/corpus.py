"""Corpus preparation: any UTF-8 text (tiny Shakespeare by default) at character level, or a
synthetic Markov source.

Both corpora are written the same way, so the seed program and the evaluator
never care which one they got::

    <out>/train.bin   uint16 token ids, the first 90% of the corpus
    <out>/val.bin     uint16 token ids, the last 10% (held out; never shown to agents)
    <out>/meta.json   vocab_size, itos (list: id -> char), stoi (dict: char -> id),
                      source, sha256 (of the text file's bytes; of the token ids for
                      kind "synthetic"), train_tokens, val_tokens, kind ("shakespeare":
                      the canonical file, "text": any other, "synthetic")
                      (+ entropy_rate_nats, order, alphabet, seed for kind "synthetic")

Preparation is idempotent: files whose bytes would not change are not rewritten,
and a Shakespeare folder that is already complete is not downloaded again.

The synthetic corpus is an order-k Markov chain with sparse random transition
rows. Its entropy rate is computed exactly from the chain, and is the floor that
no model's held-out loss (in nats per token) can beat in expectation, which makes
it a ground truth for tests and for judging how close a training run gets.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from darwin_bot.errors import DataError

SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
DOWNLOAD_TIMEOUT_S = 15.0
TRAIN_FRACTION = 0.9  # nanoGPT's split: first 90% train, last 10% held out
DEFAULT_SYNTHETIC_TOKENS = 300_000
# A prepared text must hold out enough for scoring at every preset: the largest
# context is 256 tokens (seed/train.py's paper and nanogpt presets).
MIN_CONTEXT = 256
MIN_HELD_OUT_WINDOWS = 4
MAX_VOCAB = 65_535  # token ids are stored as uint16
# Printable symbols for the synthetic alphabet, so the corpus can be read by eye.
SYNTHETIC_SYMBOLS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------- public


def prepare_shakespeare(
    out: Path,
    input_path: Path | None = None,
    url: str = SHAKESPEARE_URL,
    *,
    echo: Echo = _quiet,
) -> Path:
    """Write tiny Shakespeare (character level) to ``out``; return ``out``.

    Reads ``input_path`` when given, else downloads ``url``. The text must have
    the canonical sha256, or ``DataError`` says so. Without ``input_path``, a
    folder that already holds this corpus is left alone (no download).
    """
    out = Path(out)
    if input_path is not None:
        return prepare_text(out, Path(input_path), canonical=True, echo=echo)
    if _shakespeare_complete(out):
        echo(f"{out} is up to date (tiny Shakespeare, sha256 {SHAKESPEARE_SHA256[:12]}...)")
        return out
    return _prepare_raw(out, _download(url), url, canonical=True, echo=echo)


def prepare_text(
    out: Path, input_path: Path, *, canonical: bool = False, echo: Echo = _quiet
) -> Path:
    """Write any UTF-8 text file to ``out`` at character level; return ``out``.

    The vocabulary is the file's own characters, the last tenth is held out,
    and ``meta.json`` records the sha256 of the file's bytes. ``canonical``:
    the file must be tiny Shakespeare itself. Empty, binary or non-UTF-8 input,
    or a text too small for the held-out windows, is a ``DataError`` (exit 2).
    """
    return _prepare_raw(Path(out), _read_input(input_path), str(input_path), canonical, echo)


def default_text_out(input_path: Path) -> Path:
    """Where ``darwin data prepare --input FILE`` writes without ``--out``.

    tiny Shakespeare itself goes where ``budget.data`` looks by default; any other
    text gets a folder named after the file, so it never replaces that corpus.
    """
    try:
        if hashlib.sha256(Path(input_path).read_bytes()).hexdigest() == SHAKESPEARE_SHA256:
            return Path("data/shakespeare_char")
    except OSError:
        pass  # the preparation itself reports an unreadable file in one line
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(input_path).stem).strip("._") or "corpus"
    return Path("data") / f"{slug}_char"


def _prepare_raw(out: Path, raw: bytes, source: str, canonical: bool, echo: Echo) -> Path:
    digest = hashlib.sha256(raw).hexdigest()
    is_shakespeare = digest == SHAKESPEARE_SHA256
    if canonical and not is_shakespeare:
        raise DataError(
            f"{source} has sha256 {digest}, expected {SHAKESPEARE_SHA256} "
            "(not the canonical tiny Shakespeare); prepare your own text with "
            "'darwin data prepare --input FILE' (no --canonical), or use --synthetic"
        )
    text = _decode_text(raw, source)
    itos = sorted(set(text))
    _check_text_size(source, len(text), len(itos))
    stoi = {ch: i for i, ch in enumerate(itos)}
    ids = np.fromiter((stoi[ch] for ch in text), dtype=np.uint16, count=len(text))
    kind = "shakespeare" if is_shakespeare else "text"
    meta = {"kind": kind, "source": source, "sha256": digest}
    return _write_corpus(out, ids, itos, meta, echo)


def _decode_text(raw: bytes, source: str) -> str:
    if not raw:
        raise DataError(f"{source} is empty: give a UTF-8 text file")
    if b"\x00" in raw:
        raise DataError(f"{source} looks binary (it has NUL bytes): give a UTF-8 text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{source} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
            "convert it first, e.g. iconv -t UTF-8 FILE > FILE.utf8"
        ) from exc


def _check_text_size(source: str, chars: int, vocab: int) -> None:
    """Refuse a text whose held-out split cannot fill the scoring windows of every preset."""
    if vocab > MAX_VOCAB:
        raise DataError(
            f"{source} has {vocab:,} distinct characters; token ids are 16-bit, "
            f"so at most {MAX_VOCAB:,}"
        )
    if vocab < 2:
        raise DataError(f"{source} has a single distinct character: there is nothing to learn")
    held_out = chars - int(chars * TRAIN_FRACTION)
    need = MIN_HELD_OUT_WINDOWS * MIN_CONTEXT + 1
    if held_out < need:
        raise DataError(
            f"{source} is too small: {chars:,} characters hold out {held_out:,}, fewer than "
            f"{MIN_HELD_OUT_WINDOWS} scoring windows of {MIN_CONTEXT} (+1); give at least "
            f"{need * 10:,} characters"
        )


def prepare_synthetic(
    out: Path,
    seed: int = 0,
    tokens: int = DEFAULT_SYNTHETIC_TOKENS,
    order: int = 2,
    alphabet: int = 16,
    *,
    echo: Echo = _quiet,
) -> Path:
    """Write a seeded order-``order`` Markov corpus of ``tokens`` tokens to ``out``.

    ``meta.json`` gets ``entropy_rate_nats``: the chain's exact entropy rate,
    the lowest expected held-out loss any model can reach.
    """
    if not 2 <= alphabet <= len(SYNTHETIC_SYMBOLS):
        raise DataError(f"alphabet must be 2..{len(SYNTHETIC_SYMBOLS)}, got {alphabet}")
    if not 0 <= order <= 4:
        raise DataError(f"order must be 0..4, got {order}")
    if tokens < 1000:
        raise DataError(f"tokens must be at least 1000, got {tokens}")
    rng = np.random.default_rng(seed)
    table = random_transitions(rng, order, alphabet)
    ids = sample_markov(rng, table, order, tokens)
    itos = list(SYNTHETIC_SYMBOLS[:alphabet])
    meta = {
        "kind": "synthetic",
        "source": f"markov(order={order}, alphabet={alphabet}, seed={seed})",
        "sha256": hashlib.sha256(ids.tobytes()).hexdigest(),
        "entropy_rate_nats": markov_entropy_rate(table, order),
        "order": order,
        "alphabet": alphabet,
        "seed": seed,
    }
    return _write_corpus(Path(out), ids, itos, meta, echo)


def load_meta(data_dir: Path) -> dict[str, Any]:
    """The parsed ``meta.json`` of a prepared folder; ``DataError`` if absent or invalid."""
    path = Path(data_dir) / "meta.json"
    if not path.is_file():
        raise DataError(f"no meta.json in {data_dir}; run 'darwin data prepare'")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"{path} is not valid JSON ({exc}); run 'darwin data prepare' again"
        ) from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("vocab_size"), int):
        raise DataError(f"{path} has no integer vocab_size; run 'darwin data prepare' again")
    return meta


def check_data_dir(data_dir: Path, need_val: bool) -> None:
    """Raise ``DataError`` unless ``data_dir`` holds a prepared corpus (``val.bin`` if asked)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} does not exist; run 'darwin data prepare'")
    names = ["train.bin", "val.bin"] if need_val else ["train.bin"]
    for name in names:
        if not (data_dir / name).is_file():
            raise DataError(f"no {name} in {data_dir}; run 'darwin data prepare'")
    meta = load_meta(data_dir)
    for name in names:
        key = f"{name.split('.')[0]}_tokens"
        size = (data_dir / name).stat().st_size
        if key in meta and size != 2 * meta[key]:
            raise DataError(
                f"{data_dir / name} has {size // 2} tokens but meta.json says {meta[key]}; "
                "run 'darwin data prepare' again"
            )


# --------------------------------------------------------------------------- Markov source


def random_transitions(
    rng: np.random.Generator, order: int, alphabet: int, fanout: int = 4, floor: float = 0.02
) -> np.ndarray:
    """A learnable transition table ``[alphabet**order, alphabet]`` (rows sum to 1).

    Each context prefers ``fanout`` random successors (Dirichlet weights), mixed
    with ``floor`` of the uniform distribution so every state reaches every other:
    the chain is then irreducible and aperiodic, and its stationary law unique.
    """
    states = alphabet**order
    fanout = min(fanout, alphabet)
    table = np.zeros((states, alphabet))
    for s in range(states):
        succ = rng.choice(alphabet, size=fanout, replace=False)
        table[s, succ] = rng.dirichlet(np.full(fanout, 0.7))
    return (1.0 - floor) * table + floor / alphabet


def stationary_distribution(table: np.ndarray, order: int) -> np.ndarray:
    """The stationary law over the ``alphabet**order`` contexts of an order-k chain.

    Context ``s`` (its symbols in base ``alphabet``, oldest first) emits ``x`` and
    moves to ``(s * alphabet + x) mod alphabet**order``; we solve pi P = pi, sum(pi) = 1.
    """
    states, alphabet = table.shape
    if states != alphabet**order:
        raise ValueError(f"table has {states} rows; order {order} needs {alphabet**order}")
    if order == 0:
        return np.ones(1)
    moves = np.zeros((states, states))
    for s in range(states):
        nxt = (s * alphabet + np.arange(alphabet)) % states
        np.add.at(moves[s], nxt, table[s])
    # (P^T - I) pi = 0 plus the normalisation row, solved by least squares.
    system = np.vstack([moves.T - np.eye(states), np.ones((1, states))])
    rhs = np.zeros(states + 1)
    rhs[-1] = 1.0
    pi, *_ = np.linalg.lstsq(system, rhs, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def markov_entropy_rate(table: np.ndarray, order: int) -> float:
    """Exact entropy rate in nats/token: sum over contexts of pi(s) * H(next | s)."""
    pi = stationary_distribution(table, order)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(table > 0, table * np.log(table), 0.0)
    per_state = -plogp.sum(axis=1)
    return float(pi @ per_state)


def sample_markov(rng: np.random.Generator, table: np.ndarray, order: int, n: int) -> np.ndarray:
    """``n`` tokens of the chain, started from its stationary law (so the sample is stationary)."""
    states, alphabet = table.shape
    pi = stationary_distribution(table, order)
    state = int(rng.choice(states, p=pi))
    # Python lists + bisect are much faster than numpy per step for a sequential walk.
    cums = [np.cumsum(row).tolist() for row in table]
    for row in cums:
        row[-1] = math.inf  # guard against the last cumulative sum rounding below u
    uniforms = rng.random(n).tolist()
    out = [0] * n
    for i, u in enumerate(uniforms):
        x = bisect.bisect_right(cums[state], u)
        out[i] = x
        state = (state * alphabet + x) % states
    return np.asarray(out, dtype=np.uint16)


# --------------------------------------------------------------------------- files


def _read_input(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(
            f"input file {path} does not exist; pass a UTF-8 text file with --input FILE, "
            "or use --synthetic"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            return resp.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DataError(
            f"could not download {url} ({reason}); pass a local copy with --input FILE, "
            "or use --synthetic for an offline corpus"
        ) from exc


def _shakespeare_complete(out: Path) -> bool:
    """True when ``out`` already holds the canonical corpus with consistent file sizes."""
    try:
        meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
        return (
            meta.get("kind") == "shakespeare"
            and meta.get("sha256") == SHAKESPEARE_SHA256
            and (out / "train.bin").stat().st_size == 2 * meta["train_tokens"]
            and (out / "val.bin").stat().st_size == 2 * meta["val_tokens"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_corpus(
    out: Path, ids: np.ndarray, itos: list[str], meta: dict[str, Any], echo: Echo
) -> Path:
    split = int(len(ids) * TRAIN_FRACTION)
    train, val = ids[:split], ids[split:]
    full_meta = {
        "vocab_size": len(itos),
        "itos": itos,
        "stoi": {ch: i for i, ch in enumerate(itos)},
        "train_tokens": len(train),
        "val_tokens": len(val),
        **meta,
    }
    payloads = {
        "train.bin": train.astype(np.uint16).tobytes(),
        "val.bin": val.astype(np.uint16).tobytes(),
        "meta.json": (json.dumps(full_meta, indent=2, sort_keys=True) + "\n").encode("utf-8"),
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        changed = [name for name, data in payloads.items() if _write_if_changed(out / name, data)]
    except OSError as exc:
        raise DataError(f"cannot write the corpus to {out}: {exc.strerror or exc}") from exc
    summary = f"{meta['kind']}: vocab {len(itos)}, {len(train):,} train / {len(val):,} val tokens"
    if changed:
        echo(f"wrote {', '.join(changed)} to {out} ({summary})")
    else:
        echo(f"{out} is up to date ({summary})")
    return out


def _write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically write ``data`` unless ``path`` already holds exactly it; True if written."""
    if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True
