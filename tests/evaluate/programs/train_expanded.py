"""Trains honestly, then pads model.pt with an expanded tensor to look like a larger model.

What it stands for: FLOPs per token (and so MFU) inflated for free. ``zeros(1).expand(N)``
saves 4 bytes but claims N elements; the report claims the padded count too, so a
parameter check that counts elements agrees with it.
"""

import json
import os
import runpy

import torch

here = os.path.dirname(os.path.abspath(__file__))
runpy.run_path(os.path.join(here, "honest_train.py"), run_name="__main__")
out = os.environ["DARWIN_OUT"]
checkpoint = torch.load(os.path.join(out, "model.pt"), weights_only=True)
real = sum(t.numel() for t in checkpoint["model"].values())
pad = 20 * real
checkpoint["pad"] = torch.zeros(1).expand(pad, 1)  # 2-D, so it counts as a matrix too
torch.save(checkpoint, os.path.join(out, "model.pt"))
with open(os.path.join(out, "train.json")) as f:
    report = json.load(f)
report["num_params"] = real + pad
with open(os.path.join(out, "train.json"), "w") as f:
    json.dump(report, f)
print(f"padded {real} parameters to {real + pad} with 4 bytes")
