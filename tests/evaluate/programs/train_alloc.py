"""Allocates without end (bounded here at 3 GiB so a broken limit cannot take the machine)."""

import sys

blocks = []
try:
    while len(blocks) < 30:
        blocks.append(bytearray(b"\x01") * (100 * 1024 * 1024))  # written: pages are real
    print(f"ALLOC: not limited ({len(blocks) * 100} MiB)")
except MemoryError:
    print(f"ALLOC: limited at {len(blocks) * 100} MiB")
sys.exit(3)
