"""Duplicate work: the normalised change signature, and the pipeline's screen before any smoke test."""

from __future__ import annotations

from pathlib import Path

from darwin_bot.config import Config
from darwin_bot.core import Outcome
from darwin_bot.llm.scripted import ScriptedLLM
from darwin_bot.mutation import Attempt, mutate_tree
from darwin_bot.mutation.change import signature
from tests.mutation.conftest import FakeSmoke
from tests.mutation.test_pipeline import CTX, MLP, good_reply

SRC = "def f(x):\n    return x + 1\n\n\ndef g(y):\n    return y\n"


def test_formatting_and_comments_do_not_count_as_a_change() -> None:
    reformatted = "def f(x):  # add one\n    return (x + 1)\n\n\ndef g(y):\n\n    return y\n"
    assert signature({"a.py": SRC}, {"a.py": reformatted}) == ""
    real = SRC.replace("x + 1", "x + 2")
    same_edit_other_layout = SRC.replace("x + 1", "(x+2)")
    assert signature({"a.py": SRC}, {"a.py": real}) == signature(
        {"a.py": SRC}, {"a.py": same_edit_other_layout}
    )
    assert signature({"a.py": SRC}, {"a.py": real}) != signature(
        {"a.py": SRC}, {"a.py": SRC.replace("y\n", "-y\n")}
    )


def test_a_known_change_is_dropped_before_the_smoke_test(tree: Path, repo_root: Path) -> None:
    seen: list[str] = []
    commits: list[Attempt] = []
    smoke = FakeSmoke()

    def screen(change: str) -> str:
        seen.append(change)
        return "duplicate: the same normalised change as g001-003"

    out = mutate_tree(tree, CTX, ScriptedLLM.from_texts([good_reply(tree)]), Config(),
                      commit=commits.append, smoke=smoke, only=(MLP,), screen=screen)  # type: ignore[arg-type]  # fmt: skip
    assert out.status is Outcome.DUPLICATE and "g001-003" in out.reason and out.change == seen[0]
    assert smoke.calls == 0 and commits == [] and len(seen[0]) == 16
    assert [e.outcome for e in out.events] == [Outcome.DUPLICATE]
    assert out.events[0].reason.startswith(
        "duplicate: the same normalised change as g001-003. Primer"
    )
    assert (tree / "seed/model.py").read_text() == (repo_root / "seed/model.py").read_text()


def test_a_new_change_goes_on_and_carries_its_signature(tree: Path) -> None:
    out = mutate_tree(tree, CTX, ScriptedLLM.from_texts([good_reply(tree)]), Config(),
                      commit=lambda a: "sha", smoke=FakeSmoke(), only=(MLP,), screen=lambda c: "")  # fmt: skip
    assert out.status is Outcome.APPLIED and len(out.change) == 16
