"""Selection of one generation as a journal: decide the whole outcome, write it, then carry it out.

``decide`` gathers the rows (training what ``darwin run`` may still train),
confirms the leader with repeats (and, with ``budget.confirm_*``, at the
confirmation budget: ``confirming``), and asks ``core.generation.select`` for
keep, cull and champion. The outcome goes to ``memory/gNNN/selection.json`` (state
``decided``) before anything changes; ``carry_out`` then archives and deletes
the culled branches, records the mutation metrics and the summary (state
``recorded``) and publishes (state ``published``). A run killed anywhere in
between finishes the written plan on its rerun instead of deciding again from
whatever branches are left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from darwin_bot.config import Config
from darwin_bot.core import (
    Confirmation,
    Metrics,
    Previous,
    Row,
    Rules,
    Selection,
    Status,
    gate_fallback,
    leader,
    rank,
)
from darwin_bot.core import select as gen_select
from darwin_bot.engine import rows, rungs
from darwin_bot.engine.confirming import Confirm
from darwin_bot.engine.evaluating import Evaluations
from darwin_bot.engine.ports import SEED_AGENT, Publisher, Repository, Say
from darwin_bot.store import GenerationSummary, History, JournalState, RunState, SelectionJournal


class Select:
    """The select step: rank, gate, confirm, cull and record one generation, as a journal."""

    def __init__(
        self,
        cfg: Config,
        repo: Repository,
        evals: Evaluations,
        history: History,
        run_state: RunState,
        *,
        rules: Rules,
        publisher: Publisher | None,
        llm_factory: Callable[[int], Any],
        say: Say,
    ) -> None:
        self.cfg, self.repo, self.evals, self.agents = cfg, repo, evals, evals.agents
        self.history, self.memory, self.run_state = history, history.memory, run_state
        self.rules, self.publisher, self.llm_factory, self.say = rules, publisher, llm_factory, say
        self.confirm = Confirm(cfg, repo, evals, say)

    def previous(self, g: int) -> GenerationSummary:
        return self.history.previous(g)

    def gate_samples(
        self, ranked: list[Row], baseline: Metrics, tiers: dict[str, int] | None = None
    ) -> dict[str, list[float]]:
        """Each working row's perplexity per run, budget held: what the gate compares.

        ``tiers`` (a search schedule's rungs): the runs at the leader's rung, of
        the rows that reached it; no other rung is compared with the seed's runs there.
        """
        if not tiers:
            return {
                r.agent: rows.perplexities(
                    self.evals.held_runs(self.agents.head(r.agent), baseline.cost)
                )
                for r in ranked
                if r.ok
            }
        top = gate_rung(ranked, tiers)
        base = rungs.baseline_at(self.evals, top, baseline)
        return {
            r.agent: rows.perplexities(
                rungs.held_runs(self.evals, self.agents.head(r.agent), top, base)
            )
            for r in ranked
            if r.ok and tiers.get(r.agent, 0) == top
        }

    def standing(self, ranked: list[Row], baseline: Metrics) -> dict[str, int]:
        """The schedule's rung of each ranked agent that has a branch (empty: a flat schedule)."""
        agents = [r.agent for r in ranked if r.status is not Status.REJECTED]
        return rungs.standing(self.evals, agents, baseline)

    def alive(self, g: int) -> list[str]:
        """The agents ``g`` ranks: the previous survivors, then the offspring that passed."""
        records = self.run_state.offspring(g)
        return list(self.previous(g).survivors) + [a for a, r in records.items() if r.ok]

    def candidates(self, g: int, baseline: Metrics, *, train: bool) -> list[Row]:
        """Rows of the previous survivors and this generation's offspring, ranked.

        ``train``: evaluate (first seed) a candidate that has no run yet; otherwise
        it ranks as "not evaluated". Offspring rejected at mutation rank last.
        """
        records = self.run_state.offspring(g)
        alive = self.alive(g)
        if train:
            first = [(self.agents.head(a), self.cfg.evolution.seed) for a in alive]
            self.evals.evaluate_all(first, what=f"generation {g} survivors and offspring")
            rungs.train(self.evals, g, alive, baseline)  # a flat schedule has none
        tier = rungs.standing(self.evals, alive, baseline)
        out = []
        for agent in alive:
            rec = records.get(agent)
            first = None if rec else self.history.rows(agent)[0]
            born = rec.generation if rec else first.generation  # type: ignore[union-attr]
            parents = rec.parents if rec else first.parents  # type: ignore[union-attr]
            rung = tier.get(agent, 0)
            base = (rungs.baseline_at(self.evals, rung, baseline) if rung else None) or baseline
            runs = rungs.held_runs(self.evals, self.agents.head(agent), rung, base)
            out.append(rows.scored_row(agent, born, parents, runs, base, self.cfg.fitness))
        for agent, rec in records.items():
            if not rec.ok:
                out.append(Row(agent, g, rec.parents, status=Status.REJECTED, reason=rec.reason))
        return rank(out, tier)

    def _lead_now(self, g: int) -> tuple[Metrics, list[Row], Row | None]:
        """The baseline, the ranked rows of ``g`` on the runs known now, and the leader (not the seed)."""
        baseline = self.evals.baseline_metrics()
        ranked = self.candidates(g, baseline, train=False)
        lead = leader(ranked)
        return baseline, ranked, lead if lead is not None and lead.agent != SEED_AGENT else None

    def provisional_leader(self, g: int) -> str | None:
        """The agent that would lead ``g`` on the runs known now (None: the seed or nobody)."""
        lead = self._lead_now(g)[2]
        return lead.agent if lead is not None else None

    def leader_rung(self, g: int) -> int:
        """The rung the gate would compare at on the runs known now (0: a flat schedule)."""
        baseline, ranked, _ = self._lead_now(g)
        return gate_rung(ranked, self.standing(ranked, baseline))

    def leader_and_fallback(self, g: int) -> tuple[str | None, str | None]:
        """The provisional leader, and the agent the gate tests instead if its repeats drop it.

        The second is None when that would be the leader itself
        (``core.generation.gate_fallback``).
        """
        baseline, ranked, lead = self._lead_now(g)
        if lead is None:
            return None, None
        prev = self.previous(g)
        backup = gate_fallback(
            ranked,
            lead,
            self.gate_samples(ranked, baseline),
            Previous(prev.survivors, prev.champion),
            self.rules,
        )
        return lead.agent, backup.agent if backup is not None else None

    def decide(self, g: int, *, confirm: bool) -> SelectionJournal:
        """The whole outcome of ``g``: trains what is missing when ``confirm``, changes no state."""
        started = time.monotonic()
        prev = self.previous(g)
        data = self.cfg.budget.data
        if prev.data is not None and prev.data != data:
            self.say(
                f"generation {g}: the corpus is now {data} (was {prev.data}): the seed and the "
                "survivors are measured again on it before anything is compared"
            )
        baseline = self.evals.baseline_metrics()
        repeats = self.evals.seeds(self.cfg.budget.repeats)
        handled: list[str] = []
        pub = self.publisher
        if confirm and pub is not None and pub.controls().get("reevaluate"):
            # The dashboard asked to re-evaluate the top agents: give every survivor full repeats.
            self.evals.evaluate_all(
                [(self.agents.head(a), s) for a in prev.survivors for s in repeats]
            )
            pub.handled("reevaluate")
            handled.append("reevaluate")
        ranked = self.candidates(g, baseline, train=confirm)
        lead = leader(ranked)
        if confirm and lead is not None and lead.agent != SEED_AGENT:
            self.say(f"generation {g}: confirming leader {lead.agent} with repeated runs")
            at = rungs.budget_at(self.evals, gate_rung(ranked, self.standing(ranked, baseline)))
            self.evals.evaluate_all(
                [(self.agents.head(lead.agent), s) for s in repeats],
                what=f"generation {g} leader",
                budget=at,
            )
            ranked = self.candidates(g, baseline, train=False)
        outcome = self.choose(g, ranked, baseline, prev, train=confirm)
        records = self.run_state.offspring(g).values()
        summary = GenerationSummary(
            generation=g,
            ranking=outcome.ranking,
            survivors=outcome.keep,
            culled=outcome.cull,
            champion=outcome.champion or prev.champion,
            new_champion=outcome.champion,
            leader=outcome.leader,
            gate=outcome.gate,
            baseline=self.evals.baseline_record(),
            timings={"select_s": round(time.monotonic() - started, 3)},
            **self.spent(g, records),
            promotion=outcome.promotion,
            data=data,
        )
        return SelectionJournal(g, JournalState.DECIDED, summary, tuple(handled))

    def spent(self, g: int, records: Any) -> dict[str, Any]:
        """The generation's tokens and cost: every call the spend ledger billed to ``g`` (failed,
        cut and repaired replies and the preflight included), else the offspring records' sum."""
        totals = getattr(self.llm_factory, "totals", None)
        t = totals(g) if totals is not None else None
        if t is not None and t.calls:
            tokens = {"prompt": t.prompt_tokens, "completion": t.completion_tokens}
            return {"tokens": tokens, "cost_usd": round(t.usd, 6)}
        return {
            "tokens": {
                "prompt": sum(r.prompt_tokens for r in records),
                "completion": sum(r.completion_tokens for r in records),
            },
            "cost_usd": round(sum(r.cost_usd for r in records), 6),
        }

    def choose(
        self,
        g: int,
        ranked: list[Row],
        baseline: Metrics,
        prev: GenerationSummary,
        *,
        train: bool,
    ) -> Selection:
        """``core.generation.select`` on the known runs; with a confirmation budget, twice.

        The first pass names the provisional champion (the leader past the search
        gate); only it and the seed are confirmed (trained when ``train``), and the
        second pass decides with those samples. A leader not promoted is one line
        of output saying why.
        """
        tiers = self.standing(ranked, baseline)
        samples = self.gate_samples(ranked, baseline, tiers)
        alive = frozenset(r.agent for r in ranked if self.repo.rev(self.repo.branch(r.agent)))
        seed_runs = rungs.seed_runs(self.evals, gate_rung(ranked, tiers))  # the gate's rung

        def pick(confirmation: Confirmation | None = None) -> Selection:
            return gen_select(
                ranked,
                baseline=rows.perplexities(seed_runs),
                samples=samples,
                previous=Previous(prev.survivors, prev.champion),
                alive=alive,
                rules=self.rules,
                confirm=confirmation,
                tiers=tiers,
            )

        outcome = pick()
        if not self.confirm.enabled() or outcome.gate is None:
            return outcome
        lead = outcome.gate.agent
        outcome = pick(self.confirm.confirmation(g, outcome.champion, train=train))
        promo = outcome.promotion
        if promo is not None and not promo.promote:
            self.say(f"generation {g}: {lead} is not promoted: {promo.reason}")
        return outcome

    def parent_fitness(self, summary: GenerationSummary, parent: str) -> float | None:
        """The parent's fitness as measured alongside its child: its row in this generation.

        A survivor ranks again in every generation, on the same baseline and corpus
        as its offspring; only a parent without a working row here (culled, or it
        failed now) falls back to its last recorded one.
        """
        row = summary.row(parent)
        if row is not None and row.ok:
            return float(row.fitness)
        return self.history.fitness_of(parent)

    def carry_out(self, journal: SelectionJournal) -> GenerationSummary:
        """Do what ``journal`` decided, from the step it reached; each step is idempotent."""
        summary, g = journal.summary, journal.generation
        records = self.run_state.offspring(g)
        if journal.state is JournalState.DECIDED:
            for agent in summary.culled:
                self.repo.delete_branch(self.repo.branch(agent), archive_as=agent)
            updates = {}
            for r in summary.ranking:
                rec = records.get(r.agent)
                if rec is not None and rec.ok:
                    parent_fit = self.parent_fitness(summary, rec.parents[0])
                    ok = parent_fit is not None and r.status is Status.OK
                    updates[r.agent] = (r.metrics, r.fitness - parent_fit if ok else None)  # type: ignore[operator]
            self.memory.update_generation_metrics(g, updates)
            self.history.write(summary)
            journal = replace(journal, state=JournalState.RECORDED)
            self.run_state.write_journal(journal)
        if journal.state is JournalState.RECORDED:
            if self.publisher is not None:
                for action in journal.handled:
                    self.publisher.handled(action)
                self.publisher.selected(summary, records)
            self.run_state.write_journal(replace(journal, state=JournalState.PUBLISHED))
        return summary

    def select(self, g: int, *, confirm: bool) -> GenerationSummary:
        """Decide (once) and carry out the selection of ``g``; a finished one is returned as is."""
        done = self.history.summary(g)
        journal = self.run_state.journal(g)
        if done is not None and (journal is None or journal.state is JournalState.PUBLISHED):
            return done
        if journal is None:
            journal = self.decide(g, confirm=confirm)
            self.run_state.write_journal(journal)
        return self.carry_out(journal)


def gate_rung(ranked: list[Row], tiers: dict[str, int]) -> int:
    """The rung the gate compares at: the leader's (0 when nothing works)."""
    lead = leader(ranked)
    return tiers.get(lead.agent, 0) if lead is not None else 0
