"""The mutate/repair pipeline with scripted replies: every faulty reply ends committed,
repaired or rejected with a clear reason, and none reaches "ok" broken."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from darwin_bot.config import Config
from darwin_bot.core import EvalResult, Outcome, SmokeDeferred, SmokeResult, Status
from darwin_bot.engine import DeferredEvaluator
from darwin_bot.errors import StateError
from darwin_bot.llm.scripted import ScriptedLLM
from darwin_bot.mutation import (
    Attempt,
    MutationContext,
    MutationOutcome,
    mutate_tree,
    repair_tree,
)
from darwin_bot.mutation.chunks import chunk_source, find_chunk
from darwin_bot.mutation.testing import run_smoke
from tests.mutation.conftest import FakeSmoke

CTX = MutationContext(
    "g001-000",
    1,
    ("parent",),
    None,
    None,
    memory_digest="lr 2e-3 helped",
    requests_context="approved: none",
)
MLP = "seed/model.py::MLP"
RELU2 = "x = torch.relu(self.c_fc(x)).square()  # (B, T, 4C)"


def mlp_text(tree: Path) -> str:
    c = find_chunk(chunk_source("seed/model.py", (tree / "seed/model.py").read_text()), "MLP")
    assert c is not None
    return c.text


def good_reply(tree: Path) -> str:
    new = mlp_text(tree).replace("x = self.gelu(self.c_fc(x))  # (B, T, 4C)", RELU2)
    assert new != mlp_text(tree)
    return f"SUMMARY: Use ReLU^2 in the MLP\nRATIONALE: Primer.\n```python\n{new}```\n"


def run(
    tree: Path,
    replies: list[str],
    smoke: Callable[[Path], SmokeResult] | None = None,
    cfg: Config | None = None,
) -> tuple[MutationOutcome, list[Attempt], ScriptedLLM]:
    commits: list[Attempt] = []
    llm = ScriptedLLM.from_texts(replies)

    def commit(a: Attempt) -> str:
        commits.append(a)
        return f"sha{len(commits)}"

    out = mutate_tree(
        tree, CTX, llm, cfg or Config(), commit=commit, smoke=smoke or FakeSmoke(), only=(MLP,)
    )
    assert list(out.attempts) == commits
    return out, commits, llm


def assert_parent_state(tree: Path, repo_root: Path) -> None:
    for p in ("model.py", "train.py"):
        assert (tree / "seed" / p).read_text() == (repo_root / "seed" / p).read_text()


def test_good_whole_chunk_is_committed_and_smoked(tree: Path) -> None:
    smoke = FakeSmoke()
    out, commits, llm = run(tree, [good_reply(tree)], smoke)
    assert out.status is Outcome.APPLIED and smoke.calls == 1
    assert [(a.kind, a.summary) for a in commits] == [("mutate", "Use ReLU^2 in the MLP")]
    assert commits[0].changes[0].chunk == "MLP"
    assert RELU2 in (tree / "seed/model.py").read_text()
    assert [e.outcome for e in out.events] == [Outcome.APPLIED]
    prompt = llm.prompts[0][1]["content"]  # the prompt carries what the spec lists
    for part in (
        "### CHUNK seed/model.py::MLP",
        "lr 2e-3 helped",
        "approved: none",
        "load(path, device)",
        "- GPT.forward: def forward(",
        "SUMMARY:",
    ):
        assert part in prompt


def test_search_replace_is_applied(tree: Path) -> None:
    reply = (
        "SUMMARY: ReLU^2\n<<<<<<< SEARCH\n        x = self.gelu(self.c_fc(x))  # (B, T, 4C)\n"
        f"=======\n        {RELU2}\n>>>>>>> REPLACE\n"
    )
    out, commits, _ = run(tree, [reply])
    assert out.status is Outcome.APPLIED and commits[0].kind == "mutate"
    assert RELU2 in (tree / "seed/model.py").read_text()


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("Lowering the learning rate would help.", "reply has no code"),
        (
            "SUMMARY: x\n```python\nclass MLP(nn.Module):\n    def __init__(self, config):\n        super().__init_",
            "truncated",
        ),
        ("SUMMARY: x\n```python\nclass MLP(nn.Module)\n    pass\n```\n", "SyntaxError"),
        (
            "SUMMARY: x\n```python\nclass MLP(nn.Module):\n    def forward(self, x):\n        y = x\n      return y\n```\n",
            "IndentationError",
        ),
        (
            "SUMMARY: x\n```python\nclass FeedForward(nn.Module):\n    def forward(self, x):\n        return x\n```\n",
            "class MLP was removed or renamed",
        ),
        (
            "SUMMARY: x\n```python\nimport scipy\nclass MLP(nn.Module):\n    def __init__(self, config):\n        super().__init__()\n    def forward(self, x):\n        return x\n```\n",
            "new import 'scipy'",
        ),
        (
            "SUMMARY: x\n```python\nclass MLP(nn.Module):\n    def __init__(self, config):\n        super().__init__()\n        import subprocess\n        subprocess.run(['curl', 'x'])\n    def forward(self, x):\n        return x\n```\n",
            "subprocess",
        ),
        (
            "SUMMARY: x\nCHUNK: README.md::intro\n```python\nprint('hi')\n```\n",
            "outside the evolvable paths",
        ),
        ("SUMMARY: x\n```python\n" + "# pad\n" * 20000 + "```\n", "over llm.max_reply_chars"),
    ],
    ids=[
        "no-code",
        "truncated",
        "syntax",
        "indentation",
        "renamed",
        "new-import",
        "subprocess",
        "outside-seed",
        "too-long",
    ],
)
def test_faulty_reply_is_rejected_then_repaired(
    tree: Path, repo_root: Path, bad: str, reason: str
) -> None:
    # the faulty reply alone: rejected, nothing committed, files untouched, reason says why
    out, commits, _ = run(tree, [bad], cfg=Config().replace("evolution", repair_attempts=0))
    assert out.status is Outcome.REJECTED and commits == []
    assert reason in out.reason
    assert_parent_state(tree, repo_root)
    # with a good repair reply: the repair prompt carries the reason; the fix is a repair commit
    out, commits, llm = run(tree, [bad, good_reply(tree)])
    assert out.status is Outcome.APPLIED, out.reason
    assert [a.kind for a in commits] == ["repair"]
    assert [e.outcome for e in out.events] == [Outcome.REJECTED, Outcome.REPAIRED]
    assert reason in out.events[0].reason
    repair = llm.prompts[1][1]["content"]
    assert (
        "### TASK repair" in repair
        and reason in repair
        and "### ORIGINAL seed/model.py::MLP" in repair
    )


def test_bad_repair_is_rejected_and_files_restored(tree: Path, repo_root: Path) -> None:
    out, commits, _ = run(tree, ["no code", "still no code"])
    assert out.status is Outcome.REJECTED and commits == []
    assert "reply has no code" in out.reason
    assert_parent_state(tree, repo_root)


def test_running_out_of_replies_is_rejected_not_raised(tree: Path, repo_root: Path) -> None:
    out, commits, _ = run(tree, ["no code"])
    assert out.status is Outcome.REJECTED and "ran out of replies" in out.reason
    assert_parent_state(tree, repo_root)


def test_wrongly_indented_method_is_reindented(tree: Path) -> None:
    """A method sent back flush-left is put back at its depth (tolerant parsing)."""
    text = (tree / "seed/model.py").read_text()
    fwd = find_chunk(chunk_source("seed/model.py", text), "GPT.forward")
    assert fwd is not None
    flush = "\n".join(ln[4:] for ln in fwd.text.splitlines()).replace(
        "return logits\n", "return logits * 1.0\n", 1
    )
    commits: list[Attempt] = []
    out = mutate_tree(
        tree,
        CTX,
        ScriptedLLM.from_texts([f"SUMMARY: s\n```\n{flush}\n```"]),
        Config(),
        commit=lambda a: commits.append(a) or "sha",
        smoke=FakeSmoke(),
        only=("seed/model.py::GPT.forward",),
    )
    assert out.status is Outcome.APPLIED, out.reason
    assert "            return logits * 1.0\n" in (tree / "seed/model.py").read_text()


def test_smoke_failure_goes_to_repair_with_the_log(tree: Path) -> None:
    smoke = FakeSmoke([False, True])
    revert = f"SUMMARY: Revert MLP\n```python\n{mlp_text(tree)}```\n"
    out, commits, llm = run(tree, [good_reply(tree), revert], smoke)
    assert out.status is Outcome.APPLIED and smoke.calls == 2
    assert [a.kind for a in commits] == ["mutate", "repair"]
    assert [e.outcome for e in out.events] == [
        Outcome.APPLIED,
        Outcome.SMOKE_FAILED,
        Outcome.REPAIRED,
    ]
    assert "RuntimeError: boom" in llm.prompts[1][1]["content"]


def test_smoke_still_failing_after_repairs_is_rejected_at_last_commit(tree: Path) -> None:
    smoke = FakeSmoke([False, False])
    revert = f"SUMMARY: Revert MLP\n```python\n{mlp_text(tree)}```\n"
    out, commits, _ = run(tree, [good_reply(tree), revert], smoke)
    assert out.status is Outcome.REJECTED and "smoke test failed: RuntimeError: boom" in out.reason
    assert [a.kind for a in commits] == ["mutate", "repair"]
    assert out.smoke is not None and not out.smoke.ok


def test_a_deferred_smoke_test_keeps_the_commit_but_is_never_an_ok_result(tree: Path) -> None:
    """The CI step that holds secrets runs no agent code: its smoke test is deferred, typed
    as such (no status to read as ok, nothing to score), and the commit stands for the
    sandboxed evaluate job to run."""
    deferred = DeferredEvaluator("ci-1")
    out, commits, _ = run(tree, [good_reply(tree)], lambda t: deferred(t, seed=7, smoke=True))
    assert out.status is Outcome.APPLIED and [a.kind for a in commits] == ["mutate"]
    assert isinstance(out.smoke, SmokeDeferred) and not isinstance(out.smoke, EvalResult)
    assert (out.smoke.seed, out.smoke.evaluator_version) == (7, "ci-1")
    assert not hasattr(out.smoke, "status") and not hasattr(out.smoke, "ok")
    assert [e.outcome for e in out.events] == [Outcome.APPLIED]  # not smoke-tested, not failed
    with pytest.raises(StateError, match="never runs agent code"):
        deferred(tree, seed=7)  # a full evaluation is never deferred: it must be in the results


def test_real_smoke_catches_a_runtime_break_and_repair_fixes_it(
    tree: Path, tiny_data: Path
) -> None:
    """A valid-looking edit that breaks training at run time: the real smoke test (2 iterations
    of the tree's train.py in a subprocess) fails, the repair reverts, the repaired tree trains."""
    broken = mlp_text(tree).replace(
        "return self.dropout(self.c_proj(x))", "return self.dropout(self.c_proj(x[..., :7]))"
    )
    bad = f"SUMMARY: Narrow the MLP output\n```python\n{broken}```\n"
    revert = f"SUMMARY: Revert MLP\n```python\n{mlp_text(tree)}```\n"
    results = []

    def smoke(t: Path):  # type: ignore[no-untyped-def]
        results.append(run_smoke(t, tiny_data, iters=2, timeout_s=120))
        return results[-1]

    commits: list[Attempt] = []
    out = mutate_tree(
        tree,
        CTX,
        ScriptedLLM.from_texts([bad, revert]),
        Config(),
        commit=lambda a: commits.append(a) or "sha",
        smoke=smoke,
        only=(MLP,),
    )
    assert [r.status for r in results] == [Status.FAILED, Status.OK]
    assert "mat1 and mat2 shapes cannot be multiplied" in results[0].reason
    assert out.status is Outcome.APPLIED and [a.kind for a in commits] == ["mutate", "repair"]


def test_repair_tree_reverts_the_chunk_the_traceback_names(tree: Path) -> None:
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "parent"], check=True)
    parent = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    p = tree / "seed/model.py"
    original = mlp_text(tree)
    p.write_text(p.read_text().replace("x = self.gelu(self.c_fc(x))  # (B, T, 4C)", RELU2))
    line = next(i + 1 for i, ln in enumerate(p.read_text().splitlines()) if RELU2 in ln)
    error = (
        f'Traceback:\n  File "/x/seed/model.py", line {line}, in forward\nRuntimeError: NaN loss'
    )
    revert = f"SUMMARY: Revert MLP\n```python\n{original}```\n"
    ctx = MutationContext("g001-000", 1, (parent,), None, None)
    llm = ScriptedLLM.from_texts([revert])
    commits: list[Attempt] = []
    out = repair_tree(
        tree,
        ctx,
        llm,
        Config(),
        error,
        commit=lambda a: commits.append(a) or "sha",
        smoke=FakeSmoke(),
    )
    assert out.status is Outcome.APPLIED and [a.kind for a in commits] == ["repair"]
    assert "### CHUNK seed/model.py::MLP" in llm.prompts[0][1]["content"]
    assert "NaN loss" in llm.prompts[0][1]["content"]
    assert mlp_text(tree) == original
