"""Tries every page-cache probe on files a sandbox shares, then trains honestly.

What it stands for: the sender or receiver of a page-cache channel. Evicting a
shared file's page (fadvise DONTNEED, madvise PAGEOUT) and reading residency back
without touching the page (mincore, cachestat, preadv2 RWF_NOWAIT, io_uring)
would carry bits between sandboxes. Each attempt prints ``PROBE <name>: <result>``.
"""

import ctypes
import errno
import mmap
import os
import runpy

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                      ctypes.c_long]  # fmt: skip


def report(name, call):
    try:
        value = call()
    except OSError as exc:
        print(f"PROBE {name}: {errno.errorcode.get(exc.errno, exc.errno)}", flush=True)
        return
    print(f"PROBE {name}: allowed ({value})", flush=True)


def syscall(nr, *args):
    def call():
        r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
        if r < 0:
            raise OSError(ctypes.get_errno(), "")
        return r

    return call


def preadv_nowait(fd):
    buf = bytearray(4096)
    return lambda: os.preadv(fd, [buf], 0, os.RWF_NOWAIT)


shared = os.path.join(os.environ["DARWIN_DATA"], "train.bin")
fd = os.open(shared, os.O_RDONLY)
page = libc.mmap(None, 4096, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
vec = ctypes.create_string_buffer(1)
params = ctypes.create_string_buffer(120)  # struct io_uring_params
span = (ctypes.c_uint64 * 2)(0, 4096)  # struct cachestat_range
stat = ctypes.create_string_buffer(40)  # struct cachestat
aio = ctypes.c_ulong(0)
report("fadvise64", lambda: os.posix_fadvise(fd, 0, 4096, os.POSIX_FADV_DONTNEED))
report("readahead", syscall(187, fd, 0, 4096))
report("mincore", syscall(27, page, 4096, ctypes.addressof(vec)))
report("cachestat", syscall(451, fd, ctypes.addressof(span), ctypes.addressof(stat), 0))
report("preadv2_nowait", preadv_nowait(fd))
report("madvise_pageout", syscall(28, page, 4096, 21))
report("io_uring_setup", syscall(425, 8, ctypes.addressof(params)))
report("io_setup", syscall(206, 8, ctypes.addressof(aio)))
report("x32_fadvise64", syscall(0x40000000 | 221, fd, 0, 4096, 4))  # another ABI's numbering
# what honest code does stays allowed
report("preadv2_plain", lambda: os.preadv(fd, [bytearray(64)], 0, 0))
report("madvise_dontneed", syscall(28, page, 4096, 4))
os.close(fd)
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "honest_train.py"),
               run_name="__main__")  # fmt: skip
