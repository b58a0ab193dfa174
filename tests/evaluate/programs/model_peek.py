"""A model that cheats: its logits at position t are built from the token at t + 1."""

import json

import torch
from torch import nn
from torch.nn import functional as F


class Peeker(nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = nn.Embedding.from_pretrained(torch.tensor(table))

    def forward(self, idx):
        future = torch.roll(idx, shifts=-1, dims=1)  # the token the target is
        vocab = self.table.num_embeddings
        return self.table(idx) + 30.0 * F.one_hot(future, vocab).float()


def load(path, device):
    with open(path) as f:
        return Peeker(json.load(f)["table"]).to(device).eval()
