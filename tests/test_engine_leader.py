"""A leader whose repeats undo its lucky first run hands the gate to the next leader, confirmed.

Seen in the evolution benchmark: generation 2's leader (one run) was repeated, its mean
fell behind another offspring's single run, and the gate then refused that new leader
for want of repeats, so a 14 % gain with three runs behind it promoted nothing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from darwin_bot.core.results import Budget, EvalResult, Metrics
from darwin_bot.engine.ports import Progress
from tests.test_engine import _files_hash
from tests.test_engine_confirm import _cfg, _engine, _seed_hash, scratch  # noqa: F401


class LuckyFirstRun:
    """The seed at 13; the first offspring tree evaluated scores 9 on its first run and 12.5
    on every later one; every other offspring 10.5 (spread by tree, far below the gap)."""

    version = "fake-1"

    def __init__(self, seed_hash: str) -> None:
        self.seed_hash = seed_hash
        self.lucky: str | None = None
        self.runs: Counter[str] = Counter()

    def __call__(
        self, tree: Path, *, seed: int, smoke: bool = False, budget: Budget | None = None,
        preset: str | None = None,
    ) -> EvalResult:  # fmt: skip
        digest = _files_hash(tree)
        if smoke:
            return EvalResult("ok", "", None, "cpu", seed, Budget(iters=2), self.version, digest)
        if digest == self.seed_hash:
            ppl = 13.0
        else:
            self.lucky = self.lucky or digest
            ppl = 10.5 + 0.05 * int(digest[:4], 16) / 0xFFFF
            if digest == self.lucky:
                ppl = 9.0 if self.runs[digest] == 0 else 12.5
        self.runs[digest] += 1
        m = Metrics(val_loss=2.3, perplexity=ppl + 0.001 * seed, mfu=0.1, tokens_per_s=1e3,
                    train_seconds=1.0, peak_mem_mb=10.0, train_wall_s=1.0)  # fmt: skip
        return EvalResult("ok", "", m, "cpu", seed, budget or Budget(iters=10), self.version,
                          digest[:16])  # fmt: skip


def test_a_leader_undone_by_its_repeats_passes_the_gate_to_the_next_confirmed_one(
    scratch,
    capsys,  # noqa: F811
) -> None:
    root = scratch()
    ev = LuckyFirstRun(_seed_hash(root))
    engine = _engine(root, _cfg(confirm=False), ev, progress=Progress(enabled=True))
    [summary] = engine.run(1)
    confirming = [line for line in capsys.readouterr().err.splitlines() if "confirming" in line]
    assert len(confirming) == 2, confirming  # the lucky leader, then the one that overtook it
    assert summary.gate is not None and summary.gate.passed, summary.gate
    assert summary.gate.result.n_candidate == 3 and summary.new_champion == summary.leader
    lucky_agent = confirming[0].split("confirming leader ")[1].split()[0]
    assert summary.new_champion != lucky_agent
    assert ev.runs[ev.lucky or ""] == 3  # the lucky one was repeated, and lost its lead
