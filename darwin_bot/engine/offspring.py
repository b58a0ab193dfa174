"""Making offspring: mutate (or cross over) a parent in a worktree, commit, smoke-test, repair.

The :class:`Breeder` turns one planned offspring into commits on its branch
and mutation records in memory; it never decides who breeds (that is
``core.selection``) and never scores (that is the evaluator).

It also hands the mutator the memory: as typed evidence
(:func:`darwin_bot.llm.evidence.from_memory`, read once per
generation) for the offline mutator, and as a digest that leads with the same
evidence for an LLM. And it refuses duplicate work: an offspring whose
normalised change equals a sibling's or a known agent's is re-drawn (with
another seed, :data:`REDRAWS` times) before anything is smoke-tested or
trained, and the memory records each dropped draw as ``duplicate``.

An LLM outage is not a verdict on an offspring: a server that stops answering
(timeouts, refused connections, 429 or 5xx after the client's retries) or
refuses the key mid-generation raises ``RunStopped``. The offspring gets no
record, so it stays pending and the next run makes it again; the calls already
made stay in the spend ledger.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from darwin_bot.config import Config
from darwin_bot.core import (
    EvalResult,
    Metrics,
    Mutation,
    MutationKind,
    Outcome,
    SmokeResult,
    Status,
)
from darwin_bot.engine.ports import Evaluator, derive_seed
from darwin_bot.errors import LLMAuthError, LLMTransientError, RunStopped
from darwin_bot.git import GitRepo, format_message
from darwin_bot.llm import CHARS_PER_TOKEN, Evidence, Guidance, evidence_digest, from_memory
from darwin_bot.mutation import (
    MutationContext,
    MutationOutcome,
    mutate_tree,
    repair_tree,
)
from darwin_bot.store import MemoryStore, MutationEdit, MutationRecord, utc_now

REDRAWS = 2  # new draws for an offspring whose change is a duplicate
EVIDENCE_SHARE = 0.5  # of memory.digest_tokens, for the evidence table at the digest's head


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
        self.use_memory = True  # False withholds the memory from the mutator (the ablation)
        self._evidence: tuple[int, Evidence] | None = None  # (generation, evidence)
        self._seen: dict[str, str] = {}  # change signature -> agent, this generation's
        self._checked = False  # the LLM preflight call was made

    def preflight(self) -> None:
        """Check once that the LLM answers, before any offspring is made (see ``spend``)."""
        check = getattr(self.llm_factory, "preflight", None)
        if check is not None and not self._checked:
            check()
        self._checked = True

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

    def _smoke(self, seed: int) -> Callable[[Path], SmokeResult]:
        return lambda tree: self.evaluator(tree, seed=seed, smoke=True)

    def evidence(self, g: int) -> Evidence:
        """The memory as evidence, read once per generation (siblings are tracked in memory here)."""
        if self._evidence is None or self._evidence[0] != g:
            fw = self.cfg.fitness
            weights = (fw.perplexity_weight, fw.mfu_weight)
            self._evidence = (g, from_memory(self.memory, weights))
            self._seen = {}
        return self._evidence[1]

    def _digest(self, g: int) -> str:
        """The LLM's digest: the evidence table first, then the per-mutation lines, in budget."""
        if not self.use_memory:
            return ""
        budget = int(self.cfg.memory.digest_tokens * CHARS_PER_TOKEN)  # tokens, counted safe
        table = evidence_digest(self.evidence(g), int(budget * EVIDENCE_SHARE))
        records = self.memory.digest(0, max_chars=budget - len(table) - 2)
        return "\n\n".join(x for x in (table, records) if x)

    def _screen(self, g: int, agent: str) -> Callable[[str], str]:
        """The pipeline's duplicate check: why ``agent``'s change is known already ('' if new)."""
        known = self.evidence(g).changes

        def screen(change: str) -> str:
            other = self._seen.get(change) or known.get(change)
            if not change or other is None or other == agent:
                return ""
            return (
                f"duplicate: the same normalised change as {other} (change {change}); not trained"
            )

        return screen

    def make(
        self,
        g: int,
        item: dict[str, Any],
        *,
        context: str,
        extra_imports: tuple[str, ...],
        baseline: Metrics,
        parent_metrics: Metrics | None,
    ) -> dict[str, Any]:
        """Mutate ``item``'s parent into ``<prefix><agent>``; return the offspring record."""
        agent, parents = item["agent"], tuple(item["parents"])
        seed = derive_seed(self.cfg.evolution.seed, "mutate", agent)
        guidance = Guidance(
            agent,
            parents[0],
            g,
            self.evidence(g),
            use_memory=self.use_memory,
            other_parents=parents[1:],
        )
        ctx = MutationContext(
            agent=agent,
            generation=g,
            parents=parents,
            parent_metrics=parent_metrics,
            baseline_metrics=baseline,
            memory_digest=self._digest(g),
            requests_context=context,
            extra_imports=extra_imports,
            seed=seed,
            guidance=guidance if self.use_memory else None,
        )
        spent: list[Any] = []  # the events of dropped draws: their calls were spent too
        for draw in range(REDRAWS + 1):
            draw_seed = seed if draw == 0 else derive_seed(seed, "redraw", draw)
            ctx = dataclasses.replace(ctx, seed=draw_seed)
            outcome, heads = self._draw(g, item, ctx)
            if outcome.status is not Outcome.DUPLICATE:
                break
            spent += outcome.events
            self._record(agent, g, parents, outcome, None, parent_metrics, prefix=f"d{draw}")
        if outcome.status is Outcome.APPLIED and not outcome.change:
            outcome = dataclasses.replace(
                outcome,
                status=Outcome.REJECTED,
                reason="the repairs went back to the parent: nothing new to train",
            )
        head = heads[-1] if heads and outcome.status is Outcome.APPLIED else None
        if head is not None:
            self.repo.set_branch(agent, head)
            if outcome.change:
                self._seen.setdefault(outcome.change, agent)
        if outcome.status is not Outcome.DUPLICATE:
            self._record(agent, g, parents, outcome, head, parent_metrics, prefix="")
        return {
            **_offspring_record(item, g, outcome, head, heads, spent),
            "granted_imports": list(extra_imports),
        }

    def _draw(
        self, g: int, item: dict[str, Any], ctx: MutationContext
    ) -> tuple[MutationOutcome, list[str]]:
        """One try at the offspring in a fresh worktree of its parent: (outcome, commits made)."""
        # A rerun after a crash mid-offspring (or a re-draw) starts this offspring over.
        self.repo.delete_branch(self.repo.branch(ctx.agent))
        heads: list[str] = []
        with _stops_on_outage(ctx.agent), self.repo.worktree(item["parent_heads"][0]) as wt:
            if item["kind"] == "crossover":
                heads.append(self._crossover(wt, item, g))
            outcome = mutate_tree(
                wt,
                ctx,
                self.llm_factory(ctx.seed),
                self.cfg,
                commit=self._committer(wt, ctx.agent, g, ctx.parents, heads),
                smoke=self._smoke(ctx.seed),
                screen=self._screen(g, ctx.agent),
            )
        return outcome, heads

    def _record(
        self,
        agent: str,
        g: int,
        parents: tuple[str, ...],
        outcome: MutationOutcome,
        head: str | None,
        parent_metrics: Metrics | None,
        prefix: str,
    ) -> None:
        for n, ev in enumerate(outcome.events):
            kept = ev.outcome in (
                Outcome.APPLIED,
                Outcome.REPAIRED,
                Outcome.DUPLICATE,
            )
            edit = (
                MutationEdit(ev.edit, ev.explore, outcome.change)
                if kept and (ev.edit or outcome.change)
                else None
            )
            record = MutationRecord(
                id=f"{agent}-{prefix}{n:02d}",
                timestamp=utc_now(),
                agent=agent,
                generation=g,
                parents=parents,
                file=ev.file,
                chunk=ev.chunk,
                summary=ev.summary,
                model=ev.model,
                prompt_tokens=ev.prompt_tokens,
                completion_tokens=ev.completion_tokens,
                cost_usd=ev.cost_usd,
                commit=head or "",
                kind=ev.kind,
                outcome=ev.outcome,
                reason=ev.reason,
                metrics_before=parent_metrics,
                edit=edit,
                left_out=ev.left_out,
            )
            self.memory.write_mutation(record.to_json())

    def _crossover(self, wt: Path, item: dict[str, Any], g: int) -> str:
        """Chunk-wise recombination of two parents as a two-parent merge commit."""
        from darwin_bot.mutation import recombine

        rng = random.Random(derive_seed(self.cfg.evolution.seed, "crossover", item["agent"]))
        with tempfile.TemporaryDirectory(prefix="darwin-xo-") as tmp:
            self.repo.export(item["parent_heads"][1], self.evolvable, Path(tmp))
            summary = recombine(wt, Path(tmp), self.evolvable, rng)
        trailers = Mutation(
            sha="",
            agent=item["agent"],
            generation=g,
            parents=tuple(item["parents"]),
            kind=MutationKind.CROSSOVER,
            summary=summary,
        ).trailers()
        sha = self.repo.merge_commit(
            item["parent_heads"], wt, format_message(f"crossover: {summary}", "", trailers)
        )
        self.repo.git("-C", str(wt), "reset", "-q", "--soft", sha)
        return sha

    def _files_at(self, ref: str) -> dict[str, str]:
        """The evolvable Python files at ``ref`` (read through the git adapter)."""
        with tempfile.TemporaryDirectory(prefix="darwin-parent-") as tmp:
            root = self.repo.export(ref, self.evolvable, Path(tmp))
            return {
                p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
                for p in sorted(root.rglob("*.py"))
                if "__pycache__" not in p.parts
            }

    def repair(
        self, g: int, rec: dict[str, Any], result: EvalResult, parent_metrics: Metrics | None
    ) -> str | None:
        """Ask the LLM to fix an offspring whose full evaluation failed; the new head, or None."""
        agent, parents = rec["agent"], tuple(rec["parents"])
        ctx = MutationContext(
            agent=agent,
            generation=g,
            parents=parents,
            parent_metrics=parent_metrics,
            baseline_metrics=None,
            seed=derive_seed(self.cfg.evolution.seed, "repair", agent),
        )
        # The first commit of the offspring sits on its (first) parent's head.
        base = self.repo.rev(f"{rec['commits'][0]}^1") if rec.get("commits") else None
        heads: list[str] = []
        with _stops_on_outage(agent), self.repo.worktree(rec["head"]) as wt:
            outcome = repair_tree(
                wt,
                ctx,
                self.llm_factory(ctx.seed),
                self.cfg,
                f"{result.status}: {result.reason}\n{result.log_tail[-3000:]}",
                commit=self._committer(wt, agent, g, parents, heads, note=result.reason),
                smoke=self._smoke(ctx.seed),
                parent_files=self._files_at(base) if base else None,
            )
        head = heads[-1] if heads and outcome.status is Outcome.APPLIED else None
        self._record(agent, g, parents, outcome, head, parent_metrics, prefix="r")
        if head is not None:
            self.repo.set_branch(agent, head)
        return head


