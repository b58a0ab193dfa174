"""No work lost: a failed chunk drops only its own edit; the LLM's cut and refused replies are
reasons of their own; a prompt is fitted to the model's context window."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from darwin_bot.config import Config
from darwin_bot.core import Outcome
from darwin_bot.errors import LLMRequestError, LLMTransientError
from darwin_bot.llm import Completion, Message, Window
from darwin_bot.llm.scripted import ScriptedLLM
from darwin_bot.mutation import Attempt, MutationContext, mutate_tree
from darwin_bot.mutation.prompts import LEFT_OUT
from tests.mutation.conftest import FakeSmoke
from tests.mutation.test_pipeline import RELU2, good_reply

CTX = MutationContext("g001-000", 1, ("parent",), None, None, memory_digest="lr 2e-3 helped")
MLP = "seed/model.py::MLP"
BLOCK = "seed/model.py::Block"
BROKEN = "SUMMARY: break Block\n```python\nclass Block(nn.Module)\n    pass\n```\n"


class Recorder:
    """The pipeline's commit callback: keeps each attempt and the files as committed."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self.attempts: list[Attempt] = []
        self.files: list[str] = []

    def __call__(self, a: Attempt) -> str:
        self.attempts.append(a)
        self.files.append((self.tree / "seed/model.py").read_text())
        return f"sha{len(self.attempts)}"


class SeeingSmoke(FakeSmoke):
    """A smoke test that keeps the model.py it was run on."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __call__(self, tree: Path):  # noqa: ANN204
        self.seen.append((tree / "seed/model.py").read_text())
        return super().__call__(tree)


def _run(tree: Path, llm, only=(MLP, BLOCK), cfg: Config | None = None):  # noqa: ANN001, ANN202
    rec, smoke = Recorder(tree), SeeingSmoke()
    out = mutate_tree(tree, CTX, llm, cfg or Config(), commit=rec, smoke=smoke, only=only)
    return out, rec, smoke


def test_a_later_invalid_chunk_keeps_the_earlier_valid_edit(tree: Path) -> None:
    """The lost-edit case: MLP's valid edit, then Block's broken one. MLP's edit is committed
    with its content and is what the smoke test runs; Block's is dropped alone."""
    out, rec, smoke = _run(tree, ScriptedLLM.from_texts([good_reply(tree), BROKEN]))
    assert out.status is Outcome.APPLIED
    assert [e.outcome for e in out.events] == [Outcome.APPLIED, Outcome.REJECTED]
    assert [c.chunk for c in rec.attempts[0].changes] == ["MLP"]
    assert RELU2 in rec.files[0]  # committed with its content, not an empty commit
    assert smoke.seen and RELU2 in smoke.seen[0]
    assert "class Block(nn.Module)\n    pass" not in rec.files[0]
    assert ("seed/model.py", "MLP") in out.changed


def test_a_reply_cut_at_the_token_limit_is_its_own_reason_and_asked_again_shorter(
    tree: Path,
) -> None:
    cut = Completion(text="SUMMARY: x\n```python\nclass MLP(", model="m", finish_reason="length")
    fine = Completion(text=good_reply(tree), model="m", finish_reason="stop")
    llm = ScriptedLLM([cut, fine])
    out, rec, _ = _run(tree, llm, only=(MLP,))
    assert out.status is Outcome.APPLIED
    first, second = out.events
    assert first.outcome is Outcome.REJECTED and "cut at the token limit" in first.reason
    assert second.outcome is Outcome.APPLIED
    assert "cut off at the token limit" in llm.prompts[1][-1]["content"]
    assert "cut off" not in llm.prompts[0][-1]["content"]


class _Refusing(ScriptedLLM):
    """Refuses its first prompt (a 400) or fails as an outage, then plays its replies."""

    def __init__(self, replies: list[str], error: Exception) -> None:
        super().__init__([Completion(text=t, model="m") for t in replies])
        self.error: Exception | None = error

    def complete(self, messages: list[Message]) -> Completion:
        if self.error is not None:
            err, self.error = self.error, None
            raise err
        return super().complete(messages)


def test_a_refused_prompt_fails_that_chunk_only(tree: Path) -> None:
    llm = _Refusing([good_reply(tree)], LLMRequestError("HTTP 400: too long"))
    out, rec, _ = _run(tree, llm, only=(BLOCK, MLP))
    assert out.status is Outcome.APPLIED
    assert out.events[0].outcome is Outcome.REJECTED and "HTTP 400" in out.events[0].reason
    assert [c.chunk for c in rec.attempts[0].changes] == ["MLP"]


def test_an_outage_is_raised_not_recorded_as_a_verdict(tree: Path) -> None:
    llm = _Refusing([], LLMTransientError("HTTP 503 after up to 5 tries"))
    with pytest.raises(LLMTransientError):
        _run(tree, llm, only=(MLP,))


class _Windowed(ScriptedLLM):
    """Scripted replies behind a small context window."""

    def __init__(self, replies: list[str], context: int) -> None:
        super().__init__([Completion(text=t, model="m") for t in replies])
        self.win = Window(context, 4096, "config")

    def window(self) -> Window:
        return self.win


def test_a_small_window_leaves_out_context_before_the_chunk_and_says_so(tree: Path) -> None:
    cfg = Config()
    big = Window(10**6, cfg.llm.max_tokens)
    llm = _Windowed(["NO CHANGE: measuring the prompt"], 10**6)
    _run(tree, llm, only=(MLP,))
    full = big.tokens(llm.prompts[0])
    small = _Windowed([good_reply(tree)], full + 200)  # room for the prompt, not for the reply
    out, _, _ = _run(tree, small, only=(MLP,))
    prompt = small.prompts[0][-1]["content"]
    assert out.status is Outcome.APPLIED
    assert out.events[0].left_out and out.events[0].left_out[0] == "memory"
    assert LEFT_OUT in prompt and "lr 2e-3 helped" not in prompt
    assert "### CHUNK seed/model.py::MLP" in prompt
    assert small.win.tokens(small.prompts[0]) + 200 <= small.win.context_tokens


def test_a_prompt_that_cannot_fit_is_that_chunks_reason(tree: Path) -> None:
    llm = _Windowed([good_reply(tree)], 900)
    out, rec, _ = _run(tree, llm, only=(MLP,))
    assert out.status is Outcome.REJECTED and not rec.attempts
    assert "does not fit the model's context window" in out.events[0].reason
    assert llm.prompts == []  # nothing was sent


def test_a_reply_cut_twice_asks_about_no_other_chunk(tree: Path) -> None:
    """The budget, not the chunk, failed: the fallback chunks would be cut as well."""
    cut = Completion(text="SUMMARY: x\n```python\nclass", model="m", finish_reason="length")
    llm = ScriptedLLM([cut, cut, Completion(text="NO CHANGE: fine", model="m")])
    cfg = Config()
    cfg = dataclasses.replace(
        cfg, evolution=dataclasses.replace(cfg.evolution, mutation_rate=0.0001)
    )
    out = mutate_tree(tree, CTX, llm, cfg, commit=Recorder(tree), smoke=SeeingSmoke())
    assert out.status is Outcome.REJECTED
    assert len(llm.prompts) == 2 and llm.remaining == 1
    assert "again after asking for a shorter reply" in out.reason
