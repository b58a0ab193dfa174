"""LLM spend: the price table, the persisted ledger and its caps, the model bandit, the engine seam."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from darwin_bot.cli import make_scratch_repo
from darwin_bot.config import from_dict
from darwin_bot.engine import Engine
from darwin_bot.errors import ConfigError, SpendCapReached
from darwin_bot.git import GitRepo
from darwin_bot.llm import Completion, HeuristicLLM
from darwin_bot.llm.scripted import ScriptedLLM
from darwin_bot.spend import (
    UCB1,
    ArmStats,
    BudgetedLLM,
    Call,
    Caps,
    Ledger,
    PriceTable,
    SpendState,
    build_factory,
    model_table,
    spend_markdown,
    spend_text,
)
from tests.engine.test_engine import FakeEvaluator

MSG = [{"role": "user", "content": "mutate this"}]


def _script(tmp_path: Path, n: int, cost: float, model: str = "priced-model") -> Path:
    path = tmp_path / "replies.jsonl"
    lines = [{"text": f"NO CHANGE: {i}", "model": model, "cost_usd": cost} for i in range(n)]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return path


def _state(folder: Path, total: float | None = None, per_gen: float | None = None) -> SpendState:
    msgs: list[str] = []
    state = SpendState(Ledger(folder), Caps(total, per_gen), PriceTable.load())
    state.say = msgs.append
    state.messages = msgs  # type: ignore[attr-defined]
    return state


# -- prices --------------------------------------------------------------------------------
def test_shipped_prices_know_dated_names_and_llm_prices_override() -> None:
    table = PriceTable.load()
    assert table.taken >= "2026-01-01"
    mini = table.cost("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000)
    assert mini == pytest.approx(0.15 + 0.60)
    assert table.price("gpt-4o-mini").source.startswith("https://")  # type: ignore[union-attr]
    over = PriceTable.load({"gpt-4o-mini": (0.001, 0.002)})  # USD per 1k tokens
    assert over.cost("gpt-4o-mini", 1000, 1000) == pytest.approx(0.003)


def test_an_unknown_model_costs_unknown_never_zero() -> None:
    table = PriceTable.load()
    assert table.cost("my-local-llama", 500, 500) is None
    assert spend_text(0.0, 3, 3) == "unknown"
    assert spend_text(0.25, 4, 1) == "$0.2500 + 1 call of unknown cost"


# -- caps and the ledger ---------------------------------------------------------------------
def test_the_cap_stops_calls_says_so_once_and_a_higher_cap_continues(tmp_path: Path) -> None:
    folder = tmp_path / "memory" / "spend"
    scripted = ScriptedLLM.from_file(_script(tmp_path, 6, 0.01))
    state = _state(folder, total=0.025)
    llm = BudgetedLLM(scripted, "priced-model", state, generation=1)
    assert llm.complete(MSG).cost_usd == pytest.approx(0.01)  # type: ignore[arg-type]
    llm.complete(MSG)  # type: ignore[arg-type]
    # spent 0.02; the next call is estimated at the mean (0.01) and would pass 0.025
    for _ in range(2):
        with pytest.raises(SpendCapReached, match=r"llm.max_usd = \$0.0250; raise it"):
            llm.complete(MSG)  # type: ignore[arg-type]
    assert len(state.messages) == 1  # type: ignore[attr-defined]
    assert scripted.remaining == 4, "a refused call never reaches the backend"

    # A new process (a rerun) reads the ledger: the same cap still stops it; a higher one continues.
    again = _state(folder, total=0.025)
    with pytest.raises(SpendCapReached):
        BudgetedLLM(scripted, "priced-model", again, 2).complete(MSG)  # type: ignore[arg-type]
    higher = _state(folder, total=0.05)
    BudgetedLLM(scripted, "priced-model", higher, 2).complete(MSG)  # type: ignore[arg-type]
    assert higher.ledger.totals().usd == pytest.approx(0.03)
    assert higher.ledger.totals().calls == 3
    assert [s.generation for s in Ledger(folder).stops()] == [1, 2]


def test_the_per_generation_cap_resets_with_the_next_generation(tmp_path: Path) -> None:
    scripted = ScriptedLLM.from_file(_script(tmp_path, 5, 0.01))
    state = _state(tmp_path / "spend", per_gen=0.015)
    BudgetedLLM(scripted, "m", state, 1).complete(MSG)  # type: ignore[arg-type]
    with pytest.raises(SpendCapReached, match="generation 1"):
        BudgetedLLM(scripted, "m", state, 1).complete(MSG)  # type: ignore[arg-type]
    BudgetedLLM(scripted, "m", state, 2).complete(MSG)  # type: ignore[arg-type]
    assert state.ledger.totals(2).calls == 1


def test_a_call_of_unknown_price_is_recorded_as_unknown(tmp_path: Path) -> None:
    scripted = ScriptedLLM([Completion("NO CHANGE: x", "my-local-llama", 100, 50)])
    state = _state(tmp_path / "spend")
    BudgetedLLM(scripted, "my-local-llama", state, 1).complete(MSG)  # type: ignore[arg-type]
    (call,) = Ledger(tmp_path / "spend").calls()
    assert call.cost_usd is None
    assert "LLM spend: unknown over 1 calls" in spend_markdown(Ledger(tmp_path / "spend"))


def test_priced_by_the_table_when_the_backend_gives_no_cost(tmp_path: Path) -> None:
    scripted = ScriptedLLM([Completion("NO CHANGE: x", "gpt-4o-mini", 1_000_000, 0)])
    state = _state(tmp_path / "spend")
    c = BudgetedLLM(scripted, "gpt-4o-mini", state, 1).complete(MSG)  # type: ignore[arg-type]
    assert c.cost_usd == pytest.approx(0.15)


def test_config_rejects_bad_caps_and_model_entries() -> None:
    with pytest.raises(ConfigError, match="must be positive"):
        from_dict({"llm": {"max_usd": 0}})
    with pytest.raises(ConfigError, match=r"llm.models\[0\]: unknown key url"):
        from_dict({"llm": {"models": [{"model": "a", "url": "x"}]}})
    with pytest.raises(ConfigError, match="needs a model name"):
        from_dict({"llm": {"models": [{"base_url": "http://x"}]}})


# -- the bandit ----------------------------------------------------------------------------
def _arm(model: str, offspring: int, gain: float, usd: float) -> ArmStats:
    return ArmStats(
        model, calls=offspring, offspring=offspring, scored=offspring, gain=gain, usd=usd
    )


def test_ucb1_tries_every_model_then_prefers_gain_per_dollar() -> None:
    b = UCB1(("cheap", "dear"))
    stats = {"cheap": ArmStats("cheap"), "dear": ArmStats("dear")}
    assert [b.choose(stats).model for _ in range(2)] == ["cheap", "dear"]
    # Same gain, ten times the price: the cheap model wins once both are well tried.
    b = UCB1(("cheap", "dear"))
    stats = {"cheap": _arm("cheap", 40, 1.0, 0.1), "dear": _arm("dear", 40, 1.0, 1.0)}
    assert b.choose(stats).model == "cheap"
    # Twice the price: still explored, once the cheap one's picks (pending pulls) pile up.
    b = UCB1(("cheap", "dear"))
    stats = {"cheap": _arm("cheap", 10, 1.0, 0.1), "dear": _arm("dear", 10, 1.0, 0.2)}
    picks = [b.choose(stats).model for _ in range(100)]
    assert 0 < picks.count("dear") < picks.count("cheap")


def test_ucb1_falls_back_to_gain_per_offspring_when_a_price_is_unknown() -> None:
    b = UCB1(("a", "b"))
    a, bb = _arm("a", 10, 2.0, 0.5), _arm("b", 10, 0.0, 0.0)
    bb.unknown_cost_calls = 10
    choice = b.choose({"a": a, "b": bb})
    assert choice.model == "a" and "gain per offspring" in choice.why
    table = model_table({"a": a, "b": bb})
    assert "| `b` | 10 | unknown |" in table and "| `a` | 10 | $0.5000 |" in table


# -- through the engine --------------------------------------------------------------------
class PricedMutator:
    """The offline mutator's edits, billed like a paid model (each reply costs ``usd``)."""

    def __init__(self, seed: int, usd: float) -> None:
        self.inner = HeuristicLLM(seed=seed)
        self.name = "priced"
        self.usd = usd

    def complete(self, messages):  # noqa: ANN001, ANN201
        reply = self.inner.complete(messages)
        return dataclasses.replace(reply, model="priced-model", cost_usd=self.usd)


