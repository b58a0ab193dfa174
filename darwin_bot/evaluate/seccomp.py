"""A seccomp filter that denies, with EPERM, the system calls only a covert channel needs.

Every sandbox shares one kernel, and with it one page cache, with every other
sandbox and with the trusted side. A program can learn whether a page of a file
it can read is cached without reading it, or evict it without memory pressure,
and so pass bits to another sandbox, or stash them for a later evaluation,
through the cache of files it only reads. The calls that do this and nothing an
honest training program needs are denied here:

- ``fadvise64`` (evicts pages: ``POSIX_FADV_DONTNEED``; or loads them),
  ``readahead``, ``mincore`` (residency of mapped pages), ``cachestat``
  (residency of a file range);
- ``preadv2``/``pwritev2`` when their flags hold ``RWF_NOWAIT`` (a read that
  fails instead of touching a page that is not cached); without it they are
  plain reads and writes and stay allowed;
- ``madvise`` with ``MADV_COLD``/``MADV_PAGEOUT`` (evicts a file's pages) and
  ``process_madvise``;
- ``io_uring_*`` and the Linux AIO calls (``io_setup``/``io_submit``): they
  carry fadvise, madvise and ``RWF_NOWAIT`` requests past a syscall filter.

Timing a plain read remains (a cached page is read faster); a read loads the
page, so each probe destroys its own mark, and without eviction the sender
has no way to clear one. See docs/sandbox.md.

The program is classic BPF built with ``struct`` and installed with ``prctl``
through ``ctypes``, so the trusted launcher can install it with the standard
library alone, on every backend. Only x86_64 has its numbers here: elsewhere
:func:`install` returns a reason and installs nothing (the caller says so).
A call from another ABI of the same machine (i386 ``int 0x80``, x32) is denied
outright: its numbers are not the ones checked.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

# x86_64 system call numbers (arch/x86/entry/syscalls/syscall_64.tbl)
NR = {
    "mincore": 27,
    "madvise": 28,
    "readahead": 187,
    "io_setup": 206,
    "io_submit": 209,
    "fadvise64": 221,
    "preadv2": 327,
    "pwritev2": 328,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "process_madvise": 440,
    "cachestat": 451,
}
DENIED = (
    "mincore",
    "readahead",
    "io_setup",
    "io_submit",
    "fadvise64",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "process_madvise",
    "cachestat",
)
RWF_NOWAIT = 0x08
MADV_COLD, MADV_PAGEOUT = 20, 21

# struct seccomp_data: nr (u32), arch (u32), instruction_pointer (u64), args[6] (u64)
OFF_NR, OFF_ARCH = 0, 4


def _arg_lo(i: int) -> int:
    return 16 + 8 * i  # the low 32 bits of args[i] (little-endian)


# classic BPF opcodes
LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ, JGE, JSET = 0x15, 0x35, 0x45  # BPF_JMP | BPF_{JEQ,JGE,JSET} | BPF_K
RET = 0x06  # BPF_RET | BPF_K
RET_ALLOW = 0x7FFF0000
RET_EPERM = 0x00050000 | errno.EPERM

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


Ins = tuple[int, int, int, int]  # (code, jt, jf, k), as struct sock_filter orders them


def _assemble(lines: list[tuple[str, int, int, str, str]]) -> list[Ins]:
    """Resolve labels: each line is (label, code, k, jump-if-true, jump-if-false).

    BPF jumps only forward, by an offset from the next instruction; '' means
    fall through.
    """
    at = {label: i for i, (label, *_rest) in enumerate(lines) if label}
    out: list[Ins] = []
    for i, (_label, code, k, jt, jf) in enumerate(lines):
        out.append((code, at[jt] - i - 1 if jt else 0, at[jf] - i - 1 if jf else 0, k))
    return out


def program() -> list[Ins]:
    """The filter, as (code, jt, jf, k) instructions."""
    lines: list[tuple[str, int, int, str, str]] = [
        ("", LD_ABS, OFF_ARCH, "", ""),
        ("", JEQ, AUDIT_ARCH_X86_64, "", "deny"),  # another ABI: its numbers are not these
        ("", LD_ABS, OFF_NR, "", ""),
        ("", JGE, X32_SYSCALL_BIT, "deny", ""),  # x32 shares the arch value: deny it outright
    ]
    lines += [("", JEQ, NR[name], "deny", "") for name in DENIED]
    lines += [
        ("", JEQ, NR["preadv2"], "rwf", ""),
        ("", JEQ, NR["pwritev2"], "rwf", ""),
        ("", JEQ, NR["madvise"], "advice", "allow"),
        # flags are args[5] of preadv2/pwritev2 (fd, iov, iovcnt, pos_l, pos_h, flags)
        ("rwf", LD_ABS, _arg_lo(5), "", ""),
        ("", JSET, RWF_NOWAIT, "deny", "allow"),
        # advice is args[2] of madvise (addr, length, advice)
        ("advice", LD_ABS, _arg_lo(2), "", ""),
        ("", JEQ, MADV_COLD, "deny", ""),
        ("", JEQ, MADV_PAGEOUT, "deny", "allow"),
        ("allow", RET, RET_ALLOW, "", ""),
        ("deny", RET, RET_EPERM, "", ""),
    ]
    return _assemble(lines)


def packed() -> bytes:
    """The filter as the kernel reads it: ``struct sock_filter`` records."""
    return b"".join(struct.pack("=HBBI", *ins) for ins in program())


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def unsupported() -> str:
    """'' where the filter applies; else why it does not (the machine is not x86_64 Linux)."""
    machine = platform.machine().lower()
    if platform.system() != "Linux" or machine not in ("x86_64", "amd64"):
        return f"no channel filter for {platform.system()}/{machine} (x86_64 Linux only)"
    return ""


def install() -> str:
    """Install the filter on this thread and its future children; '' or why not installed.

    Raises OSError when the kernel refuses it on a machine where it applies: a
    sandbox without its filter does not start.
    """
    why = unsupported()
    if why:
        return why
    code = packed()
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [
        ctypes.c_int,
        ctypes.c_ulong,
        ctypes.c_ulong,
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
    return ""
