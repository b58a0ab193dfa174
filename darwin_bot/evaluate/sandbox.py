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
core dumps. The wall-clock limit ends the whole process group: SIGTERM, a grace
period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from darwin_bot.errors import SandboxError

BACKENDS: tuple[str, ...] = ("bwrap", "unshare", "none")  # strongest first
SANDBOX_ROOT = "/sandbox"
LAUNCHER = Path(__file__).with_name("launch.py")
LOG_TAIL_BYTES = 4096
KILL_GRACE_S = 3.0

# The environment starts empty; only these names (and the prefixes below) pass,
# and then only if they do not look like a credential.
ENV_ALLOW: frozenset[str] = frozenset(
    {
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TERM",
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "CUDA_DEVICE_ORDER",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "PYTHONHASHSEED",
        "PYTHONIOENCODING",
        "PYTHONWARNINGS",
    }
)
ENV_ALLOW_PREFIXES: tuple[str, ...] = ("DARWIN_",)
SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION", re.IGNORECASE)

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
INSTALL_HINT = {
    "bwrap": "install bubblewrap (apt-get install bubblewrap / dnf install bubblewrap) "
    "and make sure unprivileged user namespaces are enabled",
    "unshare": "install util-linux's unshare and enable unprivileged user namespaces",
}


@dataclass(frozen=True)
class Limits:
    """Bounds on one sandboxed run. ``None`` means "not limited"."""

    timeout_s: float
    memory_mb: int | None = None
    max_procs: int | None = None
    max_file_mb: int | None = 16384


@dataclass(frozen=True)
class Mount:
    """A host folder the program sees; under bwrap at ``/sandbox/<name>``."""

    name: str
    host: Path
    writable: bool = False

    def inside(self, backend: str) -> str:
        """The path the program uses for this folder."""
        if backend == "bwrap":
            return f"{SANDBOX_ROOT}/{self.name}"
        return str(self.host)


@dataclass(frozen=True)
class SandboxRun:
    """What happened to one sandboxed command."""

    backend: str
    returncode: int | None  # None when it was killed for running out of time
    timed_out: bool
    wall_s: float
    log_tail: str
    max_rss_mb: float = 0.0  # largest resident set of it or anything it waited for
    consumer_error: BaseException | None = None  # raised by the stdout consumer, if any


# --------------------------------------------------------------------- environment


def scrub_env(extra: Mapping[str, str] | None = None, *, home: str = "/tmp") -> dict[str, str]:
    """The environment for agent code: an allowlist of the host's, never a credential.

    ``extra`` (the ``DARWIN_*`` contract variables) is added last and is
    filtered the same way, so a caller cannot pass a secret by mistake.
    """
    env: dict[str, str] = {}
    for name, value in os.environ.items():
        if name in ENV_ALLOW or name.startswith(ENV_ALLOW_PREFIXES):
            env[name] = value
    env.update(extra or {})
    env = {k: v for k, v in env.items() if not SECRET_NAME.search(k)}
    python_bin = str(Path(sys.executable).parent)
    env.update(
        {
            "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "USER": "darwin",
            "LOGNAME": "darwin",
            "TMPDIR": "/tmp" if home == "/tmp" else home,
            "XDG_CACHE_HOME": f"{home}/.cache",
            "MPLCONFIGDIR": f"{home}/.matplotlib",
            "PYTHONDONTWRITEBYTECODE": "1",  # the tree is read-only
            "PYTHONUNBUFFERED": "1",  # so the log tail is current when it is killed
        }
    )
    if _user_site() is not None:  # HOME differs inside; point Python at the real user site
        env["PYTHONUSERBASE"] = site.getuserbase()
    else:
        env["PYTHONNOUSERSITE"] = "1"
    return env


# ------------------------------------------------------------------ bwrap command


def _python_paths() -> list[Path]:
    """Folders the interpreter and its packages live in (deduplicated, outermost only)."""
    candidates = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.exec_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
    }
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        candidates.add(Path(sysconfig.get_paths()[key]))
    user_site = _user_site()
    if user_site is not None:
        candidates.add(user_site)
    real = sorted(
        {Path(os.path.realpath(p)) for p in candidates if p.exists()}, key=lambda p: len(p.parts)
    )
    kept: list[Path] = []
    for p in real:
        if p == Path("/") or any(p.is_relative_to(k) for k in kept):
            continue
        kept.append(p)
    return kept


def _user_site() -> Path | None:
    """The user's site-packages (``pip install --user``) when Python would use it."""
    path = Path(site.getusersitepackages())
    return path if site.ENABLE_USER_SITE and path.is_dir() else None


def python_paths() -> list[Path]:
    """The folders of the Python installation every sandbox sees (read-only)."""
    return _python_paths()


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


def _bwrap_argv(mounts: Sequence[Mount], device: str, drop_uid: int | None) -> list[str]:
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
    for p in _python_paths():
        argv += _parents(p) + ["--ro-bind", str(p), str(p)]
    argv += _gpu_binds(device)
    argv += ["--perms", "0755", "--dir", SANDBOX_ROOT]
    argv += ["--ro-bind", str(LAUNCHER.parent), f"{SANDBOX_ROOT}/darwin"]
    for m in mounts:
        argv += ["--bind" if m.writable else "--ro-bind", str(m.host), m.inside("bwrap")]
    return argv


