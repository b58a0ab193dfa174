"""Tries to reach the host's loopback and the internet; reports what happened."""

import os
import socket
import sys

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "target.txt")) as f:
    port = int(f.read())
for host, p in (("127.0.0.1", port), ("1.1.1.1", 53), ("8.8.8.8", 443)):
    try:
        socket.create_connection((host, p), timeout=2).close()
        print(f"NET {host}:{p}: CONNECTED")
    except OSError as exc:
        print(f"NET {host}:{p}: denied ({exc})")
sys.exit(3)
