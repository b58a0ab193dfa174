"""Scratch folders for one evaluation: the agent's evolvable files, the training data.

Also the evaluation cache key, :func:`tree_hash`, over the same files that are
copied: what is hashed is exactly what runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SMOKE_TRAIN_TOKENS = 50_000  # the slice of train.bin a smoke test trains on
SPARSE_FLOOR = 1024 * 1024  # below this, a file's allocation is not looked at (blocks)


def tree_hash(tree: Path, paths: Sequence[str] = ("seed/",)) -> str:
    """A content hash of the files under ``paths`` of ``tree``: the evaluation cache key.

    Covers relative paths, file bytes and symlink targets; ignores bytecode.
    """
    h = hashlib.sha256()
    for rel, path in _evolvable_files(tree, paths):
        h.update(rel.encode() + b"\0")
        if path.is_symlink():
            h.update(b"L" + os.readlink(path).encode())
        else:
            h.update(b"F" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def _evolvable_files(tree: Path, paths: Sequence[str]) -> list[tuple[str, Path]]:
    found: dict[str, Path] = {}
    for spec in paths:
        root = tree / spec
        if root.is_symlink() or root.is_file():
            found[spec.rstrip("/")] = root
            continue
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):  # does not follow links
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for name in filenames:
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(dirpath) / name
                found[path.relative_to(tree).as_posix()] = path
            for name in dirnames:
                if (Path(dirpath) / name).is_symlink():
                    path = Path(dirpath) / name
                    found[path.relative_to(tree).as_posix()] = path
    return sorted(found.items())


# ------------------------------------------------------------------- copies


def has_holes(st: os.stat_result) -> bool:
    """Whether a file of this stat is sparse: far less disk than its size.

    A hole costs the program that made it no disk, but a copy the harness makes is
    written in full; torch.save and every ordinary writer leave none.
    """
    return st.st_size > SPARSE_FLOOR and st.st_blocks * 512 < st.st_size // 2


def holes_problem(out: Path, names: Sequence[str]) -> str | None:
    """Why files of the output folder the harness copies cannot be taken (None: they can)."""
    for name in names:
        try:
            st = os.lstat(out / name)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and has_holes(st):
            return (
                f"{name} is a sparse file ({st.st_size} bytes, {st.st_blocks * 512} on disk); "
                "write it with torch.save"
            )
    return None


def world_readable(root: Path) -> None:
    """a+rX on a tree we made, so a sandbox running under another uid can read it."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):  # chmod would follow it out of the tree
                continue
            extra = 0o555 if stat.S_ISDIR(st.st_mode) or st.st_mode & 0o111 else 0o444
            path.chmod(stat.S_IMODE(st.st_mode) | extra)
    root.chmod(0o755)


def copy_tree(tree: Path, paths: Sequence[str], dest: Path) -> None:
    dest.mkdir()
    for rel, src in _evolvable_files(tree, paths):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():  # kept as a link: its target is not in the sandbox
            target.symlink_to(os.readlink(src))
        else:
            shutil.copyfile(src, target)
    world_readable(dest)


def make_train_data(data_dir: Path, dest: Path, smoke: bool) -> None:
    dest.mkdir()
    shutil.copyfile(data_dir / "meta.json", dest / "meta.json")
    if smoke:
        tokens = np.fromfile(data_dir / "train.bin", dtype=np.uint16, count=SMOKE_TRAIN_TOKENS)
        tokens.tofile(dest / "train.bin")
    else:
        # A copy, never a link: a link shares the original's inode, and so its page
        # cache, with every other evaluation of this corpus (a channel between them).
        shutil.copyfile(data_dir / "train.bin", dest / "train.bin")
    world_readable(dest)
