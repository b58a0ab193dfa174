"""Replay a corpus of faulty LLM replies through the mutation pipeline; print JSON.

Each case of ``tests/data/faulty_replies/cases.jsonl`` names a chunk of the
real ``seed/``, the reply the "LLM" gives, what answers the repair prompt
(``"heuristic"``: the offline backend, which reverts to the original chunk;
any other string: that literal reply), and where the fault should be caught:
``validation``, ``smoke``, ``none`` (a reply the tolerant parser accepts and
that works) or ``latent`` (a fault only a longer run can show).

Every case runs in a fresh copy of seed/ with a real smoke test
(``budget.smoke_iters`` iterations of the tree's train.py on tiny synthetic
data). Every candidate the pipeline passes as "ok" is then trained for
``--full-iters`` iterations as the full evaluation would, which is how a broken
candidate that reached full training is found.

Compute accounting, in training iterations:
  broken = smoke iterations of failed smoke tests
           + full-training iterations of candidates that passed and then failed
  total  = smoke iterations of all smoke tests
           + full-training iterations (budget.iters) of every candidate that passed
  broken_compute_share = broken / total

Run: ``python benchmarks/mutation_reliability.py [--full-iters N] [--cases PATH]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from darwin_bot.config import Config
from darwin_bot.core import EvalResult
from darwin_bot.llm import Completion, HeuristicLLM, Message
from darwin_bot.mutation import Attempt, ForkSmoke, MutationContext, mutate_tree, write_tiny_data

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "data" / "faulty_replies" / "cases.jsonl"


class CaseLLM:
    """First the faulty reply, then the case's repair answer for every later prompt."""

    def __init__(self, reply: str, repair: str) -> None:
        self.name = "corpus"
        self.reply, self.repair = reply, repair
        self.heuristic = HeuristicLLM(seed=0)
        self.calls = 0

    def complete(self, messages: list[Message]) -> Completion:
        self.calls += 1
        if self.calls == 1:
            return Completion(self.reply, "corpus")
        if self.repair == "heuristic":
            return self.heuristic.complete(messages)
        return Completion(self.repair, "corpus")


PAPER_GOOD_PER_BAD = 0.625 / 0.375  # DARWIN paper: 37.5% of mutations failed to train


def load_cases(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run(cases: list[dict[str, str]], full_iters: int, cfg: Config) -> dict[str, object]:
    t0 = time.perf_counter()
    tally: Counter[str] = Counter()
    mismatches: list[dict[str, str]] = []
    smoke_iters = cfg.budget.smoke_iters
    broken_iters = total_iters = 0
    with tempfile.TemporaryDirectory(prefix="darwin-bench-") as tmp:
        data = write_tiny_data(Path(tmp) / "data")
        with ForkSmoke(data, iters=smoke_iters) as smoke, ForkSmoke(data, iters=full_iters) as full:
            for n, case in enumerate(cases):
                tree = Path(tmp) / f"case{n}"
                shutil.copytree(
                    ROOT / "seed", tree / "seed", ignore=shutil.ignore_patterns("__pycache__")
                )
                results: list[EvalResult] = []

                def smoke_once(t: Path, results: list[EvalResult] = results) -> EvalResult:
                    results.append(smoke(t))
                    return results[-1]

                commits: list[Attempt] = []
                ctx = MutationContext(f"bench-{n:03d}", 1, ("seed",), None, None, seed=n)
                out = mutate_tree(
                    tree,
                    ctx,
                    CaseLLM(case["reply"], case["repair"]),
                    cfg,
                    commit=lambda a, c=commits: c.append(a) or "sha",  # type: ignore[misc]
                    smoke=smoke_once,
                    only=(case["chunk"],),
                )
                first_validation = out.events[0].outcome == "rejected" if out.events else True
                smoke_failed = [r for r in results if not r.ok]
                caught = "validation" if first_validation else "smoke" if smoke_failed else "none"
                total_iters += smoke_iters * len(results)
                broken_iters += smoke_iters * len(smoke_failed)
                tally[f"caught_by_{caught}"] += 1
                repaired = out.status == "ok" and any(a.kind == "repair" for a in commits)
                tally["repaired"] += repaired
                tally[f"status_{out.status}"] += 1
                full_ok = None
                if out.status == "ok":
                    total_iters += cfg.budget.iters or 0
                    full_ok = full(tree).ok
                    if not full_ok:
                        tally["reached_full_training_broken"] += 1
                        broken_iters += cfg.budget.iters or 0
                got = "latent" if full_ok is False and caught == "none" else caught
                if got != case["expected"]:
                    mismatches.append(
                        {
                            "id": case["id"],
                            "expected": case["expected"],
                            "got": got,
                            "reason": out.reason,
                        }
                    )
                print(
                    f"{case['id']:<22} expected {case['expected']:<10} caught {got:<10} "
                    f"status {out.status:<8} {'repaired' if repaired else ''} {out.reason[:70]}",
                    file=sys.stderr,
                )
    return {
        "cases": len(cases),
        "caught_by_validation": tally["caught_by_validation"],
        "caught_by_smoke": tally["caught_by_smoke"],
        "not_caught": tally["caught_by_none"],
        "repaired": tally["repaired"],
        "ok": tally["status_ok"],
        "rejected": tally["status_rejected"],
        "reached_full_training_broken": tally["reached_full_training_broken"],
        "broken_compute_share": round(broken_iters / total_iters, 4) if total_iters else 0.0,
        # The corpus is all faulty replies. At the paper's failure rate (37.5% of
        # mutations broken) each faulty case stands beside 0.625/0.375 good ones,
        # each costing a smoke test and a full training run.
        "broken_compute_share_at_paper_rate": round(
            broken_iters
            / (
                total_iters
                + len(cases) * PAPER_GOOD_PER_BAD * (smoke_iters + (cfg.budget.iters or 0))
            ),
            4,
        )
        if total_iters
        else 0.0,
        "broken_iterations": broken_iters,
        "total_iterations": total_iters,
        "smoke_iters": smoke_iters,
        "full_training_iters": cfg.budget.iters,
        "verification_iters": full_iters,
        "mismatches": mismatches,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=Path, default=CASES)
    ap.add_argument(
        "--full-iters",
        type=int,
        default=30,
        help="iterations of the verification run of each passing candidate (>= warmup)",
    )
    args = ap.parse_args(argv)
    print(json.dumps(run(load_cases(args.cases), args.full_iters, Config()), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
