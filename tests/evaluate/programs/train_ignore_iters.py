"""Ignores its iteration budget: trains 10000x as many iterations, reports the budget."""

import json
import os
import runpy

budget = int(os.environ["DARWIN_MAX_ITERS"])
os.environ["DARWIN_MAX_ITERS"] = str(10000 * budget)
here = os.path.dirname(os.path.abspath(__file__))
runpy.run_path(os.path.join(here, "honest_train.py"), run_name="__main__")
path = os.path.join(os.environ["DARWIN_OUT"], "train.json")
with open(path) as f:
    report = json.load(f)
report.update(iterations=budget, tokens_seen=report["tokens_seen"] / 10000)
with open(path, "w") as f:
    json.dump(report, f)
