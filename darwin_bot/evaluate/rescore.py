"""Kept graphs: a tree trained once is scored again on new windows, without training again.

Every generation is scored on its own windows (``windows.of_generation``), so
the seed and the survivors carried into a generation must be scored again. What
scoring needs of a training run is small and fixed once training ended: the
exported graph archive, the weights file the weight count reads, the harness's
copies of the learning curve's checkpoints with each point's placement (the
fraction asked, the harness's clocks, the reported log line: ``curve.Layout``),
and what the harness measured of training. After training, the harness keeps
those under ``keep_dir/<key>/`` (the engine's is ``<git dir>/darwin-graphs``:
trusted side, never committed, never bound into a sandbox); an evaluation that
finds them runs only the graph scorer (no training, no agent code): the final
graph, then the same checkpoints in it, on its own windows, as after training.
It reports the kept training measurements with ``extra.rescored`` and the
curve with the same placements and the losses measured on the new windows. An
entry that is not whole (a file missing or not the size and sha256 it was kept
with, a checkpoint of its curve among them) is trained again, never scored
without its curve.

``<key>`` names everything a training run's outcome depends on: the evaluator
version, the tree, the seed, the preset, the budget, the corpus (its sha256),
the device kind and the program contract. The windows are not in it: they are
what changes.

Trust: the graph and weights files were written by the training sandbox, as
the files scored right after training are: they are read the same way
(``graph_archive``: nothing unpickled, an op allowlist; the weights by storage),
from private copies. ``kept.json`` is written by the trusted side only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darwin_bot.evaluate.claims import Report
from darwin_bot.evaluate.curve import Layout
from darwin_bot.evaluate.sandbox.types import SandboxRun

KEPT = "kept.json"
CURVE_FILE = "darwin-curve-{}.pt"  # the k-th checkpoint copy of the learning curve
# Kept runs past this many bytes go, the least recently used first (the tiny preset's
# seed keeps 16.3 MB: its weights five times, in the checkpoint, the graph archive and the
# three checkpoints of its curve).
MAX_KEPT_BYTES = 2 * 10**9


@dataclass(frozen=True)
class Kept:
    """What scoring needs of one finished training run."""

    folder: Path  # the graph archive, the weights file and the curve's checkpoints
    train: SandboxRun
    report: Report
    extra: dict[str, Any]  # what the harness measured and checked of training and the export
    curve: Layout | None  # its curve's checkpoints (in ``folder``) and their placements


def key(version: str, ctx: Any) -> str:
    """The name of one training run's outcome (everything but the windows).

    ``ctx``: the harness's context of the evaluation (its tree hash, options,
    device and corpus metadata).
    """
    o = ctx.opts
    device = ctx.device.split(":")[0]  # cuda:1 trains as cuda:0 does
    parts = (version, ctx.hash, o.seed, o.preset, o.budget.key(), ctx.meta.get("sha256"))
    parts += (device, o.program)
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:32]


def _store(ctx: Any) -> Path | None:
    """Where the evaluation keeps and finds trained graphs (None: nowhere; smoke tests never)."""
    return None if ctx.opts.smoke or ctx.opts.keep_dir is None else Path(ctx.opts.keep_dir)


def _digest(path: Path) -> list[Any]:
    """A kept file's size and sha256: what it must still be to be scored again."""
    with path.open("rb") as f:
        return [os.fstat(f.fileno()).st_size, hashlib.file_digest(f, "sha256").hexdigest()]


def keep(
    version: str,
    ctx: Any,
    files: tuple[str, ...],
    train: SandboxRun,
    report: Report,
    extra: dict[str, Any],
    curve: Layout | None,
) -> None:
    """Keep ``files`` of the run's output folder, ``curve``'s checkpoints and placements,
    and the training's measurements."""
    store, name, out = _store(ctx), key(version, ctx), ctx.scratch / "out"
    if store is None or (store / name).is_dir():
        return
    store.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=store))
    copies = [(out / file, file) for file in files]
    points = [CURVE_FILE.format(k) for k in range(len(curve.paths) if curve else 0)]
    copies += zip(curve.paths if curve else (), points, strict=True)
    for src, file in copies:
        shutil.copyfile(src, tmp / file)  # a copy: the sandbox's inode stays its own
    run = {"backend": train.backend, "wall_s": train.wall_s, "cpu_s": train.cpu_s}
    run |= {"max_rss_mb": train.max_rss_mb, "log_tail": train.log_tail}
    measured = {"train": run, "report": dataclasses.asdict(report), "extra": extra}
    measured["curve"] = {**curve.to_dict(), "files": points} if curve is not None else None
    measured["files"] = {file: _digest(tmp / file) for _, file in copies}
    (tmp / KEPT).write_text(json.dumps(measured), encoding="utf-8")
    try:
        os.replace(tmp, store / name)  # whole or not at all
    except OSError:  # a concurrent evaluation of the same run kept it first
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(store)


def find(version: str, ctx: Any) -> Kept | None:
    """The kept training run of this evaluation (None: train it).

    An entry that cannot be read whole (its record, a file missing or changed,
    its curve's checkpoints among them) is removed, so that training again
    keeps the run anew: a re-score never goes without what the first score had.
    """
    store = _store(ctx)
    folder = store / key(version, ctx) if store is not None else None
    if folder is None or not folder.is_dir():
        return None
    try:
        kept = _read(folder)
    except (OSError, ValueError, KeyError, TypeError):
        shutil.rmtree(folder, ignore_errors=True)
        return None
    os.utime(folder)  # used: the last to be pruned
    return kept


def _read(folder: Path) -> Kept:
    """The entry in ``folder``; ValueError (or KeyError, TypeError, OSError) when damaged."""
    data = json.loads((folder / KEPT).read_text(encoding="utf-8"))
    for file, digest in data["files"].items():
        if Path(file).name != file or _digest(folder / file) != digest:
            raise ValueError(f"the kept {file} is not the file kept")
    t = data["train"]
    train = SandboxRun(
        t["backend"],
        0,
        False,
        float(t["wall_s"]),
        str(t["log_tail"]),
        max_rss_mb=float(t["max_rss_mb"]),
        cpu_s=float(t["cpu_s"]),
    )
    curve = data["curve"]  # None: none was watched (still a key: a record without it is old)
    if curve is not None:
        if not set(curve["files"]) <= set(data["files"]):
            raise ValueError("a kept checkpoint of the curve is not in the record")
        paths = tuple(folder / file for file in curve["files"])
        curve = Layout.from_dict(curve, paths)
    extra = {**dict(data["extra"]), "rescored": True}
    return Kept(folder, train, Report(**data["report"]), extra, curve)


def restore(kept: Kept, out: Path) -> tuple[SandboxRun, Report, dict[str, Any], Layout | None]:
    """Copy the kept files into ``out`` (private copies for this scoring) for ``_score``,
    the curve's layout pointing at its copies there."""
    out.mkdir(parents=True, exist_ok=True)
    for path in kept.folder.iterdir():
        if path.name != KEPT:
            shutil.copyfile(path, out / path.name)
    curve = kept.curve
    if curve is not None:
        curve = dataclasses.replace(curve, paths=tuple(out / p.name for p in curve.paths))
    return kept.train, kept.report, dict(kept.extra), curve


def _prune(store: Path, limit: int = MAX_KEPT_BYTES) -> None:
    """Past ``limit`` bytes of kept files (the curves' checkpoints too), the least recently
    used entries go."""
    entries = [p for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)  # the last used first
    total = 0
    for entry in entries:
        total += sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
        if total > limit:
            shutil.rmtree(entry, ignore_errors=True)
