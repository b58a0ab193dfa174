"""A model that cheats: its logits at position t are built from the token at t + 1."""

import torch
from torch import nn
from torch.nn import functional as F


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        future = torch.roll(idx, shifts=-1, dims=1)  # the token the target is
        return self.table(idx) + 30.0 * F.one_hot(future, self.vocab_size).float()


def load(path, device):
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model = Bigram(checkpoint["vocab_size"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()
