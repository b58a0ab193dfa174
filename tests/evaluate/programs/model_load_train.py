"""Trains in load(): a trigram count model of the stashed training split, plus more "training".

Causal and deterministic, so both scoring sandboxes build the same model and the
twins agree; a better model than the honest bigram, bought with time spent in scoring.
"""

import json
import os
import time

import numpy as np
import torch
from torch import nn

# seed/target.txt: CPU seconds of further "training" at load time (a busy loop stands for them)
_TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "target.txt")


def _extra_training_s():
    if not os.path.exists(_TARGET):
        return 0.0
    with open(_TARGET) as f:
        return float(f.read())


class Trigram(nn.Module):
    def __init__(self, bigram, trigram):
        super().__init__()
        self.bigram, self.trigram = torch.tensor(bigram), torch.tensor(trigram)

    def forward(self, idx):
        first = self.bigram[idx[:, :1]]  # position 0 has one token of context
        rest = self.trigram[idx[:, :-1], idx[:, 1:]]  # position t sees idx[:, t-1 : t+1]
        return torch.cat([first, rest], dim=1)


def _log_freq(counts):
    counts = counts + 0.5
    return np.log(counts / counts.sum(axis=-1, keepdims=True)).astype(np.float32)


def load(path, device):
    with open(path) as f:
        vocab = json.load(f)["vocab_size"]
    ids = np.fromfile(os.path.join(os.path.dirname(path), "stash.bin"), dtype=np.uint16)
    ids = ids.astype(np.int64)
    bi = np.bincount(ids[:-1] * vocab + ids[1:], minlength=vocab**2).reshape(vocab, vocab)
    key = (ids[:-2] * vocab + ids[1:-1]) * vocab + ids[2:]
    tri = np.bincount(key, minlength=vocab**3).reshape(vocab, vocab, vocab)
    until = time.process_time() + _extra_training_s()
    while time.process_time() < until:  # work, not waiting: the budget charges CPU time
        pass
    return Trigram(_log_freq(bi), _log_freq(tri)).to(device).eval()