def _engine(root: Path, max_usd: float, msgs: list[str]) -> Engine:
    cfg = from_dict(
        {
            "evolution": {"population": 4, "survivors": 2, "seed": 3, "mutation_rate": 0.01},
            "budget": {"iters": 10, "repeats": 2},
            "fitness": {"mfu_weight": 0.0},
            "llm": {"backend": "heuristic", "max_usd": max_usd},
        }
    )
    factory = build_factory(
        cfg, root / "memory", lambda seed: PricedMutator(seed, 0.01), say=msgs.append
    )
    engine = Engine(
        GitRepo(root, prefix=cfg.evolution.branch_prefix),
        cfg,
        evaluator=FakeEvaluator(),
        llm_factory=factory,
    )
    factory.generation = engine.next_generation
    return engine


def test_the_run_stops_at_the_cap_and_a_higher_cap_continues(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    make_scratch_repo(root, "")
    msgs: list[str] = []
    engine = _engine(root, 0.045, msgs)
    engine.run(3)
    assert engine.completed() == 1, "the run stops after the generation in which the cap hit"
    assert len(msgs) == 1 and "llm.max_usd = $0.0450" in msgs[0]
    records = engine.offspring_records(1)
    assert len(records) == 3, "every planned offspring has its outcome: nothing half-made"
    capped = [r for r in records.values() if "spend cap" in r.reason]
    assert capped, records
    spent = Ledger(root / "memory" / "spend").totals()
    assert spent.usd <= 0.045 + 1e-9
    engine.commit_memory("test: memory")  # whatever is left is committed; nothing may stay out
    assert not engine.repo.git("status", "--porcelain", "memory").strip()

    # Same cap again: nothing starts, and it says so once.
    msgs2: list[str] = []
    again = _engine(root, 0.045, msgs2)
    again.run(1)
    assert again.completed() == 1 and len(msgs2) == 1 and "not started" in msgs2[0]

    # A higher cap continues the interrupted run from generation 2.
    msgs3: list[str] = []
    more = _engine(root, 1.0, msgs3)
    more.run(1)
    assert more.completed() == 3 and not msgs3
    assert Ledger(root / "memory" / "spend").totals().usd > spent.usd
    models = {m["model"] for m in more.memory.mutations() if m["model"]}
    assert models == {"priced-model"}
    assert isinstance(Call(1, "m", 0, 0, None), Call)


def test_the_spend_table_names_the_model_that_answered(tmp_path: Path) -> None:
    """The offline mutator answers for the configured llm.model: its calls are its own row,
    and the configured model, which made none, is not shown beside the total."""
    from darwin_bot.config import from_dict
    from darwin_bot.spend import spend_report
    from darwin_bot.store import MemoryStore

    cfg = from_dict({"llm": {"backend": "heuristic", "model": "gpt-4o-mini"}})
    memory = MemoryStore(tmp_path / "memory")
    ledger = Ledger(tmp_path / "memory" / "spend")
    for _ in range(3):
        ledger.record(Call(1, "heuristic", 0, 0, 0.0, "2026-01-01T00:00:00Z", "gpt-4o-mini"))
    report = spend_report(cfg, memory)
    assert "over 3 calls" in report
    assert "| `heuristic` | 3 |" in report, report
    assert "gpt-4o-mini" not in report, report
    # Nothing called yet: the configured model is the one row, with no calls.
    empty = spend_report(cfg, MemoryStore(tmp_path / "other"))
    assert "| `gpt-4o-mini` | 0 |" in empty
