"""Confirmation at a longer budget before promotion: the runs it needs, and their samples.

With ``budget.confirm_iters`` (or ``confirm_seconds``) set, a leader that
passes the statistical gate at the search budget is only provisional: it and
the seed are run ``confirm_repeats`` times at the confirmation budget (and
``confirm_preset``), and ``core.confirm.promotion`` decides on both. The runs
are cached like every evaluation (a cache key of their own), so a crash in
the middle resumes; in CI they are jobs of the reevaluate matrix
(``"budget": "confirm"``), which ``darwin evaluate --confirm`` runs.
"""

from __future__ import annotations

from typing import Any

from darwin_bot.config import Config
from darwin_bot.core import Confirmation, EvalResult, champion_test, confirm_samples, summarize
from darwin_bot.engine.evaluating import Evaluations
from darwin_bot.engine.ports import SEED_AGENT, Repository, Say
from darwin_bot.store import EvalCache

CONFIRM = "confirm"  # the matrix entries' "budget" of a confirmation run


class Confirm:
    """Confirmation step: the confirmation runs of a provisional champion and the seed."""

    def __init__(self, cfg: Config, repo: Repository, evals: Evaluations, say: Say) -> None:
        self.cfg, self.repo, self.evals, self.say = cfg, repo, evals, say
        self.agents = evals.agents

    def enabled(self) -> bool:
        return self.evals.confirm_spec.budget is not None

    def held_runs(self, head: str) -> list[EvalResult]:
        """``head``'s confirmation runs with the budget held against the seed's at that budget."""
        seed = self.evals.known_runs(self.agents.seed_head(), confirm=True)
        base = summarize(seed).mean_metrics()
        return self.evals.held_runs(head, base.cost if base else None, confirm=True)

    def confirmation(self, g: int, champion: str | None, *, train: bool) -> Confirmation:
        """The confirmation samples of the provisional ``champion`` (None: none passed) and the seed.

        ``train``: run the missing ones first (``darwin run``); only a provisional
        champion is confirmed, so a leader that fails the search gate costs nothing.
        """
        spec = self.evals.confirm_spec
        seeds = self.evals.confirm_seeds()
        if train and champion is not None:
            self.say(
                f"generation {g}: confirming {champion} against the seed at {spec.preset} "
                f"{spec.budget.key() if spec.budget else ''} ({spec.repeats} runs each)"
            )
            heads = (self.agents.head(champion), self.agents.seed_head())
            what = f"generation {g} {champion} and seed"
            self.evals.evaluate_all([(h, s) for h in heads for s in seeds], confirm=True, what=what)
        candidate = {}
        if champion is not None:
            candidate[champion] = confirm_samples(self.held_runs(self.agents.head(champion)))
        baseline = confirm_samples(self.held_runs(self.agents.seed_head()))
        return Confirmation(spec.repeats, candidate, baseline)

    def jobs(self, lead: str) -> list[dict[str, Any]]:
        """CI matrix entries of the confirmation runs ``lead`` and the seed still need.

        Emitted with the leader's search-budget repeats, before the search gate can
        be known, so that confirmation takes no extra round of jobs; skipped when the
        leader's repeats are all in and it already failed the search gate.
        """
        if not self.enabled():
            return []
        head, seed_head = self.agents.head(lead), self.agents.seed_head()
        runs = self.evals.known_runs(head)
        if len(runs) >= self.cfg.budget.repeats:
            search = champion_test(
                [r.metrics.perplexity for r in runs if r.ok and r.metrics],
                [r.metrics.perplexity for r in self.evals.baseline_runs() if r.ok and r.metrics],
                self.cfg.budget.significance,
            )
            if not search.passed:
                return []
        cache = self.evals.cache_at(True)
        out = []
        for agent, at in ((lead, head), (SEED_AGENT, seed_head)):
            tree = self.repo.tree_id(at, self.evals.evolvable)
            for s in self.evals.confirm_seeds():
                if cache.get(tree, s) is None:
                    out.append(
                        {
                            "agent": agent,
                            "branch": self.repo.branch(agent),
                            "head": at,
                            "seed": s,
                            "budget": CONFIRM,
                        }
                    )
        return out

    def cache_for(self, result: EvalResult) -> EvalCache:
        """Where an ingested CI result belongs: the confirmation cache when it was measured there.

        A result is filed by what the trusted harness recorded in it (its preset and
        budget), not by which job asked for it.
        """
        spec = self.evals.confirm_spec
        confirm_run = (
            spec.budget is not None
            and result.budget == spec.budget
            and result.preset == spec.preset
        )
        search_run = result.budget == self.evals.budget and result.preset == self.cfg.budget.preset
        if not (confirm_run or search_run) and result.preset == self.cfg.budget.preset:
            return self.evals.cache_at(False, result.budget)  # a schedule rung's run: its own key
        return self.evals.cache_at(confirm_run and not search_run)
