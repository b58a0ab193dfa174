"""Prints the names of its environment variables (values stay private), then fails."""

import os
import sys

print("ENV:", " ".join(sorted(os.environ)))
sys.exit(3)
