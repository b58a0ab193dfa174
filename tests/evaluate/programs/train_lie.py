"""Trains honestly (the bigram of honest_train.py), then inflates its report.

What it lies about is seed/target.txt: tokens (1e6 x the tokens it saw), params
(10 x the parameters), seconds (a training time longer than the process ran).
"""

import json
import os
import runpy

here = os.path.dirname(os.path.abspath(__file__))
runpy.run_path(os.path.join(here, "honest_train.py"), run_name="__main__")
with open(os.path.join(here, "target.txt")) as f:
    lie = f.read().strip()
path = os.path.join(os.environ["DARWIN_OUT"], "train.json")
with open(path) as f:
    report = json.load(f)
if lie == "tokens":
    report["tokens_seen"] *= 1e6
    report["tokens_per_s"] *= 1e6
elif lie == "params":
    report["num_params"] *= 10
elif lie == "seconds":
    report["train_seconds"] = 1e4
with open(path, "w") as f:
    json.dump(report, f)
print(f"lied about {lie}")
