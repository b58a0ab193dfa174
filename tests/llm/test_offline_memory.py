"""The offline mutator learns from the memory: credit, lineage, exploration, evidence, requests."""

from __future__ import annotations

import dataclasses
import random
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from darwin_bot.llm import Evidence, Guidance, HeuristicLLM, from_memory
from darwin_bot.llm.evidence import EditTag, audit_memory, evidence_digest, run_noise
from darwin_bot.llm.offline.policy import choose
from darwin_bot.llm.offline.registry import Edit
from darwin_bot.mutation import chunk_source, parse_reply
from darwin_bot.mutation.prompts import FileView, mutation_prompt


def _rec(
    agent: str, tag: str, delta: float | None, parent: str = "seed", gen: int = 1, **kw: Any
) -> dict[str, Any]:
    return {
        "agent": agent,
        "generation": gen,
        "parents": [parent],
        "outcome": kw.get("outcome", "applied"),
        "fitness_delta": delta,
        "edit": {"tag": tag, "explore": False, "change": kw.get("change", "")},
    }


class FakeMemory:
    def __init__(self, records: list[dict[str, Any]], gens: list[dict[str, Any]] | None = None,
                 requests: list[dict[str, Any]] | None = None) -> None:  # fmt: skip
        self.records, self.gens, self.reqs = records, gens or [], requests or []

    def mutations(self, generation: int | None = None) -> list[dict[str, Any]]:
        return self.records

    def generations(self) -> list[dict[str, Any]]:
        return self.gens

    def requests(self) -> list[dict[str, Any]]:
        return self.reqs

    def last_generation(self) -> int | None:
        return max((g["generation"] for g in self.gens), default=1)


def _edit(tag: str) -> Edit:
    return Edit(EditTag.parse(tag), f"do {tag}", f"{tag} helps.", f"# {tag}\n")


def test_edit_tag_round_trip() -> None:
    t = EditTag.parse("hparam:learning_rate:up=0.002")
    assert (t.kind, t.direction, t.value) == ("hparam:learning_rate", "up", "0.002")
    assert t.arm == "hparam:learning_rate:up" and t.effect == "hparam:learning_rate=0.002"
    assert EditTag.parse(t.text()) == t and EditTag.parse("rmsnorm").arm == "rmsnorm"


def test_credit_cites_count_mean_and_agents() -> None:
    ev = from_memory(FakeMemory([_rec("g001-000", "rmsnorm", 0.02), _rec("g001-001", "rmsnorm", 0.016),
                                 _rec("g001-002", "rmsnorm", 0.018), _rec("g001-003", "qk_norm", None, outcome="smoke_failed")]))  # fmt: skip
    assert (
        ev.credit("rmsnorm").line()
        == "3 earlier rmsnorm edits: +1.8 % mean (g001-000, g001-001, g001-002)"
    )
    assert ev.credit("qk_norm").mean < 0  # a failed offspring counts against its edit
    assert "never" not in ev.credit("rotary").line() and "untried" in ev.credit("rotary").line()


def test_thompson_prefers_what_helped_and_never_drops_an_arm() -> None:
    recs = [_rec(f"g001-{i:03d}", "rmsnorm", 0.03) for i in range(4)]
    recs += [_rec(f"g002-{i:03d}", "silu_mlp", -0.03, gen=2) for i in range(4)]
    g = Guidance("g003-000", "seed", 3, from_memory(FakeMemory(recs)))
    options = [_edit("rmsnorm"), _edit("silu_mlp"), _edit("rotary")]
    # the lineage rule is off here: the parent "seed" has no edits of its own
    chosen = [choose(options, g, random.Random(i)).edit for i in range(300)]
    picks = Counter(e.tag.kind if e else "left alone" for e in chosen)
    assert picks["rmsnorm"] > picks["rotary"] > picks["silu_mlp"]
    assert picks["rotary"] > 0  # the untried arm is still drawn


