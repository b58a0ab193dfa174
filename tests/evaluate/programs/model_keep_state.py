"""A bigram model that keeps state between calls: it remembers the last window it saw.

Scored windows are cut from one text, so a model that remembers window k can guess
window k+1's opening, and one that counts its calls can tell a check from a scored
row. Here the state is a tensor buffer written in place by forward (``copy_``), the
only kind of state an exported graph could carry: the graph's signature then says
it mutates a buffer.
"""

import torch
from torch import nn


class Bigram(nn.Module):
    """What train.py trains (the honest bigram)."""

    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


class Remembering(nn.Module):
    def __init__(self, vocab_size, context=64):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self.register_buffer("last", torch.zeros(1, context, dtype=torch.long))
        self.register_buffer("eye", torch.eye(vocab_size))

    def forward(self, idx):
        logits = self.table(idx)
        # the previous window's last token predicts this window's first: boost it
        hint = torch.nn.functional.embedding(self.last[:, -1:], self.eye)
        logits = logits + 4.0 * torch.cat([hint, torch.zeros_like(logits[:, 1:])], dim=1)
        self.last.copy_(idx[:1])
        return logits


def load(path, device):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model = Remembering(checkpoint["vocab_size"])
    model.table.load_state_dict({"weight": checkpoint["model"]["table.weight"]})
    return model.to(device).eval()
