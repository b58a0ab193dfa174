"""The honest bigram, trained with 0.1 s of CPU work per step, saving checkpoint.pt for the curve.

seed/target.txt picks how it saves:
  "on time": at each fraction DARWIN_CURVE lists, as the contract asks;
  "late":    nothing while training; after it, the final weights three times (claiming
             the early fractions), model.pt rewritten last, and 38x the tokens it saw
             in train.json (MFU about 38x its own, under 100%);
  "sleepy":  as "on time", then sleeps 6 s before it writes model.pt: a longer wall
             time made every checkpoint look earlier when the curve's axis was wall time.
"""

import json
import os
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
import model  # noqa: E402

data, out = os.environ["DARWIN_DATA"], os.environ["DARWIN_OUT"]
iters = int(os.environ.get("DARWIN_MAX_ITERS", "10"))
fractions = [float(f) for f in os.environ.get("DARWIN_CURVE", "").split(",") if f]
with open(os.path.join(here, "target.txt")) as f:
    mode = f.read().strip()
torch.manual_seed(int(os.environ.get("DARWIN_SEED", "0")))
with open(os.path.join(data, "meta.json")) as f:
    vocab = json.load(f)["vocab_size"]
tokens = torch.from_numpy(
    np.fromfile(os.path.join(data, "train.bin"), dtype=np.uint16).astype(np.int64)
)
net = model.Bigram(vocab)
opt = torch.optim.Adam(net.parameters(), lr=0.3)
B, T = 16, 64


def save(name):
    path = os.path.join(out, name)
    torch.save({"vocab_size": vocab, "model": net.state_dict()}, path + ".tmp")
    os.replace(path + ".tmp", path)


t0 = time.perf_counter()
for it in range(1, iters + 1):
    ix = torch.randint(len(tokens) - T - 1, (B,))
    x = torch.stack([tokens[i : i + T] for i in ix])
    y = torch.stack([tokens[i + 1 : i + T + 1] for i in ix])
    loss = F.cross_entropy(net(x).view(-1, vocab), y.view(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    work = time.process_time()
    while (
        time.process_time() - work < 0.1
    ):  # a step's worth of work (the watcher looks every 0.1 s)
        pass
    print(f"iter {it}: loss {loss.item():.4f}", flush=True)
    if mode in ("on time", "sleepy") and fractions and it / iters >= fractions[0]:
        fractions.pop(0)
        save("checkpoint.pt")
seconds = time.perf_counter() - t0
if mode == "sleepy":
    time.sleep(6.0)  # costs no CPU time
save("model.pt")
claimed = iters * B * T
if mode == "late":
    for _ in range(3):
        time.sleep(0.3)
        save("checkpoint.pt")
    time.sleep(0.3)
    save("model.pt")
    claimed *= 38
report = {
    "iterations": iters,
    "tokens_seen": claimed,
    "train_seconds": seconds,
    "tokens_per_s": claimed / seconds,
    "device": "cpu",
}
with open(os.path.join(out, "train.json"), "w") as f:
    json.dump(report, f)
