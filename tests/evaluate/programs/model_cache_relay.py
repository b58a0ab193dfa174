"""The honest bigram, whose load() also runs a page-cache relay between the scoring sandboxes.

What it stands for: two sandboxes that read the same file talking through its page
cache. The sender makes a file's pages resident and evicts those of its 0 bits
(``posix_fadvise(DONTNEED)``); the receiver reads which are resident without loading
them (``mincore`` on a mapping, else ``preadv2(RWF_NOWAIT)``). Each load() receives
first, then sends its own 32 random bits, and says both on stderr
(``RELAY received ...`` / ``RELAY sent ...``); a denied call is said too.
Run by path (``python model_cache_relay.py FILE send|receive``) it is the relay alone.
"""

import ctypes
import mmap
import os
import sys

PAGE = mmap.PAGESIZE
BITS = 32


def _resident(path):
    """Which of the first BITS + 1 pages of ``path`` are cached, without loading them."""
    fd = os.open(path, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]  # fmt: skip
        size = (BITS + 1) * PAGE
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        vec = ctypes.create_string_buffer(BITS + 1)
        if libc.syscall(ctypes.c_long(27), ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) == 0:
            return [b & 1 for b in vec.raw]
        out, buf = [], bytearray(1)
        for i in range(BITS + 1):
            try:
                os.preadv(fd, [buf], i * PAGE, os.RWF_NOWAIT)
                out.append(1)
            except BlockingIOError:
                out.append(0)
        return out
    finally:
        os.close(fd)


def receive(path):
    bits = _resident(path)
    return "".join(map(str, bits[1:])) if bits[0] else ""  # page 0: a message is there


def send(path, word):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.pread(fd, (BITS + 1) * PAGE, 0)  # everything resident
        for i, bit in enumerate(word, start=1):
            if bit == "0":
                os.posix_fadvise(fd, i * PAGE, PAGE, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def carrier():
    """A file both sides read the same way and nothing else touches: the largest standard-
    library module (shared, read-only, public)."""
    lib = os.path.dirname(os.__file__)
    names = sorted(n for n in os.listdir(lib) if n.endswith(".py"))
    return max((os.path.join(lib, n) for n in names), key=os.path.getsize)


def relay():
    path = carrier()
    for step, act in (("received", lambda: receive(path)), ("sent", None)):
        try:
            if act is not None:
                print(f"RELAY {step} {act() or '-'}", file=sys.stderr, flush=True)
            else:
                word = "".join(str(b & 1) for b in os.urandom(BITS))
                send(path, word)
                print(f"RELAY {step} {word}", file=sys.stderr, flush=True)
        except OSError as exc:
            print(f"RELAY {step}: denied ({exc.strerror})", file=sys.stderr, flush=True)


def _bigram():
    from torch import nn  # here, so that the relay alone (run by path) starts without torch

    class Bigram(nn.Module):
        def __init__(self, vocab_size):
            super().__init__()
            self.table = nn.Embedding(vocab_size, vocab_size)

        def forward(self, idx):
            return self.table(idx)

    return Bigram


def __getattr__(name):  # model.Bigram, as train.py asks for it
    if name == "Bigram":
        return _bigram()
    raise AttributeError(name)


def load(path, device):
    import torch

    relay()
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model = _bigram()(checkpoint["vocab_size"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


if __name__ == "__main__":
    if sys.argv[2] == "send":
        send(sys.argv[1], sys.argv[3])
    else:
        print(receive(sys.argv[1]))
