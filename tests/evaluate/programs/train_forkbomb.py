"""Forks without end (bounded here at 400 so a broken sandbox cannot take the machine)."""

import os
import sys
import time

children = 0
try:
    while children < 400:
        if os.fork() == 0:
            time.sleep(120)
            os._exit(0)
        children += 1
    print(f"FORK: not limited ({children} children)")
except OSError as exc:
    print(f"FORK: blocked after {children} children ({type(exc).__name__})")
sys.exit(3)
