"""Writes a valid report but a model.pt that is not a checkpoint (and needs no torch)."""

import json
import os

out = os.environ["DARWIN_OUT"]
with open(os.path.join(out, "model.pt"), "wb") as f:
    f.write(b"this is not a checkpoint" * 100)
report = {
    "iterations": 1,
    "tokens_seen": 1024,
    "train_seconds": 0.01,
    "device": "cpu",
    "config": {"n_layer": 1, "n_head": 1, "n_embd": 65, "block_size": 64, "vocab_size": 65},
}
with open(os.path.join(out, "train.json"), "w") as f:
    json.dump(report, f)
print("trained honestly, saved garbage")
