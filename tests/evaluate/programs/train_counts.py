"""Trains nothing by gradient: model.pt (JSON) is the bigram log-frequency table of train.bin.

No torch, so it is fast. Used by the hostile models, which need an honest, decent model
to hide their cheating in (and a table to spot a twin's splice with).
"""

import json
import os

import numpy as np

data, out = os.environ["DARWIN_DATA"], os.environ["DARWIN_OUT"]
with open(os.path.join(data, "meta.json")) as f:
    vocab = json.load(f)["vocab_size"]
ids = np.fromfile(os.path.join(data, "train.bin"), dtype=np.uint16).astype(np.int64)
counts = np.bincount(ids[:-1] * vocab + ids[1:], minlength=vocab * vocab).reshape(vocab, vocab)
table = np.log((counts + 0.5) / (counts + 0.5).sum(axis=1, keepdims=True))
with open(os.path.join(out, "model.pt"), "w") as f:
    json.dump({"vocab_size": vocab, "table": table.tolist()}, f)
report = {"iterations": 1, "tokens_seen": len(ids), "train_seconds": 0.01}
with open(os.path.join(out, "train.json"), "w") as f:
    json.dump(report, f)
print(f"counted {len(ids)} tokens")
