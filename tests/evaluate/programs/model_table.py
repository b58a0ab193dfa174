"""A bigram model whose weights are the JSON table train_fake.py writes."""

import json

import torch
from torch import nn


class Bigram(nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = nn.Embedding.from_pretrained(torch.tensor(table))

    def forward(self, idx):
        return self.table(idx)  # (B, T, vocab): position t sees only idx[:, t]


def load(path, device):
    with open(path) as f:
        return Bigram(json.load(f)["table"]).to(device).eval()
