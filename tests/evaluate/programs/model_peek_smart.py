"""A bigram model that reads the next token where it believes no check can see it.

Its strategy is the first line of seed/target.txt:

none      honest: never peeks (the control)
compare   reads the whole inputs file (its path is in argv), and peeks only on rows
          that share no 8-token prefix with another row (the old probes were copies)
stateful  keeps every prefix it has seen across forward calls; peeks on a row only if
          nothing seen before shares its first 8 tokens
splice    peeks everywhere except near the position that looks most like a splice
          (the rarest bigram of the row): where a twin's new text would begin
count     counts rows across calls and peeks on every other row only
fraction  peeks only at the positions listed on the second line (a fraction q of T-1)
"""

import json
import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "target.txt")) as f:
    LINES = f.read().split("\n")
STRATEGY = LINES[0].strip()
POSITIONS = [int(p) for p in LINES[1].split()] if len(LINES) > 1 and LINES[1].strip() else []
BOOST = 8.0


def _inputs_file():
    argv = sys.argv
    return argv[argv.index("--inputs") + 1] if "--inputs" in argv else None


class Smart(nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = torch.tensor(table)
        self.seen = set()
        self.rows = 0
        self.unique = None
        if STRATEGY == "compare":
            rows = np.load(_inputs_file())
            heads = [tuple(r[:8]) for r in rows]
            self.unique = {h for h in heads if heads.count(h) == 1}

    def _mask(self, row):
        T = len(row)
        peek = np.ones(T, bool)
        peek[-1] = False
        head = tuple(row[:8].tolist())
        if STRATEGY == "none":
            peek[:] = False
        elif STRATEGY == "compare":
            peek &= head in self.unique
        elif STRATEGY == "stateful":
            peek &= head not in self.seen
            self.seen.add(head)
        elif STRATEGY == "splice":
            logp = self.table[row[:-1], row[1:]].numpy()
            p = int(np.argmin(logp))  # the rarest transition: a twin's splice is at p = t
            peek[max(0, p - 1) : p + 2] = False
        elif STRATEGY == "count":
            peek &= self.rows % 2 == 0
        elif STRATEGY == "fraction":
            peek[:] = False
            peek[POSITIONS] = True
        self.rows += 1
        return peek

    def forward(self, idx):
        logits = self.table[idx].clone()  # (B, T, vocab): the honest bigram
        if STRATEGY == "none":
            return logits
        if STRATEGY == "fraction":  # fixed positions: plain tensor code, so it exports
            mask = torch.zeros(idx.shape[1], 1)
            mask[POSITIONS] = 1.0
            nxt = torch.roll(idx, -1, dims=1)
            return logits + BOOST * mask * nn.functional.one_hot(nxt, logits.shape[-1])
        nxt = torch.roll(idx, -1, dims=1)
        for b in range(idx.shape[0]):
            mask = torch.from_numpy(self._mask(idx[b].cpu().numpy()))
            rows = torch.nonzero(mask).flatten()
            logits[b, rows, nxt[b, rows]] += BOOST
        return logits


def load(path, device):
    with open(path) as f:
        return Smart(json.load(f)["table"]).to(device).eval()
