"""Trains honestly, then overwrites model.pt with garbage."""

import os
import runpy

runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "honest_train.py"))
with open(os.path.join(os.environ["DARWIN_OUT"], "model.pt"), "wb") as f:
    f.write(b"this is not a checkpoint" * 100)
