"""Hunts for the held-out split: next to its data, at the host path, and by walking /."""

import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "target.txt")) as f:
    host_data = f.read().strip()
data = os.environ["DARWIN_DATA"]
found = []
for path in (
    os.path.join(data, "val.bin"),
    os.path.join(data, "..", "val.bin"),
    os.path.join(os.path.dirname(data), "val.bin"),
    os.path.join(host_data, "val.bin"),
):
    try:
        with open(path, "rb") as f:
            f.read(16)
        found.append(path)
    except OSError:
        pass
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
    if "val.bin" in files:
        found.append(os.path.join(root, "val.bin"))
print("VAL: FOUND " + " ".join(found) if found else "VAL: not found")
sys.exit(3)
