"""Tries to write everywhere but its output folder; reports what happened."""

import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "target.txt")) as f:
    host_target = f.read().strip()
data = os.environ["DARWIN_DATA"]
for path in (
    host_target,
    os.path.join(here, "planted.py"),
    os.path.join(data, "train.bin"),
    os.path.join(data, "planted"),
    "/etc/planted",
    "/usr/planted",
    "/planted",
):
    try:
        with open(path, "ab") as f:
            f.write(b"pwned")
        print(f"WRITE {path}: WRITTEN")
    except OSError as exc:
        print(f"WRITE {path}: denied ({type(exc).__name__})")
with open(os.path.join(os.environ["DARWIN_OUT"], "ok.txt"), "w") as f:
    f.write("the output folder is writable")
print("WRITE out: ok")
sys.exit(3)
