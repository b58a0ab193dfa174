"""Making offspring: mutate (or cross over) a parent in a worktree, commit, smoke-test, repair.

The :class:`Breeder` turns one planned offspring into commits on its branch
and mutation records in memory; it never decides who breeds (that is
``core.selection``) and never scores (that is the evaluator).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from darwin_bot.config import Config
from darwin_bot.core.agent import Mutation
from darwin_bot.core.results import EvalResult, Metrics
from darwin_bot.engine.ports import Evaluator, derive_seed
from darwin_bot.gitrepo import GitRepo, format_message
from darwin_bot.memory import MemoryStore, utc_now


class Breeder:
    """One offspring at a time, from plan item to commits and memory records."""

    def __init__(
        self,
        repo: GitRepo,
        cfg: Config,
        memory: MemoryStore,
        evaluator: Evaluator,
        llm_factory: Callable[[int], Any],
    ) -> None:
        self.repo = repo
        self.cfg = cfg
        self.memory = memory
        self.evaluator = evaluator
        self.llm_factory = llm_factory
        self.evolvable = cfg.evolution.evolvable

    def _committer(
        self,
        wt: Path,
        agent: str,
        g: int,
        parents: tuple[str, ...],
        heads: list[str],
        note: str = "",
    ) -> Callable[[Any], str]:
        """The pipeline's ``commit`` callback: one bot commit with trailers per attempt."""

        def commit(attempt: Any) -> str:
            trailers = Mutation(
                sha="",
                agent=agent,
                generation=g,
                parents=parents,
                kind=attempt.kind,
                summary=attempt.summary,
                model=attempt.model,
                prompt_tokens=attempt.prompt_tokens,
                completion_tokens=attempt.completion_tokens,
            ).trailers()
            body = "\n".join(
                f"- {c.file}::{c.chunk}: {c.summary}"
                + (f"\n  Why: {c.rationale}" if c.rationale else "")
                for c in attempt.changes
            )
            message = format_message(
                attempt.summary, "\n\n".join(filter(None, [body, note])), trailers
            )
            sha = self.repo.commit_worktree(wt, message, allowed=self.evolvable)
            heads.append(sha)
            return sha

        return commit

    def _smoke(self, seed: int) -> Callable[[Path], EvalResult]:
        return lambda tree: self.evaluator(tree, seed=seed, smoke=True)

    def make(
        self,
        g: int,
        item: dict[str, Any],
        *,
        digest: str,
        context: str,
        extra_imports: tuple[str, ...],
        baseline: Metrics,
        parent_metrics: Metrics | None,
    ) -> dict[str, Any]:
        """Mutate ``item``'s parent into ``<prefix><agent>``; return the offspring record."""
        from darwin_bot.mutation import MutationContext, mutate_tree

        agent, parents = item["agent"], tuple(item["parents"])
        # A rerun after a crash mid-offspring starts this offspring over.
        self.repo.delete_branch(self.repo.branch(agent))
        ctx = MutationContext(
            agent=agent,
            generation=g,
            parents=parents,
            parent_metrics=parent_metrics,
            baseline_metrics=baseline,
            memory_digest=digest,
            requests_context=context,
            extra_imports=extra_imports,
            seed=derive_seed(self.cfg.evolution.seed, "mutate", agent),
        )
        heads: list[str] = []
        with self.repo.worktree(item["parent_heads"][0]) as wt:
            if item["kind"] == "crossover":
                heads.append(self._crossover(wt, item, g))
            outcome = mutate_tree(
                wt,
                ctx,
                self.llm_factory(ctx.seed),
                self.cfg,
                commit=self._committer(wt, agent, g, parents, heads),
                smoke=self._smoke(ctx.seed),
            )
        head = heads[-1] if heads and outcome.status == "ok" else None
        if head is not None:
            self.repo.set_branch(agent, head)
        self._record(agent, g, parents, outcome.events, head, parent_metrics, prefix="")
        return {
            "agent": agent,
            "generation": g,
            "kind": item["kind"],
            "parents": list(parents),
            "status": outcome.status,
            "reason": outcome.reason,
            "head": head,
            "commits": heads if head else [],
            "summary": outcome.attempts[0].summary if outcome.attempts else "",
            "model": outcome.attempts[-1].model if outcome.attempts else "",
            "prompt_tokens": sum(a.prompt_tokens for a in outcome.attempts),
            "completion_tokens": sum(a.completion_tokens for a in outcome.attempts),
            "cost_usd": round(sum(a.cost_usd for a in outcome.attempts), 6),
            "requests": [
                {
                    "kind": r.kind,
                    "title": r.title,
                    "rationale": r.rationale,
                    "agent": agent,
                    "generation": g,
                }
                for a in outcome.attempts
                for r in a.requests
            ],
        }

    def _record(
        self,
        agent: str,
        g: int,
        parents: tuple[str, ...],
        events: Any,
        head: str | None,
        parent_metrics: Metrics | None,
        prefix: str,
    ) -> None:
        for n, ev in enumerate(events):
            self.memory.write_mutation(
                {
                    "id": f"{agent}-{prefix}{n:02d}",
                    "timestamp": utc_now(),
                    "agent": agent,
                    "generation": g,
                    "parents": list(parents),
                    "file": ev.file,
                    "chunk": ev.chunk,
                    "summary": ev.summary,
                    "model": ev.model,
                    "prompt_tokens": ev.prompt_tokens,
                    "completion_tokens": ev.completion_tokens,
                    "cost_usd": ev.cost_usd,
                    "commit": head or "",
                    "kind": ev.kind,
                    "outcome": ev.outcome,
                    "reason": ev.reason,
                    "metrics_before": parent_metrics.to_dict() if parent_metrics else None,
                    "metrics_after": None,
                    "fitness_delta": None,
                }
            )

    def _crossover(self, wt: Path, item: dict[str, Any], g: int) -> str:
        """Chunk-wise recombination of two parents as a two-parent merge commit."""
        from darwin_bot.mutation.crossover import recombine

        rng = random.Random(derive_seed(self.cfg.evolution.seed, "crossover", item["agent"]))
        with tempfile.TemporaryDirectory(prefix="darwin-xo-") as tmp:
            self.repo.export(item["parent_heads"][1], self.evolvable, Path(tmp))
            summary = recombine(wt, Path(tmp), self.evolvable, rng)
        trailers = Mutation(
            sha="",
            agent=item["agent"],
            generation=g,
            parents=tuple(item["parents"]),
            kind="crossover",
            summary=summary,
        ).trailers()
        sha = self.repo.merge_commit(
            item["parent_heads"], wt, format_message(f"crossover: {summary}", "", trailers)
        )
        self.repo.git("-C", str(wt), "reset", "-q", "--soft", sha)
        return sha

    def repair(
        self, g: int, rec: dict[str, Any], result: EvalResult, parent_metrics: Metrics | None
    ) -> str | None:
        """Ask the LLM to fix an offspring whose full evaluation failed; the new head, or None."""
        from darwin_bot.mutation import MutationContext, repair_tree

        agent, parents = rec["agent"], tuple(rec["parents"])
        ctx = MutationContext(
            agent=agent,
            generation=g,
            parents=parents,
            parent_metrics=parent_metrics,
            baseline_metrics=None,
            seed=derive_seed(self.cfg.evolution.seed, "repair", agent),
        )
        heads: list[str] = []
        with self.repo.worktree(rec["head"]) as wt:
            outcome = repair_tree(
                wt,
                ctx,
                self.llm_factory(ctx.seed),
                self.cfg,
                f"{result.status}: {result.reason}\n{result.log_tail[-3000:]}",
                commit=self._committer(wt, agent, g, parents, heads, note=result.reason),
                smoke=self._smoke(ctx.seed),
            )
        head = heads[-1] if heads and outcome.status == "ok" else None
        self._record(agent, g, parents, outcome.events, head, parent_metrics, prefix="r")
        if head is not None:
            self.repo.set_branch(agent, head)
        return head