def _launcher_argv(
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


def _prefix_argv(
    backend: str, mounts: Sequence[Mount], device: str, drop_uid: int | None
) -> list[str]:
    if backend == "bwrap":
        return _bwrap_argv(mounts, device, drop_uid)
    if backend == "unshare":
        argv = ["unshare", "--net", "--pid", "--fork", "--kill-child"]
        if os.geteuid() != 0:
            argv.insert(1, "--map-root-user")  # a user namespace, so net/pid may be unshared
        return argv + ["--"]
    return []


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
        drop = _sandbox_uid() if backend == "bwrap" and os.geteuid() == 0 else None
        if drop is not None:
            os.chown(out, drop, drop)
        mount = Mount("out", out, writable=True)
        argv = (
            _prefix_argv(backend, [mount], "cpu", drop)
            + _launcher_argv(backend, Limits(timeout_s=30), "cpu", drop, mount.inside(backend))
            + [sys.executable, "-c", "open('ok', 'w').write('ok')"]
        )
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


class Gate:
    """Holds a sandboxed program at its start until the caller says go (or stop).

    The program reads one line from stdin: ``go`` when :meth:`release` is
    called with ``go=True``; end of file otherwise.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._go = False

    def release(self, go: bool) -> None:
        self._go = go
        self._event.set()

    def feed(self, stdin: IO[bytes]) -> None:
        self._event.wait()
        with contextlib.suppress(OSError):  # it may have died already
            if self._go:
                stdin.write(b"go\n")
                stdin.flush()
            stdin.close()


class _Tail:
    """Reads a pipe to its end, keeping only the last ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int = LOG_TAIL_BYTES) -> None:
        self._stream = stream
        self._limit = limit
        self._buf = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while chunk := self._stream.read1(65536):  # type: ignore[attr-defined]
            self._buf += chunk
            if len(self._buf) > 2 * self._limit:
                del self._buf[: -self._limit]

    def text(self) -> str:
        return bytes(self._buf[-self._limit :]).decode("utf-8", errors="replace")


def _wait(proc: subprocess.Popen[bytes], deadline: float | None) -> tuple[int | None, int]:
    """Reap ``proc`` by ``deadline`` (monotonic; None: block): (exit code or None, max RSS in KiB).

    ``os.wait4`` instead of ``Popen.wait`` because its rusage includes the
    peak memory of the program and of everything it reaped.
    """
    while True:
        pid, status, usage = os.wait4(proc.pid, 0 if deadline is None else os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_maxrss
        if deadline is not None and time.monotonic() >= deadline:
            return None, 0
        time.sleep(0.02)


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the leader has exited, without reaping it (its rusage is still wanted)."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # already reaped
        return True


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, give the leader a grace period, then SIGKILL the group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline and not _exited(proc):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


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
) -> SandboxRun:
    """Run ``command`` (paths as seen inside) in ``backend``; never raises for the program's faults.

    Output (stdout and stderr together) is kept as a tail of the last 4 KiB.
    With ``stdout_consumer``, stdout is a separate pipe handed to it on a
    thread (the scorer reads logits from it) and only stderr goes to the tail;
    if the consumer raises, the program is killed and the error returned.
    With ``gate``, the program's stdin is a pipe that :class:`Gate` feeds.
    ``backend`` must come from :func:`resolve_backend`.
    """
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
    drop_uid = _sandbox_uid() if backend == "bwrap" and os.geteuid() == 0 else None
    if drop_uid is not None:
        for m in mounts:
            if m.writable:
                os.chown(m.host, drop_uid, drop_uid)
    argv = (
        _prefix_argv(backend, mounts, device, drop_uid)
        + _launcher_argv(backend, limits, device, drop_uid, cwd)
        + list(command)
    )
    start = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if gate else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stdout_consumer else subprocess.STDOUT,
        env=dict(env),
        start_new_session=True,  # its own process group, killed as one
        close_fds=True,
    )
    assert proc.stdout is not None
    tail = _Tail(proc.stderr if stdout_consumer else proc.stdout)  # type: ignore[arg-type]
    consumer_error: list[BaseException] = []
    consumer_thread = None
    if stdout_consumer is not None:

        def consume() -> None:
            try:
                stdout_consumer(proc.stdout)  # type: ignore[arg-type]
            except Exception as exc:  # handed back to the caller as a value
                consumer_error.append(exc)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

        consumer_thread = threading.Thread(target=consume, daemon=True)
        consumer_thread.start()
    if gate is not None:
        threading.Thread(target=gate.feed, args=(proc.stdin,), daemon=True).start()
    returncode, max_rss_kb = _wait(proc, start + limits.timeout_s)
    timed_out = returncode is None
    wall = time.monotonic() - start
    _kill_group(proc)  # also after a normal exit: nothing it started may outlive it
    if timed_out:
        returncode, max_rss_kb = _wait(proc, None)
    for thread in (tail.thread, consumer_thread):
        if thread is not None:
            thread.join(timeout=5.0)
    return SandboxRun(
        backend=backend,
        returncode=None if timed_out else returncode,
        timed_out=timed_out,
        max_rss_mb=max_rss_kb / 1024.0,
        wall_s=wall,
        log_tail=tail.text(),
        consumer_error=consumer_error[0] if consumer_error else None,
    )
