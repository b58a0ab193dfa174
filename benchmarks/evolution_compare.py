"""Compare evolution.py reports across schedules and evolution seeds, at the long budget; prints JSON.

    python benchmarks/evolution_compare.py flat-s0.json halving-s0.json flat-s1.json ...

Each report (``benchmarks/evolution.py --long-factor F --out ...``) holds its
arms' results trained at F x the search budget and the seed's runs there, on
that run's own held-out windows. So that runs of different reports compare,
every run is taken relative to its own report's seed: ``ratio`` = perplexity /
the seed's mean perplexity (below 1: better than the seed). Arms: each
report's evolution arm under its ``config.schedule`` ("flat", "halving"), and
the random search of every report ("random"). Reported per arm: the ratios,
their mean, the compute units the arm spent, and one-sided Welch p-values
(``scipy.stats.ttest_ind``, ``alternative="less"``) that one arm's ratios are
lower than another's.
"""

from __future__ import annotations

import json
import sys
from itertools import permutations
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats


def ratios(report: dict[str, Any], arm: str) -> list[float]:
    """The arm's long-budget runs over the seed's mean there (a failed run is left out)."""
    long = report.get("long") or {}
    seed = [p for p in long.get("seed_runs", []) if p is not None]
    runs = [p for p in (long.get(arm) or {}).get("runs", []) if p is not None]
    return [p / float(np.mean(seed)) for p in runs] if seed else []


def compare(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool each arm's ratios over the reports and test every pair of arms."""
    arms: dict[str, dict[str, list[Any]]] = {}
    per_seed: dict[str, dict[str, float]] = {}  # evolution seed -> arm -> its mean ratio

    def add(name: str, rs: list[float], units: float | None, seed: int) -> None:
        a = arms.setdefault(name, {"ratios": [], "units": [], "evolution_seeds": []})
        a["ratios"] += rs
        a["units"].append(units)
        a["evolution_seeds"].append(seed)
        if rs:
            per_seed.setdefault(str(seed), {})[name] = float(np.mean(rs))

    for rep in reports:
        cfg = rep["config"]
        add(cfg.get("schedule", "flat"), ratios(rep, "evolution"),
            rep["evolution"].get("compute_units"), cfg["seed"])  # fmt: skip
        if rep.get("random_search"):  # a report made with --no-random has none
            add("random", ratios(rep, "random_search"),
                rep["random_search"].get("compute_units"), cfg["seed"])  # fmt: skip
    summary = {
        name: {**a, "mean_ratio": float(np.mean(a["ratios"])) if a["ratios"] else None}
        for name, a in arms.items()
    }
    tests = {}
    for x, y in permutations(arms, 2):
        rx, ry = arms[x]["ratios"], arms[y]["ratios"]
        if len(rx) >= 2 and len(ry) >= 2:
            p = stats.ttest_ind(rx, ry, equal_var=False, alternative="less").pvalue
            tests[f"{x} < {y}"] = None if np.isnan(p) else float(p)
    return {"arms": summary, "per_seed": per_seed, "p_values": tests}


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: evolution_compare.py REPORT.json [REPORT.json ...]", file=sys.stderr)
        return 2
    try:
        reports = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    except (OSError, json.JSONDecodeError) as exc:
        print(f"evolution_compare: cannot read a report: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(compare(reports), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
