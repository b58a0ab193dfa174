"""The honest bigram, saving each curve checkpoint as a sparse file: a hole, then a zip.

The file's size is seed/target.txt's MiB, but it takes no disk: a hole costs the
program nothing to write, while a harness that copies it byte by byte writes all of it
(for each snapshot, and again into the scoring sandbox's folder). The zip at its end
makes it look like a complete torch archive to ``zipfile.is_zipfile``.
"""

import io
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
fractions = [float(f) for f in os.environ.get("DARWIN_CURVE", "").split(",") if f]
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


def save_sparse():
    buf = io.BytesIO()
    torch.save({"vocab_size": vocab, "model": net.state_dict()}, buf)
    path = os.path.join(out, "checkpoint.pt")
    with open(path + ".tmp", "wb") as f:
        f.truncate(hole)
        f.seek(hole)
        f.write(buf.getvalue())
    os.replace(path + ".tmp", path)
    st = os.stat(path)
    print(f"SPARSE size={st.st_size} allocated={st.st_blocks * 512}", flush=True)


for it in range(1, iters + 1):
    ix = torch.randint(len(tokens) - T - 1, (B,))
    x = torch.stack([tokens[i : i + T] for i in ix])
    y = torch.stack([tokens[i + 1 : i + T + 1] for i in ix])
    loss = F.cross_entropy(net(x).view(-1, vocab), y.view(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if fractions and it / iters >= fractions[0]:
        fractions.pop(0)
        save_sparse()
torch.save({"vocab_size": vocab, "model": net.state_dict()}, os.path.join(out, "model.pt"))
with open(os.path.join(out, "train.json"), "w") as f:
    json.dump({"iterations": iters, "tokens_seen": iters * B * T, "train_seconds": 1.0}, f)
