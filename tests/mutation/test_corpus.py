"""The faulty-reply corpus: well formed, and its validation cases are caught before any smoke test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from darwin_bot.config import Config
from darwin_bot.core import Outcome
from darwin_bot.llm.scripted import ScriptedLLM
from darwin_bot.mutation import MutationContext, mutate_tree
from tests.mutation.conftest import FakeSmoke

CASES = Path(__file__).resolve().parent.parent / "data" / "faulty_replies" / "cases.jsonl"


def test_corpus_is_well_formed() -> None:
    cases = [json.loads(x) for x in CASES.read_text().splitlines() if x.strip()]
    assert len(cases) >= 40
    assert len({c["id"] for c in cases}) == len(cases)
    assert {c["expected"] for c in cases} <= {"validation", "smoke", "none", "latent"}
    assert all(c["chunk"].startswith("seed/") and "::" in c["chunk"] for c in cases)


def test_validation_cases_never_reach_a_smoke_test(tmp_path: Path, repo_root: Path) -> None:
    cases = [json.loads(x) for x in CASES.read_text().splitlines() if x.strip()]
    cfg = Config().replace("evolution", repair_attempts=0)
    for n, case in enumerate(c for c in cases if c["expected"] == "validation"):
        tree = tmp_path / f"c{n}"
        shutil.copytree(
            repo_root / "seed", tree / "seed", ignore=shutil.ignore_patterns("__pycache__")
        )
        smoke = FakeSmoke()
        out = mutate_tree(
            tree,
            MutationContext("b", 1, (), None, None),
            ScriptedLLM.from_texts([case["reply"]]),
            cfg,
            commit=lambda a: "sha",
            smoke=smoke,
            only=(case["chunk"],),
        )
        assert out.status is Outcome.REJECTED and smoke.calls == 0, case["id"]
        assert out.reason and out.reason != "no chunk was changed", case["id"]
        assert (tree / "seed/model.py").read_text() == (repo_root / "seed/model.py").read_text()
