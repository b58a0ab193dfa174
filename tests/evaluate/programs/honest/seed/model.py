"""A bigram language model: the smallest honest agent the evaluator can score."""

import torch
from torch import nn


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)  # token -> logits of the next

    def forward(self, idx):
        return self.table(idx)  # (B, T, vocab): position t sees only idx[:, t]


def load(path, device):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model = Bigram(checkpoint["vocab_size"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()
