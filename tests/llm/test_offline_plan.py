"""The memory decides where the offline mutator edits, and stays out of the way when it knows nothing."""

from __future__ import annotations

import dataclasses
import random
import shutil
from pathlib import Path
from typing import Any

from darwin_bot.config import Config
from darwin_bot.core import Budget, EvalResult, Outcome
from darwin_bot.llm import ChunkOffer
from darwin_bot.llm.evidence import EditTag
from darwin_bot.llm.offline import Evidence, Guidance, HeuristicLLM, from_memory, proposals
from darwin_bot.llm.offline.ast_tools import imported_names
from darwin_bot.llm.offline.policy import choose
from darwin_bot.llm.offline.registry import Edit
from darwin_bot.mutation import MutationContext, chunk_source, mutate_tree
from darwin_bot.mutation.prompts import FileView

IMPORTS = ("torch", "math", "inspect", "numpy")


def _rec(agent: str, tag: str, delta: float) -> dict[str, Any]:
    return {
        "agent": agent,
        "generation": 1,
        "parents": ["seed"],
        "outcome": "applied",
        "fitness_delta": delta,
        "edit": {"tag": tag, "explore": False, "change": ""},
    }


class _Memory:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def mutations(self, generation: int | None = None) -> list[dict[str, Any]]:
        return self.records

    def generations(self) -> list[dict[str, Any]]:
        return []

    def requests(self) -> list[dict[str, Any]]:
        return []

    def last_generation(self) -> int | None:
        return 1


def _edit(tag: str) -> Edit:
    return Edit(EditTag.parse(tag), f"do {tag}", f"{tag} helps.", f"# {tag}\n")


def _rotary_helped() -> Evidence:
    """Four clean single-edit trials of rotary at +6 %, from a lineage the offspring is not in."""
    return from_memory(_Memory([_rec(f"g001-{i:03d}", "rotary", 0.06) for i in range(4)]))


def test_with_nothing_measured_the_memory_arm_draws_what_the_withheld_arm_draws() -> None:
    options = [_edit("rmsnorm"), _edit("rotary"), _edit("qk_norm")]
    known = Guidance("g001-000", "seed", 1, Evidence(), allowed_imports=IMPORTS)
    withheld = Guidance(
        "g001-000", "seed", 1, Evidence(), allowed_imports=IMPORTS, use_memory=False
    )
    for i in range(60):
        a, b = choose(options, known, random.Random(i)), choose(options, withheld, random.Random(i))
        assert a.edit is not None and a.edit == b.edit, i
        assert "no applicable edit measured yet (3 untried" in a.rationale
    # once one option is measured the draw is Thompson's again, and it follows the evidence
    measured = Guidance("g002-000", "g001-009", 2, _rotary_helped(), allowed_imports=IMPORTS)
    picks = [choose(options, measured, random.Random(i)).edit for i in range(200)]
    assert sum(1 for e in picks if e is not None and e.tag.kind == "rotary") > 140


def _offers(tree: Path) -> list[ChunkOffer]:
    out = []
    for f in sorted((tree / "seed").glob("*.py")):
        path = f"seed/{f.name}"
        chunks = chunk_source(path, f.read_text())
        view = FileView(path, tuple(chunks))
        out += [ChunkOffer(c.id, c.text, view.imports()) for c in chunks if not c.frozen]
    return out


def test_prefer_names_as_many_chunks_as_the_random_pick_would_edit(repo_root: Path) -> None:
    offers = _offers(repo_root)
    with_edits = {
        o.id for o in offers if proposals(o.text, imported_names(o.imports), random.Random(0))
    }
    llm = HeuristicLLM(seed=3)
    llm.guide(None)
    assert llm.prefer(offers, [offers[0].id]) is None  # no guidance: the random pick stands
    llm.guide(Guidance("g001-000", "seed", 1, Evidence(), allowed_imports=IMPORTS))
    assert llm.prefer(offers, [offers[0].id]) is None  # nothing measured: the same
    g = Guidance("g002-000", "g001-009", 2, _rotary_helped(), allowed_imports=IMPORTS)
    llm.guide(dataclasses.replace(g, use_memory=False))
    assert llm.prefer(offers, [offers[0].id]) is None  # memory withheld
    firsts = 0
    for i in range(40):
        rng = random.Random(i)
        picked = [o.id for o in offers if rng.random() < 0.3]
        llm = HeuristicLLM(seed=i)
        llm.guide(g)
        plan = llm.prefer(offers, picked)
        assert plan is not None
        assert len(plan.picked) == max(1, len(with_edits & set(picked)))
        assert sorted(plan.picked + plan.rest) == sorted(o.id for o in offers)
        firsts += plan.picked[0] == "seed/model.py::CausalSelfAttention"
    assert firsts > 30  # the chunk where the measured +6 % edit fits comes first


def _smoke(tree: Path) -> EvalResult:
    return EvalResult("ok", "", None, "cpu", 0, Budget(iters=2), "test", "")


def _rotary_share(tmp_path: Path, repo_root: Path, use_memory: bool, runs: int = 24) -> float:
    """The share of offspring whose edits include rotary, planned by ``mutate_tree``."""
    cfg = Config()
    made = 0
    for i in range(runs):
        tree = tmp_path / f"{use_memory}-{i}"
        shutil.copytree(repo_root / "seed", tree / "seed")
        g = Guidance(
            f"g002-{i:03d}", "g001-009", 2, _rotary_helped(), use_memory=use_memory
        )  # the pipeline fills in the allowed imports
        ctx = MutationContext(f"g002-{i:03d}", 2, ("g001-009",), None, None, seed=i, guidance=g)
        llm = HeuristicLLM(seed=i)
        out = mutate_tree(tree, ctx, llm, cfg, commit=lambda a: "sha", smoke=_smoke)
        assert out.status is Outcome.APPLIED, out.reason
        made += any(h.kind == "rotary" for h in llm.history)
        text = (tree / "seed" / "model.py").read_text()
        assert ("rope_cos" in text) == any(h.kind == "rotary" for h in llm.history)
    return made / runs


def test_the_memory_sends_the_mutator_to_the_chunk_its_best_edit_fits(
    tmp_path: Path, repo_root: Path
) -> None:
    # without the memory the attention chunk is picked about 30 % of the time, and then
    # rotary is one of two edits there; with it, the measured +6 % edit is made in most
    with_memory = _rotary_share(tmp_path, repo_root, True)
    without = _rotary_share(tmp_path, repo_root, False)
    assert with_memory >= 0.75 and without <= 0.4, (with_memory, without)