def test_an_edit_the_memory_measured_as_harmful_is_left_alone_unless_exploring() -> None:
    recs = [_rec(f"g001-{i:03d}", "silu_mlp", -0.03) for i in range(3)]
    g = Guidance("g002-000", "g001-009", 2, from_memory(FakeMemory(recs)))
    outcomes = [choose([_edit("silu_mlp")], g, random.Random(i)) for i in range(200)]
    made = [c for c in outcomes if c.edit is not None]
    alone = [c for c in outcomes if c.edit is None]
    assert alone and all("expected to hurt" in c.rationale for c in alone)
    assert all("3 earlier silu_mlp edits: -3.0 %" in c.rationale for c in alone)
    # made only on purpose, about EXPLORE_RATE of the time, and then the record says so
    assert made and all(c.explore and "Exploring on purpose" in c.rationale for c in made)
    assert 0.1 < len(made) / len(outcomes) < 0.4
    # an untried edit is always made: its draw is the prior's, not a measurement
    fresh = [choose([_edit("rotary")], g, random.Random(i)) for i in range(100)]
    assert all(c.edit is not None and not c.explore for c in fresh)


def test_lineage_repeat_and_hurt_under_parent_are_excluded() -> None:
    recs = [
        _rec("g001-000", "schedule:linear", 0.01),  # grandparent applied it
        _rec("g002-000", "schedule:warmup-stable-decay", 0.01, parent="g001-000", gen=2),
        _rec("g003-001", "rmsnorm", -0.02, parent="g002-000", gen=3),  # a sibling's that hurt
    ]
    ev = from_memory(FakeMemory(recs))
    g = Guidance("g004-000", "g002-000", 4, ev)
    for i in range(50):
        c = choose(
            [_edit("schedule:linear"), _edit("rmsnorm"), _edit("qk_norm")], g, random.Random(i)
        )
        assert c.edit is not None and c.edit.tag.kind == "qk_norm" and not c.explore
    # when every option is excluded it explores on purpose (and says so) or declines
    outcomes = [choose([_edit("schedule:linear")], g, random.Random(i)) for i in range(60)]
    explored = [c for c in outcomes if c.edit is not None]
    assert explored and all(c.explore and "Exploring on purpose" in c.rationale for c in explored)
    assert any(
        c.edit is None and "lineage already has it (g001-000)" in c.rationale for c in outcomes
    )


def test_audit_lists_lineage_repeats_apart_from_exploring_ones() -> None:
    explored = _rec("g002-001", "hparam:learning_rate:up=0.004", 0.0, parent="g001-001", gen=2)
    explored["edit"]["explore"] = True
    recs = [
        _rec("g001-000", "schedule:linear", 0.01),
        _rec("g001-001", "hparam:learning_rate:up=0.004", 0.01),
        _rec("g002-000", "schedule:warmup-stable-decay", 0.01, parent="g001-000", gen=2),
        # a crossover of g001-001 and g002-000: its second parent's lineage counts too
        {
            **_rec("g003-000", "schedule:linear", 0.0, parent="g002-000", gen=3),
            "parents": ["g001-001", "g002-000"],
        },  # fmt: skip
        explored,
        # an edit that failed its smoke test never entered the tree: not a repeat
        _rec(
            "g003-002", "schedule:linear", None, parent="g002-000", gen=3, outcome="smoke_failed"
        ),  # fmt: skip
        _rec("g003-003", "schedule:cosine", 0.0, parent="g002-000", gen=3),  # a new value
        _rec("g003-004", "rmsnorm", 0.0, parent="g001-001", gen=3),  # not in that lineage
        _rec("g004-000", "schedule:linear", 0.0, parent="g001-000", gen=4),
    ]
    got = audit_memory(FakeMemory(recs))
    assert [(r.agent, r.effect, r.ancestor) for r in got.lineage_repeats] == [
        ("g003-000", "schedule:linear", "g001-000"),
        ("g004-000", "schedule:linear", "g001-000"),
    ]
    assert [(r.agent, r.ancestor) for r in got.exploring_repeats] == [("g002-001", "g001-001")]
    assert got.exploring_edits == 1 and got.duplicate_draws == 0
    assert got.as_json()["lineage_repeats"][0] == {
        "agent": "g003-000",
        "effect": "schedule:linear",
        "ancestor": "g001-000",
    }


def test_the_reference_run_repeats_nothing_its_lineage_has(repo_root: Path) -> None:
    from darwin_bot.store import MemoryStore

    got = audit_memory(MemoryStore(repo_root / "memory" / "reference"))
    trials = from_memory(MemoryStore(repo_root / "memory" / "reference")).trials
    assert len({t.agent for t in trials}) >= 10  # the whole demo: 3 generations of offspring
    assert got.lineage_repeats == ()


