"""The seed follows the user's commits.

``darwin/seed`` is the baseline, made once from the head of the checked-out
branch. When the user commits a change to the evolvable files on that branch
(a seed that did not train, fixed; a new idea), ``darwin run`` sees that the
branch's evolvable tree differs from ``darwin/seed``'s and takes the commit as
the seed:

* no baseline recorded yet (the seed never trained): ``darwin/seed`` moves to
  the commit, and generation 0 measures it;
* an evolution exists: a *re-baseline*. The old seed's head is kept under
  ``refs/darwin/archive/seed-gNNN`` (NNN: the last generation measured against
  it), ``darwin/seed`` moves, and the new seed is measured ``budget.repeats``
  times and recorded as generation NNN+1, whose only survivor is the seed, so
  the next generations breed from it. The generations before, their agents'
  branches and their memory are left as they were.

A generation planned on the old seed and not finished is finished first; the
re-baseline then waits for the next run, which says so. The archive ref is
written before the branch moves, so a run killed in between re-baselines
again when started again (the ref marks the pending re-baseline).

Only commits are the seed: an uncommitted edit to an evolvable file is a
warning, never trained.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from darwin_bot.config import Config
from darwin_bot.core import Row, rank, summarize
from darwin_bot.engine.evaluating import Evaluations
from darwin_bot.engine.ports import SEED_AGENT, Repository, Say
from darwin_bot.errors import SeedDoesNotTrain
from darwin_bot.store import GenerationSummary, History, RunState

ARCHIVE_REFS = "refs/darwin/archive/"


@dataclass(frozen=True)
class SeedChange:
    """The checked-out branch's evolvable tree is not ``darwin/seed``'s."""

    branch: str  # the branch the seed is taken from
    old: str  # darwin/seed's commit
    new: str  # the branch's head


def archive_name(generation: int) -> str:
    """The archived old seed, measured up to ``generation`` (an agent-like name, not an agent)."""
    return f"seed-g{generation:03d}"


class Reseed:
    """The seed follows the user's commits: a moved seed is measured again as its own generation."""

    def __init__(
        self,
        cfg: Config,
        repo: Repository,
        evals: Evaluations,
        history: History,
        run_state: RunState,
        say: Say,
    ) -> None:
        self.cfg, self.repo, self.evals, self.history = cfg, repo, evals, history
        self.run_state, self.say = run_state, say

    def seed_change(self) -> SeedChange | None:
        """What moved since ``darwin/seed`` was made; None when the seed is the branch's tree."""
        repo = self.repo
        # the seed's branch, or its archived head once selection culled it
        old = repo.rev(repo.branch(SEED_AGENT)) or repo.archived(SEED_AGENT)
        branch = repo.default_branch()
        new = repo.rev(branch)
        if old is None or new is None or old == new or branch.startswith(repo.prefix):
            return None  # an agent's branch checked out (to look at it) never becomes the seed
        if repo.tree_id(old, self.evals.evolvable) == repo.tree_id(new, self.evals.evolvable):
            return None
        return SeedChange(branch, old, new)

    def warn_uncommitted(self) -> list[str]:
        """Say which evolvable files have uncommitted changes (they are not the seed); return them."""
        out = self.repo.git(
            "status", "--porcelain", "--untracked-files=all", "--", *self.cfg.evolution.evolvable
        )
        files = [line[3:].strip('"') for line in out.splitlines() if line.strip()]
        if files:
            shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
            self.say(
                f"warning: uncommitted changes to {shown} are not part of the seed; "
                "commit them for a run to evolve them"
            )
        return files

    def before_baseline(self) -> None:
        """Without a recorded baseline, a committed change simply becomes the seed."""
        if self.history.summary(0) is not None:
            return
        change = self.seed_change()
        if change is None:
            return
        self.say(
            f"the seed is now {change.new[:10]} (your commit on {change.branch}); "
            f"darwin/seed was {change.old[:10]}, which has no baseline: measuring the new one"
        )
        self.repo.set_branch(SEED_AGENT, change.new)

    def rebaseline(self, last: int) -> GenerationSummary | None:
        """Re-baseline as generation ``last + 1`` if the user committed a new seed (see above).

        None when nothing changed, or when generation ``last + 1`` was already planned on
        the old seed (it is finished first; the run says the re-baseline waits).
        """
        repo = self.repo
        archive = archive_name(last)
        pending = repo.archived(archive)  # set: a re-baseline was started and not recorded
        change = self.seed_change()
        if change is None and pending is None:
            return None
        g = last + 1
        if self.run_state.plan_path(g).exists():
            self.say(
                f"your branch's seed differs from darwin/seed; generation {g} was started on the "
                "old seed and is finished first: the next 'darwin run' re-baselines on yours"
            )
            return None
        old = pending or (change.old if change else None)
        if pending is None and change is not None:
            repo.git("update-ref", f"{ARCHIVE_REFS}{archive}", change.old)
        if change is not None:
            self.say(
                f"generation {g}: the seed changed on {change.branch} ({change.old[:10]} -> "
                f"{change.new[:10]}): re-baselining. The old seed is kept as "
                f"{ARCHIVE_REFS}{archive}; generations 0-{last} and their agents stay as they are"
            )
            repo.set_branch(SEED_AGENT, change.new)
        new = repo.rev(repo.branch(SEED_AGENT))
        assert old is not None and new is not None  # the archive and the branch were just set
        moved = {"from": old, "to": new, "archived_as": f"{ARCHIVE_REFS}{archive}"}
        return self.record_seed(g, reseeded=moved)

    def record_seed(self, g: int, *, reseeded: dict[str, str] | None = None) -> GenerationSummary:
        """Measure ``darwin/seed`` ``budget.repeats`` times and record it alone as generation ``g``."""
        started = time.monotonic()
        self.evals.use_windows(g)
        seed_ref = self.repo.branch(SEED_AGENT)
        seeds = self.evals.seeds(self.cfg.budget.repeats)
        self.say(f"generation {g}: evaluating the seed {len(seeds)}x to measure the noise floor")
        self.evals.evaluate_all([(seed_ref, s) for s in seeds])
        runs = self.evals.runs(seed_ref, seeds)
        if summarize(runs).mean_metrics() is None:
            reasons = "; ".join(f"{r.status}: {r.reason}" for r in runs if not r.ok)
            raise SeedDoesNotTrain(
                f"the seed itself does not train ({reasons[:400]}); fix it (try 'darwin evaluate "
                ". --iters 20'), commit, and run again: the next run takes your commit as the seed"
            )
        base = self.evals.baseline_record()
        row = Row(SEED_AGENT, 0, (), fitness=0.0, metrics=base.mean, n_runs=base.n)
        summary = GenerationSummary(
            generation=g,
            ranking=tuple(rank([row])),
            survivors=(SEED_AGENT,),
            culled=(),
            leader=SEED_AGENT,
            baseline=base,
            timings={"wall_s": round(time.monotonic() - started, 3)},
            tokens={"prompt": 0, "completion": 0},
            data=self.cfg.budget.data,
            reseeded=reseeded,
        )
        self.history.write(summary)
        return summary
