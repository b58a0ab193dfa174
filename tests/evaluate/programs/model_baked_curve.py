"""A bigram whose trained table is baked into the graph's structure as scalar constants.

A learning curve's checkpoints are scored with the final model's graph, their tensors in
place of its weights. ``load()`` (agent code, run on the final weights) builds a model
whose ``forward`` writes every entry of the trained table as a number in the graph
(``full([1], c)`` per entry, concatenated) and multiplies the real weights by zero. The
weights still fit every checkpoint, so each curve point is scored with the FINAL table,
however early it was saved: the curve reaches the final loss at its first point.
"""

import torch
from torch import nn
from torch.nn import functional as F


class Bigram(nn.Module):
    """What train.py trains (the honest bigram)."""

    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


class Baked(nn.Module):
    def __init__(self, trained):
        super().__init__()
        self.table = nn.Embedding(*trained.shape)
        self.numbers = [float(v) for v in trained.flatten()]
        self.shape = tuple(trained.shape)

    def forward(self, idx):
        parts = [torch.full((1,), v, device=idx.device) for v in self.numbers]
        baked = torch.cat(parts).view(self.shape)
        return F.embedding(idx, baked) + 0.0 * self.table(idx)


def load(path, device):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    return Baked(checkpoint["model"]["table.weight"]).to(device).eval()