@contextlib.contextmanager
def _stops_on_outage(agent: str) -> Iterator[None]:
    """An LLM outage while making ``agent`` stops the run; ``agent`` stays pending."""
    try:
        yield
    except (LLMTransientError, LLMAuthError) as exc:
        raise RunStopped(
            f"the LLM stopped answering ({exc}); {agent} stays pending, nothing was decided: "
            "run again to resume"
        ) from exc


def _offspring_record(
    item: dict[str, Any],
    g: int,
    outcome: MutationOutcome,
    head: str | None,
    heads: list[str],
    spent: list[Any] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """What the engine keeps of one offspring (its ``gNNN/offspring/<agent>.json``).

    Its tokens and cost are every call made for it (rejected, cut, declined and
    repaired replies, and dropped duplicate draws), not only the committed ones.
    """
    agent = item["agent"]
    calls = [*spent, *outcome.events]
    return {
        "agent": agent,
        "generation": g,
        "kind": item["kind"],
        "parents": list(item["parents"]),
        "status": Status.OK.value if head is not None else Status.REJECTED.value,
        "reason": outcome.reason,
        "head": head,
        "commits": heads if head else [],
        "summary": outcome.attempts[0].summary if outcome.attempts else "",
        "model": outcome.attempts[-1].model if outcome.attempts else "",
        "prompt_tokens": sum(e.prompt_tokens for e in calls),
        "completion_tokens": sum(e.completion_tokens for e in calls),
        "cost_usd": round(sum(e.cost_usd for e in calls), 6),
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
