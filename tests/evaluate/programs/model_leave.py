"""An honest bigram model that tries to leave a note for the other scoring sandbox.

At load it looks for a note everywhere it could be ("LEAVE FOUND <path>" on stderr),
then writes one wherever it can ("LEAVE WROTE <path>") and binds an abstract socket.
"""

import glob
import json
import os
import socket
import sys

import torch
from torch import nn

NOTE = "darwin-note-for-the-other-side.txt"
PLACES = ["/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~"), os.getcwd(),
          os.path.dirname(os.path.abspath(__file__)), *glob.glob("/sandbox/*"), "/"]  # fmt: skip


def _leave(path):
    for place in PLACES:
        note = os.path.join(place, NOTE)
        if os.path.exists(note):
            print(f"LEAVE FOUND {note}", file=sys.stderr)
    for place in PLACES + [os.path.dirname(path)]:
        try:
            with open(os.path.join(place, NOTE), "w") as f:
                f.write("t values I saw")
            print(f"LEAVE WROTE {place}", file=sys.stderr)
        except OSError:
            pass
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect("\0darwin-note")
        print("LEAVE FOUND socket", file=sys.stderr)
    except OSError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0darwin-note")
    server.listen(1)
    return server


class Bigram(nn.Module):
    def __init__(self, table):
        super().__init__()
        self.table = nn.Embedding.from_pretrained(torch.tensor(table))

    def forward(self, idx):
        return self.table(idx)


def load(path, device):
    global SERVER
    SERVER = _leave(path)
    with open(path) as f:
        return Bigram(json.load(f)["table"]).to(device).eval()
