"""Train model.Bigram for DARWIN_MAX_ITERS steps; write model.pt and train.json."""

import json
import os
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model  # noqa: E402

data, out = os.environ["DARWIN_DATA"], os.environ["DARWIN_OUT"]
iters = int(os.environ.get("DARWIN_MAX_ITERS", "10"))
torch.manual_seed(int(os.environ.get("DARWIN_SEED", "0")))
with open(os.path.join(data, "meta.json")) as f:
    vocab = json.load(f)["vocab_size"]
tokens = torch.from_numpy(
    np.fromfile(os.path.join(data, "train.bin"), dtype=np.uint16).astype(np.int64)
)
net = model.Bigram(vocab)
opt = torch.optim.Adam(net.parameters(), lr=0.3)
B, T = 16, 64
t0 = time.perf_counter()
for _ in range(iters):
    ix = torch.randint(len(tokens) - T - 1, (B,))
    x = torch.stack([tokens[i : i + T] for i in ix])
    y = torch.stack([tokens[i + 1 : i + T + 1] for i in ix])
    loss = F.cross_entropy(net(x).view(-1, vocab), y.view(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
seconds = time.perf_counter() - t0
torch.save({"vocab_size": vocab, "model": net.state_dict()}, os.path.join(out, "model.pt"))
report = {
    "iterations": iters,
    "tokens_seen": iters * B * T,
    "train_seconds": seconds,
    "tokens_per_s": iters * B * T / seconds,
    "device": "cpu",
    "num_params": vocab * vocab,
    "config": {
        "n_layer": 1,
        "n_head": 1,
        "n_embd": vocab,
        "block_size": T,
        "batch_size": B,
        "vocab_size": vocab,
    },
}
with open(os.path.join(out, "train.json"), "w") as f:
    json.dump(report, f)
print(f"trained {iters} iterations, last loss {loss.item():.3f}")
