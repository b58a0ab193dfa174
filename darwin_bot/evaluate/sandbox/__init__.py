"""Run an untrusted command with no network, no secrets and bounded resources.

Backends, strongest first:

``bwrap``
    bubblewrap: new user (or, as root, no user but a dropped uid), PID, IPC,
    UTS and network namespaces; a root of read-only binds of the system and of
    Python's installation, the mounts the caller names (read-only unless said
    otherwise) under ``/sandbox/<name>``, a fresh ``/tmp``, ``/proc`` and a
    minimal ``/dev`` (plus ``/dev/nvidia*`` when the device is CUDA). When the
    sandbox's PID 1 dies, the kernel kills everything in the namespace, so a
    time limit ends every process the program spawned.
``unshare``
    util-linux ``unshare``: network and PID namespaces only; the file system is
    the host's.
``none``
    no isolation at all, only limits and a scrubbed environment; chosen only
    when asked for by name, and it says so loudly on stderr.

``auto`` picks the strongest backend that actually runs Python here (probed
once per process). A backend that was asked for by name and does not work is a
``SandboxError`` that says what to install.

Limits, set by the trusted launcher (``launch.py``) inside the sandbox before
the program starts: ``RLIMIT_AS`` (memory; skipped for CUDA, whose driver maps
far more address space than it uses), ``RLIMIT_NPROC`` (processes and threads;
the kernel ignores it for root, so when darwin runs as root the bwrap backend
runs the program under an unprivileged uid of its own), ``RLIMIT_FSIZE`` and no
core dumps; and, on every backend, the seccomp filter of ``seccomp.py``, which
denies what only a page-cache channel needs (docs/sandbox.md). The wall-clock limit ends the whole process group: SIGTERM, a grace
period, then SIGKILL.

This module picks the backend and runs a command; the parts are modules of
their own: ``sandbox.types`` (limits, mounts, the result), ``sandbox.env`` (the
environment allowlist), ``sandbox.argv`` (the bwrap/unshare/launcher command
line) and ``sandbox.proc`` (the process: output tail, gate, wall-clock kill).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from darwin_bot.errors import SandboxError
from darwin_bot.evaluate.sandbox.argv import LAUNCHER, command_argv, drop_uid_for, python_paths
from darwin_bot.evaluate.sandbox.env import ENV_ALLOW, SECRET_NAME, scrub_env
from darwin_bot.evaluate.sandbox.proc import Gate, run_process
from darwin_bot.evaluate.sandbox.types import BACKENDS, SANDBOX_ROOT, Limits, Mount, SandboxRun

__all__ = [
    "BACKENDS",
    "ENV_ALLOW",
    "LAUNCHER",
    "SANDBOX_ROOT",
    "SECRET_NAME",
    "Gate",
    "Limits",
    "Mount",
    "SandboxRun",
    "probe",
    "python_paths",
    "resolve_backend",
    "run_sandboxed",
    "scrub_env",
]

INSTALL_HINT = {
    "bwrap": "install bubblewrap (apt-get install bubblewrap / dnf install bubblewrap) "
    "and make sure unprivileged user namespaces are enabled",
    "unshare": "install util-linux's unshare and enable unprivileged user namespaces",
}

# ---------------------------------------------------------------------- probing


@functools.cache
def probe(backend: str) -> str | None:
    """None when ``backend`` can run Python here, else why not (cached per process)."""
    if backend == "none":
        return None
    tool = "bwrap" if backend == "bwrap" else "unshare"
    if shutil.which(tool) is None:
        return f"{tool} is not installed"
    with tempfile.TemporaryDirectory(prefix="darwin-probe-") as tmp:
        out = Path(tmp)
        drop = drop_uid_for(backend)
        if drop is not None:
            os.chown(out, drop, drop)
        mount = Mount("out", out, writable=True)
        check = [sys.executable, "-c", "open('ok', 'w').write('ok')"]
        limits = Limits(timeout_s=30)
        argv = command_argv(backend, [mount], limits, "cpu", drop, mount.inside(backend), check)
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=30, env=scrub_env())
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{tool} failed to start: {exc}"
        if proc.returncode != 0 or not (out / "ok").exists():
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            return f"{tool} does not work here: {err[-1] if err else f'exit {proc.returncode}'}"
    return None


def resolve_backend(name: str) -> str:
    """The backend to use for ``name`` (auto/bwrap/unshare/none); SandboxError if unusable."""
    if name == "auto":
        reasons = []
        for backend in ("bwrap", "unshare"):
            why = probe(backend)
            if why is None:
                return backend
            reasons.append(why)
        raise SandboxError(
            "no sandbox backend works here ("
            + "; ".join(reasons)
            + "); "
            + INSTALL_HINT["bwrap"]
            + ", or pass --sandbox none to run agent code unconfined"
        )
    if name not in BACKENDS:
        raise SandboxError(f"unknown sandbox backend {name!r}; choose auto, {', '.join(BACKENDS)}")
    why = probe(name)
    if why is not None:
        raise SandboxError(f"sandbox backend {name!r} is unusable: {why}; {INSTALL_HINT[name]}")
    return name


# ----------------------------------------------------------------------- running


def _warn(backend: str, limits: Limits) -> None:
    """Say on stderr what a weak backend does not hold."""
    if backend == "none":
        print(
            "darwin: WARNING: --sandbox none runs agent code UNCONFINED "
            "(network, files and processes of this user are in its reach)",
            file=sys.stderr,
        )
    elif backend == "unshare" and os.geteuid() == 0 and limits.max_procs:
        print(
            "darwin: warning: running as root with --sandbox unshare, the process limit "
            "is not enforced (the kernel exempts root from RLIMIT_NPROC); use bwrap",
            file=sys.stderr,
        )


def run_sandboxed(
    command: Sequence[str],
    *,
    backend: str,
    mounts: Sequence[Mount],
    cwd: str,
    env: Mapping[str, str],
    limits: Limits,
    device: str = "cpu",
    stdout_consumer: Callable[[IO[bytes]], None] | None = None,
    gate: Gate | None = None,
    on_line: Callable[[str], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> SandboxRun:
    """Run ``command`` (paths as seen inside) in ``backend``; never raises for the program's faults.

    Output (stdout and stderr together) is kept as a tail of the last 4 KiB.
    With ``stdout_consumer``, stdout is a separate pipe handed to it on a
    thread (the scorer reads logits from it) and only stderr goes to the tail;
    if the consumer raises, the program is killed and the error returned.
    With ``gate``, the program's stdin is a pipe that :class:`Gate` feeds.
    ``on_line`` sees each line of the tail's stream as it comes (progress display).
    ``on_start`` gets the id of the process at the root of the sandboxed tree, once started.
    ``backend`` must come from :func:`resolve_backend`.
    """
    _warn(backend, limits)
    drop_uid = drop_uid_for(backend)
    if drop_uid is not None:
        for m in mounts:
            if m.writable:
                os.chown(m.host, drop_uid, drop_uid)
    argv = command_argv(backend, mounts, limits, device, drop_uid, cwd, command)
    return run_process(
        argv,
        backend=backend,
        env=env,
        timeout_s=limits.timeout_s,
        cpu_s=limits.cpu_s,
        stdout_consumer=stdout_consumer,
        gate=gate,
        on_line=on_line,
        on_start=on_start,
    )
