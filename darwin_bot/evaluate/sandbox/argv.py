"""The command line of a sandboxed run: the backend's prefix (bwrap binds), then the launcher.

bwrap's root is built from read-only binds of the system (``/usr``, the
``/lib*`` links, a few ``/etc`` entries), of Python's installation and of the
mounts the caller names; the launcher (``launch.py``, run by the sandbox's
Python) sets the limits and then execs the program.
"""

from __future__ import annotations

import os
import secrets
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from darwin_bot.evaluate.sandbox.env import user_site
from darwin_bot.evaluate.sandbox.types import SANDBOX_ROOT, Limits, Mount

LAUNCHER = Path(__file__).parent.parent / "launch.py"  # evaluate/, bound as /sandbox/darwin

# /etc entries a dynamically linked Python needs; the rest of /etc stays hidden.
ETC_ENTRIES: tuple[str, ...] = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "nsswitch.conf",
    "passwd",
    "group",
    "hosts",
)


def python_paths() -> list[Path]:
    """The folders of the Python installation every sandbox sees (read-only; outermost only)."""
    candidates = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
    }
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        candidates.add(Path(sysconfig.get_paths()[key]))
    site_dir = user_site()
    if site_dir is not None:
        candidates.add(site_dir)
    real = sorted(
        {Path(os.path.realpath(p)) for p in candidates if p.exists()}, key=lambda p: len(p.parts)
    )
    kept: list[Path] = []
    for p in real:
        if p == Path("/") or any(p.is_relative_to(k) for k in kept):
            continue
        kept.append(p)
    return kept


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--perms", "0755", "--dir", "/etc"]
    for entry in ETC_ENTRIES:
        path = Path("/etc") / entry
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _gpu_binds(device: str) -> list[str]:
    """The NVIDIA device nodes, and read-only /sys that the driver reads; nothing else."""
    if not device.startswith("cuda"):
        return []
    args: list[str] = []
    for node in sorted(Path("/dev").glob("nvidia*")):
        args += ["--dev-bind", str(node), str(node)]
    if Path("/sys").is_dir():
        args += ["--ro-bind", "/sys", "/sys"]
    return args


def _parents(path: Path) -> list[str]:
    """Make the folders above a bind traversable (bwrap creates them 0700 otherwise)."""
    args: list[str] = []
    for parent in reversed(path.parents):
        if parent == Path("/") or parent.is_relative_to("/usr"):
            continue
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _sandbox_uid() -> int:
    # A uid no one else uses, so RLIMIT_NPROC counts this run's processes only.
    return 200_000 + secrets.randbelow(50_000)


def bwrap_argv(mounts: Sequence[Mount], device: str, drop_uid: int | None) -> list[str]:
    argv = ["bwrap", "--die-with-parent", "--new-session"]
    if drop_uid is None:
        argv += ["--unshare-all"]  # includes the user namespace; no caps are kept
    else:
        # As root, a user namespace would map the program to uid 0 outside, where
        # RLIMIT_NPROC does not apply; instead the launcher drops to drop_uid.
        argv += [
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]
    argv += ["--hostname", "darwin-sandbox"]
    argv += _system_binds()
    # /tmp first: a later bind may live under it (a virtualenv in /tmp), and a later
    # mount shadows an earlier one.
    argv += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    for p in python_paths():
        argv += _parents(p) + ["--ro-bind", str(p), str(p)]
    argv += _gpu_binds(device)
    argv += ["--perms", "0755", "--dir", SANDBOX_ROOT]
    argv += ["--ro-bind", str(LAUNCHER.parent), f"{SANDBOX_ROOT}/darwin"]
    for m in mounts:
        argv += ["--bind" if m.writable else "--ro-bind", str(m.host), m.inside("bwrap")]
    return argv


def launcher_argv(
    backend: str, limits: Limits, device: str, drop_uid: int | None, cwd: str
) -> list[str]:
    launcher = f"{SANDBOX_ROOT}/darwin/launch.py" if backend == "bwrap" else str(LAUNCHER)
    argv = [sys.executable, "-I", launcher, "--cwd", cwd]
    if limits.memory_mb and not device.startswith("cuda"):
        argv += ["--as-mb", str(limits.memory_mb)]
    if limits.max_procs:
        argv += ["--nproc", str(limits.max_procs)]
    if limits.max_file_mb:
        argv += ["--fsize-mb", str(limits.max_file_mb)]
    if drop_uid is not None:
        argv += ["--drop-to", f"{drop_uid}:{drop_uid}"]
    return argv + ["--"]


def prefix_argv(
    backend: str, mounts: Sequence[Mount], device: str, drop_uid: int | None
) -> list[str]:
    if backend == "bwrap":
        return bwrap_argv(mounts, device, drop_uid)
    if backend == "unshare":
        argv = ["unshare", "--net", "--pid", "--fork", "--kill-child"]
        if os.geteuid() != 0:
            argv.insert(1, "--map-root-user")  # a user namespace, so net/pid may be unshared
        return argv + ["--"]
    return []


def drop_uid_for(backend: str) -> int | None:
    """The uid the launcher drops to: a fresh one under bwrap as root, else None (keep it)."""
    return _sandbox_uid() if backend == "bwrap" and os.geteuid() == 0 else None


def command_argv(
    backend: str,
    mounts: Sequence[Mount],
    limits: Limits,
    device: str,
    drop_uid: int | None,
    cwd: str,
    command: Sequence[str],
) -> list[str]:
    """The whole command line: the backend's prefix, the launcher, then ``command``."""
    return (
        prefix_argv(backend, mounts, device, drop_uid)
        + launcher_argv(backend, limits, device, drop_uid, cwd)
        + list(command)
    )
