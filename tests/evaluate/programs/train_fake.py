"""Trains nothing and needs no torch (fast): model.pt is a seeded bigram table as JSON."""

import json
import os
import random

data, out = os.environ["DARWIN_DATA"], os.environ["DARWIN_OUT"]
rng = random.Random(int(os.environ.get("DARWIN_SEED", "0")))
with open(os.path.join(data, "meta.json")) as f:
    vocab = json.load(f)["vocab_size"]
table = [[rng.gauss(0.0, 1.0) for _ in range(vocab)] for _ in range(vocab)]
with open(os.path.join(out, "model.pt"), "w") as f:
    json.dump({"vocab_size": vocab, "table": table}, f)
report = {
    "iterations": 1,
    "tokens_seen": 1024,
    "train_seconds": 0.01,
    "device": "cpu",
    "config": {"n_layer": 1, "n_head": 1, "n_embd": vocab, "block_size": 64, "vocab_size": vocab},
}
with open(os.path.join(out, "train.json"), "w") as f:
    json.dump(report, f)
tokens = os.path.getsize(os.path.join(data, "train.bin")) // 2
print(f"wrote a table model; train.bin has {tokens} tokens")
