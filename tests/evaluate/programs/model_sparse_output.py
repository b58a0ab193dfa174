"""The honest bigram, whose model.pt is a sparse file: seed/target.txt's MiB of hole.

train.py (``train_sparse_output.py``) saves the real weights beside it, in
``weights.pt``, and ``load()`` reads those: model.pt costs the program no disk, while
a harness that copies it byte by byte (to keep it for re-scoring, and into the scoring
sandbox's folder) writes its whole size, twice.
"""

import os

import torch
from torch import nn


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


def load(path, device):
    real = torch.load(
        os.path.join(os.path.dirname(path), "weights.pt"), map_location=device, weights_only=True
    )
    model = Bigram(real["vocab_size"])
    model.load_state_dict(real["model"])
    return model.to(device).eval()