def test_withheld_memory_draws_uniformly() -> None:
    recs = [_rec("g001-000", "rmsnorm", 0.05)] * 5
    g = Guidance("a", "g001-000", 2, from_memory(FakeMemory(recs)), use_memory=False)
    picks = Counter(
        choose([_edit("rmsnorm"), _edit("rotary")], g, random.Random(i)).edit.tag.kind
        for i in range(200)
    )  # type: ignore[union-attr]
    assert 60 < picks["rmsnorm"] < 140  # the lineage repeat is not even known


def test_digest_carries_kind_effect_count_and_agents_within_budget() -> None:
    recs = [_rec(f"g001-{i:03d}", "rmsnorm", 0.02) for i in range(3)] + [
        _rec("g001-009", "silu_mlp", -0.01)
    ]
    text = evidence_digest(from_memory(FakeMemory(recs)), 400)
    assert "3 earlier rmsnorm edits: +2.0 % mean (g001-000, g001-001, g001-002)" in text
    assert text.index("rmsnorm") < text.index("silu_mlp") and len(text) <= 400
    assert evidence_digest(from_memory(FakeMemory(recs)), 10) == ""


def _prompt(repo_root: Path, name: str, allowed: tuple[str, ...]) -> list[Any]:
    chunks = chunk_source("seed/model.py", (repo_root / "seed" / "model.py").read_text())
    chunk = next(c for c in chunks if c.name == name)
    return mutation_prompt(FileView("seed/model.py", tuple(chunks)), chunk, running_memory=[],
                           memory_digest="", parent_metrics=None, baseline_metrics=None,
                           requests_context="", allowed_imports=allowed, max_file_lines=800)  # fmt: skip


def test_reply_cites_evidence_and_tags_the_edit(repo_root: Path) -> None:
    recs = [_rec(f"g001-{i:03d}", "rmsnorm", 0.018) for i in range(3)]
    llm = HeuristicLLM(seed=1)
    llm.guide(
        Guidance("g002-000", "seed", 2, from_memory(FakeMemory(recs)), allowed_imports=("torch",))
    )
    reply = parse_reply(llm.complete(_prompt(repo_root, "LayerNorm", ("torch",))).text)
    assert reply.edit == "rmsnorm" and not reply.explore
    assert "Evidence: 3 earlier rmsnorm edits: +1.8 % mean" in reply.rationale


def test_blocked_dependency_becomes_a_request_once_and_never_after_a_decline(
    repo_root: Path,
) -> None:
    llm = HeuristicLLM(seed=1)
    g = Guidance("g001-000", "seed", 1, Evidence(), allowed_imports=("torch", "inspect"))
    llm.guide(g)
    reply = parse_reply(
        llm.complete(_prompt(repo_root, "GPT.configure_optimizers", g.allowed_imports)).text
    )
    assert reply.no_change and [r.title for r in reply.requests] == ["Add dependency: lion_pytorch"]
    assert "not in llm.allowed_imports" in reply.requests[0].rationale
    again = parse_reply(
        llm.complete(_prompt(repo_root, "GPT.configure_optimizers", g.allowed_imports)).text
    )
    assert again.requests == ()  # said once per offspring
    key = reply.requests[0].key
    declined = Evidence(declined=frozenset({key}), asked=frozenset({key}))
    llm.guide(Guidance("g002-000", "seed", 2, declined, allowed_imports=("torch", "inspect")))
    assert (
        parse_reply(
            llm.complete(_prompt(repo_root, "GPT.configure_optimizers", g.allowed_imports)).text
        ).requests
        == ()
    )
    # approved: the import is allowed, so the edit is made
    llm.guide(
        Guidance(
            "g003-000", "seed", 3, declined, allowed_imports=("torch", "inspect", "lion_pytorch")
        )
    )
    made = parse_reply(
        llm.complete(_prompt(repo_root, "GPT.configure_optimizers", ("torch", "lion_pytorch"))).text
    )
    assert made.edit == "lion_optimizer" and "from lion_pytorch import Lion" in (made.code or "")


