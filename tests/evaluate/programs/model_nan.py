"""A bigram model whose logits turn to NaN (or -inf, per target.txt) on one token."""

import json
import os

import torch
from torch import nn

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "target.txt")) as f:
    BAD = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}[f.read().strip()]


class Bad(nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = nn.Embedding.from_pretrained(torch.tensor(table))

    def forward(self, idx):
        logits = self.table(idx)
        # 1 is '\n' in tiny Shakespeare: rare enough to look like a bug
        return torch.where((idx == 1).unsqueeze(-1), torch.full_like(logits, BAD), logits)


def load(path, device):
    with open(path) as f:
        return Bad(json.load(f)["table"]).to(device).eval()
