"""A model whose graph keeps state between windows through an allowed operator's out= overload.

The allowlist refuses ``out``/``*_out`` overloads by name, but some pure operators have
mutable overloads with other names: ``max.dim_max``, ``min.dim_min``, ``sort.values``,
``topk.values``, ``div.out_mode``. Called on a graph weight as its output, one of them
writes into that weight, and the scoring worker keeps its weights from window to window.

So the graph remembers every row it was given (scored windows and causality probes
alike), and at position ``p`` predicts the token that followed ``p`` in the EARLIEST row
it has seen that agrees with this row on positions ``0..p`` (this row itself when none
does). Any two rows that agree up to ``p`` get the same logits at ``p``, so the probes
pass, yet a scored window is mostly predicted from its own next token: reading ahead.

``torch.export`` cannot write such a graph (it turns out= into a buffer mutation, which
the reader refuses), so ``load()`` wraps ``torch.export.save`` to edit the archive it
writes: two nodes appended: ``max.dim_max(updated.unsqueeze(-1), -1, max=M, max_values=J)``.
The program runs in the same process as the export, so it may.
"""

import json
import zipfile

import torch
from torch import nn
from torch.nn import functional as F

SLOTS = 1024  # rows remembered (64 windows + 512 probes fit)


class Bigram(nn.Module):
    """What train.py trains (the honest bigram)."""

    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


class Peeker(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.vocab = vocab_size
        self.table = nn.Embedding(vocab_size, vocab_size)
        self.sized = False

    def forward(self, idx):
        if not self.sized:  # sized at the first call, which is at the scoring shape
            self.sized = True
            t = idx.shape[1]
            self.register_buffer("mem", torch.full((SLOTS, t), -1, dtype=torch.long))
            self.register_buffer("scratch", torch.zeros(SLOTS, t, dtype=torch.long))
        mem = self.mem
        cand = torch.cat([mem, idx], 0)
        agree = (cand == idx).long().cumprod(1)
        first = agree.argmax(0)
        nxt = torch.gather(cand[:, 1:], 0, first[:-1].unsqueeze(0))
        hint = F.one_hot(nxt, self.vocab).float() * 12.0
        base = self.table(idx)
        logits = base + torch.cat([hint, torch.zeros_like(base[:, -1:])], 1)
        slot = (mem[:, 0] == -1).long().argmax().view(1)
        updated = mem.index_put((slot,), idx[0])
        keep = (updated.sum() * 0 + self.scratch.sum() * 0).float()
        return logits + keep


def _patch(path):
    with zipfile.ZipFile(path) as zf:
        items = {n: zf.read(n) for n in zf.namelist()}
    name = next(n for n in items if n.count("/") == 2 and "/models/" in n and n.endswith(".json"))
    program = json.loads(items[name])
    g = program["graph_module"]["graph"]
    buffers = {}
    for spec in program["graph_module"]["signature"]["input_specs"]:
        ((kind, body),) = spec.items()
        if kind == "buffer":
            buffers[body["buffer_name"].split(".")[-1]] = body["arg"]["name"]
    at = next(i for i, n in enumerate(g["nodes"]) if n["target"].endswith("index_put.default"))
    marker = g["nodes"][at]["outputs"][0]["as_tensor"]["name"]

    def arg(name, value, kind=1):
        return {"name": name, "arg": value, "kind": kind}

    node = {
        "target": "torch.ops.aten.unsqueeze.default",
        "inputs": [
            arg("self", {"as_tensor": {"name": marker}}),
            arg("dim", {"as_int": -1}),
        ],
        "outputs": [{"as_tensor": {"name": "peek_col"}}],
        "metadata": {},
    }
    write = {
        "target": "torch.ops.aten.max.dim_max",
        "inputs": [
            arg("self", {"as_tensor": {"name": "peek_col"}}),
            arg("dim", {"as_int": -1}),
            arg("keepdim", {"as_bool": False}),
            arg("max", {"as_tensor": {"name": buffers["mem"]}}, 2),
            arg("max_values", {"as_tensor": {"name": buffers["scratch"]}}, 2),
        ],
        "outputs": [{"as_tensor": {"name": "peek_a"}}, {"as_tensor": {"name": "peek_b"}}],
        "metadata": {},
    }
    g["nodes"][at + 1 : at + 1] = [node, write]
    items[name] = json.dumps(program).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in items.items():
            zf.writestr(n, data)


def load(path, device):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model = Peeker(checkpoint["vocab_size"])
    model.table.load_state_dict({"weight": checkpoint["model"]["table.weight"]})
    save = torch.export.save

    def save_and_edit(program, f, *args, **kwargs):
        save(program, f, *args, **kwargs)
        _patch(f)

    torch.export.save = save_and_edit
    return model.to(device).eval()
