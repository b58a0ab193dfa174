"""The propose step: plan the offspring of a generation, mutate each, publish their PRs.

The plan is decided once (``core.generation.plan``) and written to
``memory/gNNN/plan.json``, so a rerun plans the same; each offspring's outcome
is written last, so a crash mid-offspring redoes only that offspring.
"""

from __future__ import annotations

import random

from darwin_bot.config import Config
from darwin_bot.core import EvalResult, Rules, agent_id
from darwin_bot.core import plan as gen_plan
from darwin_bot.engine.evaluating import Evaluations
from darwin_bot.engine.offspring import Breeder
from darwin_bot.engine.ports import Events, Memory, Publisher, Say, derive_seed
from darwin_bot.evaluate import missing_note, split_importable
from darwin_bot.store import History, OffspringRecord, PlanItem, RunState


class Propose:
    """Built from the memory, the run state, the breeder (LLM and evaluator) and the publisher."""

    def __init__(
        self,
        cfg: Config,
        evals: Evaluations,
        memory: Memory,
        history: History,
        run_state: RunState,
        breeder: Breeder,
        *,
        rules: Rules,
        publisher: Publisher | None,
        events: Events,
        say: Say,
    ) -> None:
        self.cfg, self.evals, self.agents = cfg, evals, evals.agents
        self.memory, self.history, self.run_state = memory, history, run_state
        self.breeder, self.rules, self.publisher = breeder, rules, publisher
        self.events, self.say = events, say

    def plan(self, g: int) -> list[PlanItem]:
        """The offspring of generation ``g``: decided and written on first call, read back after."""
        known = self.run_state.plan(g)
        if known is not None:
            return known
        prev = self.history.previous(g)
        pool = [r for r in prev.ranking if r.agent in prev.survivors]
        children = {r.agent: self.history.children(r.agent) for r in pool}
        rng = random.Random(derive_seed(self.cfg.evolution.seed, "plan", g))
        items = [
            PlanItem(
                agent=agent_id(g, p.index),
                index=p.index,
                kind=p.kind,
                parents=tuple(p.parents),
                parent_heads=tuple(self.agents.head(a) for a in p.parents),
            )
            for p in gen_plan(pool, children, self.rules, rng)
        ]
        self.run_state.write_plan(g, items)
        return items

    def human_answers(self, g: int) -> tuple[str, tuple[str, ...]]:
        """The humans' answers as prompt text, and the approved imports agent code can import.

        Approved is not installed: only the humans can install, and an edit that
        imports a missing module only fails its smoke test, so none is made and
        the run says what to do.
        """
        if self.publisher is None:
            return "", ()
        context, granted = self.publisher.request_context()
        extra_imports, missing = split_importable(granted)
        if extra_imports:  # what the humans' approvals changed, said where the user looks
            self.say(
                f"generation {g}: approved requests allow import {', '.join(extra_imports)} "
                "beyond llm.allowed_imports"
            )
        if missing:
            self.say(f"generation {g}: approved import {missing_note(', '.join(missing))}")
            context += f"\nApproved but not installed yet, so not allowed: {', '.join(missing)}.\n"
        return context, extra_imports

    def propose(self, g: int) -> list[OffspringRecord]:
        """Mutate every planned offspring of ``g`` that has no outcome yet; return all outcomes."""
        context, extra_imports = self.human_answers(g)
        baseline = self.evals.baseline_metrics()
        todo = [i for i in self.plan(g) if not self.run_state.offspring_path(g, i.agent).exists()]
        if len(todo) < len(self.plan(g)):  # resumed: say what is kept
            self.say(f"generation {g}: {len(self.plan(g)) - len(todo)} offspring already made")
        self.events.begin(f"generation {g} offspring", len(todo), "agent")
        for item in todo:
            self.breeder.preflight()  # the LLM answers (once), before any offspring is made
            self.say(f"generation {g}: {item.kind} {item.agent} <- {', '.join(item.parents)}")
            made = self.breeder.make(
                g,
                item.to_json(),
                context=context,
                extra_imports=extra_imports,
                baseline=baseline,
                parent_metrics=self.history.metrics_of(item.parents[0]),
            )
            self.run_state.write_offspring(OffspringRecord.from_json(made))
            self.events.offspring(OffspringRecord.from_json(made))
        records = self.run_state.offspring(g)
        return [records[a.agent] for a in self.plan(g)]

    def publish(self, g: int) -> None:
        """Open or update the offspring's PRs and the agents' requests (after the push in CI)."""
        if self.publisher is None:
            return
        records = self.run_state.offspring(g)
        for rec in records.values():
            if rec.ok:
                self.publisher.offspring(rec)
        self.publisher.requests([r for rec in records.values() for r in rec.requests])

    def repair(self, g: int, failures: dict[str, EvalResult]) -> list[str]:
        """Ask the LLM to fix offspring whose full evaluation failed; return the repaired agents."""
        records = self.run_state.offspring(g)
        repaired = []
        for agent, result in sorted(failures.items()):
            rec = records.get(agent)
            if rec is None or not rec.ok or rec.repaired_from or rec.head is None:
                continue  # one repair per offspring per generation
            parent_metrics = self.history.metrics_of(rec.parents[0])
            head = self.breeder.repair(g, rec.to_json(), result, parent_metrics)
            if head is not None:
                fixed = OffspringRecord.from_json(
                    {
                        **rec.to_json(),
                        "head": head,
                        "commits": [*rec.commits, head],
                        "repaired_from": rec.head,
                    }
                )
                self.run_state.write_offspring(fixed)
                repaired.append(agent)
        return repaired
