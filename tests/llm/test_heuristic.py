"""The heuristic backend on the real seed/: 50 offspring, real smoke tests."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from darwin_bot.config import Config
from darwin_bot.core import EvalResult, Outcome
from darwin_bot.llm.offline import HeuristicLLM, imported_names, proposals
from darwin_bot.mutation import (
    ForkSmoke,
    MutationContext,
    chunk_source,
    mutate_tree,
    validate_files,
    write_tiny_data,
)
from darwin_bot.mutation.prompts import FileView, mutation_prompt, repair_prompt

RUNS = 50


@pytest.mark.timeout(240)
def test_fifty_offspring_validate_vary_and_train(tmp_path: Path, repo_root: Path) -> None:
    """Every edit validates, >= 8 kinds appear, >= 90% pass the first smoke test.

    All 50 offspring are smoke-tested (2 iterations of seed/train.py on tiny
    synthetic data, forked from one process that imported torch once).
    """
    data = write_tiny_data(tmp_path / "data")
    cfg = Config()
    kinds: Counter[str] = Counter()
    first_ok = 0
    seed = repo_root / "seed"
    originals = {f"seed/{p.name}": p.read_text() for p in sorted(seed.glob("*.py"))}
    with ForkSmoke(data, iters=2) as smoke:
        for i in range(RUNS):
            tree = tmp_path / f"t{i}"
            shutil.copytree(seed, tree / "seed")
            llm = HeuristicLLM(seed=i)
            ctx = MutationContext(f"g001-{i:03d}", 1, ("parent",), None, None, seed=i)
            results: list[EvalResult] = []

            def smoke_once(t: Path, results: list[EvalResult] = results) -> EvalResult:
                results.append(smoke(t))
                return results[-1]

            out = mutate_tree(tree, ctx, llm, cfg, commit=lambda a: "sha", smoke=smoke_once)
            edits = [h.kind for h in llm.history if h.task == "mutate" and h.kind]
            assert edits, f"run {i}: the heuristic proposed nothing"
            # every edit the heuristic proposed was accepted by validation
            rejected = [e.reason for e in out.events if e.outcome is Outcome.REJECTED]
            assert rejected == [], f"run {i}: {rejected}"
            edited = {p: (tree / p).read_text() for p in originals}
            validate_files(
                originals,
                edited,
                evolvable=("seed/",),
                allowed_imports=cfg.llm.allowed_imports,
                max_file_lines=800,
            )
            assert out.status is Outcome.APPLIED, f"run {i}: {out.reason}"  # repaired at worst
            kinds.update(edits)
            first_ok += results[0].ok
        assert smoke.runs >= RUNS
    assert len(kinds) >= 8, kinds
    assert first_ok >= 0.9 * RUNS, f"{first_ok}/{RUNS} passed the first smoke test; kinds {kinds}"


def test_every_known_edit_fits_somewhere_in_seed(repo_root: Path) -> None:
    import random

    found: set[str] = set()
    for name in ("model.py", "train.py"):
        chunks = chunk_source(f"seed/{name}", (repo_root / "seed" / name).read_text())
        names = imported_names(chunks[0].text)
        for c in chunks[1:]:
            for _ in range(4):
                found |= {e.tag.kind for e in proposals(c.text, names, random.Random(len(found)))}
    assert {
        "relu2_mlp",
        "swiglu_mlp",
        "rmsnorm",
        "qk_norm",
        "rotary",
        "untie_head",
        "zero_init_head",
        "logit_softcap",
        "parallel_block",
        "schedule:linear",
    } <= found
    assert any(k.startswith("hparam:") for k in found)


def test_repair_prompt_gets_the_original_back(repo_root: Path) -> None:
    text = (repo_root / "seed" / "model.py").read_text()
    chunks = chunk_source("seed/model.py", text)
    mlp = next(c for c in chunks if c.name == "MLP")
    msgs = repair_prompt(
        FileView("seed/model.py", tuple(chunks)),
        mlp.id,
        current="class MLP: broken\n",
        original=mlp.text,
        error="boom",
        log_tail="",
        allowed_imports=("torch",),
        max_file_lines=800,
    )
    reply = HeuristicLLM().complete(msgs).text
    assert "SUMMARY: Revert MLP" in reply
    assert mlp.text.strip() in reply


def test_same_seed_same_reply(repo_root: Path) -> None:
    text = (repo_root / "seed" / "model.py").read_text()
    chunks = chunk_source("seed/model.py", text)
    mlp = next(c for c in chunks if c.name == "MLP")
    msgs = mutation_prompt(
        FileView("seed/model.py", tuple(chunks)),
        mlp,
        running_memory=[],
        memory_digest="",
        parent_metrics=None,
        baseline_metrics=None,
        requests_context="",
        allowed_imports=("torch",),
        max_file_lines=800,
    )
    replies = {HeuristicLLM(seed=7).complete(msgs).text for _ in range(3)}
    assert len(replies) == 1
    assert "SUMMARY:" in replies.pop()
    assert (
        HeuristicLLM()
        .complete([{"role": "user", "content": "no chunk here"}])
        .text.startswith("NO CHANGE")
    )
