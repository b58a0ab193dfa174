"""Trusted launcher: the first program that runs inside the sandbox.

It sets the resource limits, gives up root when asked, installs the seccomp
filter of ``seccomp.py`` (its sibling, loaded by path), and then replaces itself
with the real command (``exec``), so the limits and the filter bind the agent's
program and everything it spawns. It imports only the standard library and never
darwin_bot, because it runs by file path with ``python -I`` (no site, no
environment), before anything of the agent's is loaded.

Usage: ``python -I launch.py [--as-mb N] [--nproc N] [--fsize-mb N]
[--drop-to UID:GID] --cwd DIR -- ARGV...``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import sys

MB = 1024 * 1024


def _limit(which: int, value: int) -> None:
    # Never raise a hard limit we were given from outside, only lower it.
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))


def _install_filter() -> None:
    """The channel filter, on every backend; a machine it does not cover is said on stderr."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp.py")
    spec = importlib.util.spec_from_file_location("darwin_seccomp", path)
    if spec is None or spec.loader is None:
        sys.exit("launch.py: seccomp.py is missing next to the launcher")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        why = module.install()
    except OSError as exc:  # fail closed: no sandbox runs without its filter
        sys.exit(f"launch.py: the kernel refused the seccomp filter: {exc}")
    if why:
        print(f"launch.py: warning: {why}; page-cache probes are not blocked", file=sys.stderr)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="launch.py")
    parser.add_argument("--as-mb", type=int, default=0, help="address-space limit (RLIMIT_AS)")
    parser.add_argument("--nproc", type=int, default=0, help="process/thread limit (RLIMIT_NPROC)")
    parser.add_argument("--fsize-mb", type=int, default=0, help="largest file it may write")
    parser.add_argument("--drop-to", default="", help="UID:GID to become before exec")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command after --")

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core dumps of agent code
    if args.as_mb:
        _limit(resource.RLIMIT_AS, args.as_mb * MB)
    if args.fsize_mb:
        _limit(resource.RLIMIT_FSIZE, args.fsize_mb * MB)
    if args.drop_to:
        uid, gid = (int(x) for x in args.drop_to.split(":"))
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if os.getuid() == 0 or os.geteuid() == 0:  # pragma: no cover - kernel guarantees it
            sys.exit("launch.py: could not give up root")
    if args.nproc:
        # Set after the uid change: RLIMIT_NPROC counts the processes of the real
        # uid, and root ignores it, so it only binds once we are not root.
        _limit(resource.RLIMIT_NPROC, args.nproc)
    os.chdir(args.cwd)
    _install_filter()
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
