"""The ``heuristic`` backend: an offline, seeded mutator that speaks the reply format.

No network and no model: it reads the chunk out of the prompt (the sections
of :mod:`darwin_bot.llm.sections`), lists the known edits that fit it
(:mod:`~darwin_bot.llm.offline.catalogue`), picks one
(:mod:`~darwin_bot.llm.offline.policy`: Thompson sampling over the memory when
it was given :class:`~darwin_bot.llm.evidence.Guidance`, uniform
otherwise) and answers as an LLM would: SUMMARY, RATIONALE (with the evidence),
EDIT (the edit's tag), REQUEST lines when the measured data calls for one, then
the whole new chunk or SEARCH/REPLACE blocks.

Which chunks it is asked about is the pipeline's random pick, unless the
memory has measured something that applies: then :meth:`HeuristicLLM.prefer`
ranks every mutable chunk by the Thompson draw of its best option (the
chunk-level half of Thompson sampling) and names as many as the random pick
would have edited; the edit planned for a chunk there is the one made when its
prompt comes.

Repair prompts are answered by going back to the chunk under ``ORIGINAL``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from darwin_bot.core import HumanRequest
from darwin_bot.llm.base import ChunkOffer, ChunkPlan, Completion, Message
from darwin_bot.llm.evidence import Guidance
from darwin_bot.llm.offline import requests as asks
from darwin_bot.llm.offline.ast_tools import imported_names, search_replace
from darwin_bot.llm.offline.catalogue import proposals
from darwin_bot.llm.offline.policy import Choice, choose
from darwin_bot.llm.sections import Section, Task, find, task_of


@dataclass(frozen=True)
class HeuristicCall:
    """What the backend did for one prompt (for tests and benchmarks)."""

    task: Task | None
    chunk: str
    kind: str  # a catalogue kind, or "" when it proposed no edit
    explore: bool = False


def _request_line(r: HumanRequest) -> str:
    flat = " ".join(r.rationale.split()).replace("|", "/")
    return f"REQUEST: {r.kind} | {r.title} | {flat}"


class HeuristicLLM:
    """``LLM`` that proposes known edits offline; ``history`` records what it did."""

    def __init__(self, seed: int = 0, *, model: str = "heuristic") -> None:
        self.name = "heuristic"
        self.model = model
        self.seed = seed
        self.calls = 0
        self.history: list[HeuristicCall] = []
        self.guidance: Guidance | None = None
        self._said: set[str] = set()
        self._planned: dict[str, tuple[str, Choice]] = {}  # chunk id -> (its text, the choice)

    def guide(self, guidance: Guidance | None) -> None:
        """Use ``guidance`` (the memory's evidence about this offspring) for the next prompts."""
        self.guidance = guidance
        self._said = set()
        self._planned = {}

    def prefer(self, offers: Sequence[ChunkOffer], picked: Sequence[str]) -> ChunkPlan | None:
        """The chunks to edit, from the memory; None keeps the pipeline's random ``picked``.

        None without memory, and when no option of any chunk has been measured
        (the memory has nothing to say, and both ablation arms then edit the
        same chunks). Otherwise every offered chunk gets a planned choice (its
        score: the Thompson draw of its best fresh option) and the plan names
        the best ones, as many as the random pick has chunks with an edit that
        applies (at least one), so the memory decides where, not how much.
        """
        g = self.guidance
        self._planned = {}
        if g is None or not g.use_memory:
            return None
        plans: list[tuple[ChunkOffer, Choice, bool]] = []
        measured = False
        for o in offers:
            rng = random.Random(f"{self.seed}:plan:{g.agent}:{o.id}")
            options = proposals(o.text, imported_names(o.imports), rng)
            measured |= any(g.evidence.credit(e.tag.arm).n for e in options)
            plans.append((o, choose(options, g, rng), bool(options)))
        if not measured:
            return None
        want = max(1, sum(1 for o, _, some in plans if some and o.id in picked))
        ranked = sorted(plans, key=lambda p: -p[1].score)  # stable: ties keep the offer order
        self._planned = {o.id: (o.text, c) for o, c, _ in ranked}
        ids = tuple(o.id for o, _, _ in ranked)
        return ChunkPlan(ids[:want], ids[want:])

    def complete(self, messages: list[Message]) -> Completion:
        prompt = "\n".join(m["content"] for m in messages if m["role"] != "assistant")
        self.calls += 1
        got = find(prompt, Section.CHUNK)
        if got is None:
            return self._reply(None, "", "", "NO CHANGE: the prompt carries no CHUNK section")
        chunk_id, text = got
        text = text if text.endswith("\n") else text + "\n"
        if task_of(prompt) == Task.REPAIR:
            return self._revert(prompt, chunk_id, text)
        imports = find(prompt, Section.IMPORTS)
        names = imported_names(imports[1]) if imports else set()
        rng = random.Random(f"{self.seed}:{self.calls}:{chunk_id}")
        options = proposals(text, names, rng)
        planned = self._planned.pop(chunk_id, None)
        if planned is not None and planned[0] == text:
            choice = planned[1]  # what this chunk was chosen for
        else:
            choice = choose(options, self.guidance, rng)
        lines = [_request_line(r) for r in self._requests(chunk_id, choice, len(options))]
        if choice.edit is None:
            body = "\n".join([*lines, f"NO CHANGE: {choice.rationale} for {chunk_id}"])
            return self._reply(Task.MUTATE, chunk_id, "", body + "\n")
        edit = choice.edit
        head = [
            f"SUMMARY: {edit.summary}",
            f"RATIONALE: {choice.rationale}",
            f"EDIT: {edit.tag.text()}" + (" explore" if choice.explore else ""),
            *lines,
        ]
        blocks = search_replace(text, edit.text) if edit.tag.direction else None
        code = blocks if blocks else f"```python\n{edit.text}```"
        reply = "\n".join(head) + "\n" + code + "\n"
        return self._reply(Task.MUTATE, chunk_id, edit.tag.kind, reply, choice.explore)

    def _revert(self, prompt: str, chunk_id: str, text: str) -> Completion:
        original = find(prompt, Section.ORIGINAL)
        if original is None or original[1].strip() == text.strip():
            return self._reply(Task.REPAIR, chunk_id, "", "NO CHANGE: nothing to go back to")
        body = original[1] if original[1].endswith("\n") else original[1] + "\n"
        reply = (
            f"SUMMARY: Revert {chunk_id.split('::')[-1]} to the parent's version\n"
            "RATIONALE: the edit failed; the parent's chunk is known to work.\n"
            f"```python\n{body}```\n"
        )
        return self._reply(Task.REPAIR, chunk_id, "revert", reply)

    def _requests(self, chunk_id: str, choice: Choice, n_options: int) -> list[HumanRequest]:
        g = self.guidance
        if g is None or not g.use_memory:
            return []
        found = [asks.data(g), asks.restructure(g)]
        if choice.blocked is not None:
            found.append(asks.dependency(g, chunk_id, choice.blocked, n_options))
        return asks.wanted(found, g, self._said)

    def _reply(
        self, task: Task | None, chunk: str, kind: str, text: str, explore: bool = False
    ) -> Completion:
        self.history.append(HeuristicCall(task, chunk, kind, explore))
        return Completion(text=text, model=self.model, prompt_tokens=0, completion_tokens=0)