def test_data_request_when_held_out_loss_stalls() -> None:
    from darwin_bot.llm.offline import requests as asks

    def gens(*losses: float) -> list[dict[str, Any]]:
        return [
            {"generation": i, "ranking": [{"metrics": {"val_loss": v}}]}
            for i, v in enumerate(losses)
        ]

    stalled = from_memory(FakeMemory([], gens(2.0, 1.996, 1.995)))
    r = asks.data(Guidance("g003-000", "seed", 3, stalled))
    assert (
        r is not None
        and r.kind == "data"
        and "2.0000 (generation 0) to 1.9950 (generation 2)" in r.rationale
    )
    assert (
        asks.data(Guidance("g003-000", "seed", 3, from_memory(FakeMemory([], gens(2.0, 1.9, 1.8)))))
        is None
    )
    big = Guidance("a", "seed", 1, Evidence(), max_file_lines=100, file_lines={"seed/train.py": 90})
    got = asks.restructure(big)
    assert got is not None and "seed/train.py has 90 lines, 90 %" in got.rationale


def test_the_llm_darwin_run_builds_passes_the_guidance_on(repo_root: Path, tmp_path: Path) -> None:
    """The spend wrapper around the offline mutator must not hide its ``guide`` (it did: the
    demo and the ablation's memory arm ran without the memory, and never opened a request)."""
    from darwin_bot.cli import llm_factory
    from darwin_bot.config import Config
    from darwin_bot.llm import Guided
    from darwin_bot.spend import build_factory

    cfg = dataclasses.replace(Config(), llm=dataclasses.replace(Config().llm, backend="heuristic"))
    llm = build_factory(cfg, tmp_path / "memory", llm_factory(cfg))(7)
    assert isinstance(llm, Guided) and isinstance(llm.inner, HeuristicLLM)
    g = Guidance("g001-000", "seed", 1, Evidence(), allowed_imports=("torch", "inspect"))
    llm.guide(g)
    assert llm.inner.guidance == g
    reply = parse_reply(
        llm.complete(_prompt(repo_root, "GPT.configure_optimizers", g.allowed_imports)).text
    )
    assert [r.title for r in reply.requests] == ["Add dependency: lion_pytorch"]


def test_no_change_says_why_none_applies_or_none_is_allowed() -> None:
    g = Guidance("g001-000", "seed", 1, Evidence(), allowed_imports=("torch",))
    nothing = choose([], g, random.Random(0))
    assert nothing.edit is None and nothing.rationale == "no known edit applies"
    lion = dataclasses.replace(_edit("lion_optimizer"), needs=("lion_pytorch",))
    blocked = choose([lion], g, random.Random(0))
    assert blocked.edit is None and blocked.blocked is not None
    assert "needs an import that is not allowed (lion_optimizer needs lion_pytorch)" in (
        blocked.rationale
    )


def test_trial_noise_is_the_baselines_and_bundled_edits_count_for_less() -> None:
    base = {
        "mean": {"perplexity": 13.0, "mfu": 0.1},
        "std": {"perplexity": 0.065, "mfu": 0.05},
        "n": 3,
    }
    gens = [{"generation": 0, "ranking": [], "baseline": base}]
    # perplexity only: sqrt(2) x 0.5 % per run; MFU's spread enters with its weight
    assert abs(run_noise(gens) - 2**0.5 * 0.005) < 1e-12  # type: ignore[operator]
    assert run_noise(gens, 1.0, 0.25) > run_noise(gens)  # type: ignore[operator]
    assert run_noise([{"generation": 0, "baseline": {**base, "n": 1}}]) is None
    alone = [_rec("g001-000", "rmsnorm", 0.04)]
    bundled = alone + [_rec("g001-000", t, 0.04) for t in ("rotary", "qk_norm", "silu_mlp")]
    ev_alone, ev_bundled = (
        from_memory(FakeMemory(alone, gens)),
        from_memory(FakeMemory(bundled, gens)),
    )
    assert [t.companions for t in ev_bundled.trials] == [3, 3, 3, 3]
    draws = [
        statistics.mean(ev.draw("rmsnorm", random.Random(i)) for i in range(400))
        for ev in (ev_alone, ev_bundled)
    ]
    # one clean measurement of +4 % moves the arm near +4 %; the same change shared by four
    # edits moves it less: the other three edits' effects are in it too
    assert draws[0] > 0.03 and 0 < draws[1] < draws[0] - 0.01
