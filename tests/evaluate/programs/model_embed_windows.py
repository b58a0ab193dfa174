"""A bigram model that embeds the held-out windows its author knows (seed/target.txt).

The public, fixed windows of a public corpus can be copied into a program: one line
of token ids per window, each followed by the next token. For every position whose
prefix matches a remembered window, the remembered next token gets a large boost. The
lookup is plain tensor arithmetic (and causal: position t looks at tokens <= t only),
so it exports as a graph like any model.
"""

import os

import torch
from torch import nn
from torch.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class Bigram(nn.Module):
    """What train.py trains (the honest bigram)."""

    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


class Remembers(nn.Module):
    def __init__(self, vocab_size, windows):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self.register_buffer("windows", windows)  # [N, T + 1]
        self.register_buffer("eye", torch.eye(vocab_size))

    def forward(self, idx):
        T = idx.shape[1]
        seen = self.windows[:, :T]  # [N, T]
        match = torch.cumprod((seen == idx[:1]).long(), dim=1).float()  # prefix through t agrees
        nxt = F.embedding(self.windows[:, 1 : T + 1], self.eye)  # [N, T, vocab]
        boost = (match.unsqueeze(-1) * nxt).sum(dim=0)  # [T, vocab]
        return self.table(idx) + 30.0 * boost.unsqueeze(0)


def load(path, device):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    with open(os.path.join(HERE, "target.txt")) as f:
        rows = [[int(t) for t in line.split()] for line in f if line.strip()]
    model = Remembers(checkpoint["vocab_size"], torch.tensor(rows, dtype=torch.long))
    model.table.load_state_dict({"weight": checkpoint["model"]["table.weight"]})
    return model.to(device).eval()
