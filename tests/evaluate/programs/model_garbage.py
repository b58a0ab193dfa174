"""A model that writes forged frames straight into the worker's output pipe."""

import contextlib
import json
import os
import stat
import struct

import torch
from torch import nn


def _pipes():
    fds = []
    for fd in range(3, 64):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                fds.append(fd)
        except OSError:
            pass
    return fds


class Forger(nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = nn.Embedding.from_pretrained(torch.tensor(table))

    def forward(self, idx):
        fake = b"DLGT" + struct.pack("<I3I", 3, 1, 1, 1) + struct.pack("<f", -0.0)
        for fd in _pipes():
            with contextlib.suppress(OSError):
                os.write(fd, fake * 4)
        return self.table(idx)


def load(path, device):
    with open(path) as f:
        return Forger(json.load(f)["table"]).to(device).eval()
