"""Train the honest bigram; write model.pt as a hole of seed/target.txt's MiB (see
model_sparse_output.py) and the real weights to weights.pt."""

import json
import os
import sys

import numpy as np
import torch
from torch.nn import functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import model  # noqa: E402

data, out = os.environ["DARWIN_DATA"], os.environ["DARWIN_OUT"]
iters = int(os.environ.get("DARWIN_MAX_ITERS", "10"))
with open(os.path.join(here, "target.txt")) as f:
    hole = int(f.read().strip()) * 1024 * 1024
torch.manual_seed(int(os.environ.get("DARWIN_SEED", "0")))
with open(os.path.join(data, "meta.json")) as f:
    vocab = json.load(f)["vocab_size"]
tokens = torch.from_numpy(
    np.fromfile(os.path.join(data, "train.bin"), dtype=np.uint16).astype(np.int64)
)
net = model.Bigram(vocab)
opt = torch.optim.Adam(net.parameters(), lr=0.3)
B, T = 16, 64
for _ in range(iters):
    ix = torch.randint(len(tokens) - T - 1, (B,))
    x = torch.stack([tokens[i : i + T] for i in ix])
    y = torch.stack([tokens[i + 1 : i + T + 1] for i in ix])
    loss = F.cross_entropy(net(x).view(-1, vocab), y.view(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
torch.save({"vocab_size": vocab, "model": net.state_dict()}, os.path.join(out, "weights.pt"))
with open(os.path.join(out, "model.pt"), "wb") as f:
    f.truncate(hole)
with open(os.path.join(out, "train.json"), "w") as f:
    json.dump({"iterations": iters, "tokens_seen": iters * B * T, "train_seconds": 1.0}, f)
