"""A whole generation through the real wiring (``cli.app.build_engine``: the spend factory, the
openai backend) against a loopback server that enforces OpenAI's rules and answers with the
offline mutator's replies; training is the engine tests' fake evaluator.

An outage is not a verdict: a bad key or an unreachable server fails the preflight (exit 2)
before any offspring is made; a server that goes down mid-generation stops the run
(``RunStopped``, exit 3) with the offspring pending, and the next run carries on.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from darwin_bot.cli import build_engine, main
from darwin_bot.config import Config, from_dict
from darwin_bot.errors import RunStopped
from darwin_bot.llm import HeuristicLLM
from darwin_bot.spend import LEDGER_DIR, Ledger
from tests.engine.test_engine import FakeEvaluator
from tests.llm.fake_openai import FakeServer


def _heuristic(req: dict[str, Any]) -> str:
    return HeuristicLLM(seed=len(req["messages"][-1]["content"])).complete(req["messages"]).text


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer(enforce=True, answer=_heuristic)
    yield s
    s.close()


def _cfg(url: str, model: str = "gpt-5-mini", **llm: Any) -> Config:
    return from_dict(
        {
            "evolution": {"population": 3, "survivors": 1, "seed": 5},
            "budget": {"iters": 10, "repeats": 2},
            "fitness": {"mfu_weight": 0.0},
            "llm": {"backend": "openai", "model": model, "base_url": url, "max_retries": 0, **llm},
        }
    )


def test_a_generation_on_gpt5_mini_makes_its_calls_without_a_400(scratch, server) -> None:
    root = scratch()
    engine = build_engine(root, _cfg(server.url), evaluator=FakeEvaluator(), quiet=True)
    (summary,) = engine.run(1)
    assert server.refused == []
    assert len(server.requests) >= 1 + 2  # the preflight, then at least a call per offspring
    assert all("max_completion_tokens" in r and "temperature" not in r for r in server.requests)
    records = engine.offspring_records(1)
    assert len(records) == len(engine.plan(1)) and any(r.ok for r in records.values())
    ledger = Ledger(root / engine.cfg.memory.path / LEDGER_DIR)
    calls = ledger.calls()
    assert [c.kind for c in calls][:1] == ["preflight"]
    # spend as spent: the ledger is the server's usage, the summary the generation's share
    assert sum(c.prompt_tokens for c in calls) == server.usage["prompt_tokens"]
    assert sum(c.completion_tokens for c in calls) == server.usage["completion_tokens"]
    t = ledger.totals(1)
    assert summary.tokens == {"prompt": t.prompt_tokens, "completion": t.completion_tokens}
    assert sum(r.prompt_tokens for r in records.values()) == t.prompt_tokens


def test_a_server_down_mid_generation_stops_the_run_and_the_next_run_carries_on(
    scratch, server
) -> None:
    root = scratch()
    answered = 0

    def flaky(req: dict[str, Any]) -> str:
        nonlocal answered
        answered += 1
        if answered == 3:  # the preflight, one offspring's call, then the outage
            server.down = True
        return _heuristic(req)

    server.answer = flaky
    engine = build_engine(root, _cfg(server.url), evaluator=FakeEvaluator(), quiet=True)
    with pytest.raises(RunStopped, match="stays pending") as info:
        engine.run(1)
    assert info.value.exit_code == 3
    done = engine.offspring_records(1)
    assert len(done) < len(engine.plan(1))  # the one in progress has no record: it is pending
    assert not any("LLM" in r.reason for r in done.values())
    assert not any("HTTP 503" in m["reason"] for m in engine.memory.mutations())
    assert engine.summary(1) is None

    server.down = False
    again = build_engine(root, _cfg(server.url), evaluator=FakeEvaluator(), quiet=True)
    (summary,) = again.run(1)
    assert summary.generation == 1 and len(again.offspring_records(1)) == len(again.plan(1))
    assert again.completed() == 1


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("fault", ["bad key", "unreachable", "unknown model"])
def test_the_preflight_fails_with_one_line_and_exit_2_before_any_offspring(
    scratch, corpus: Path, capsys, monkeypatch, fault: str
) -> None:
    root = scratch()
    s = FakeServer(answer=_heuristic, keys=("sk-good",), models=("gpt-5-mini",))
    url, model = s.url, "gpt-5-mini"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-good")
    if fault == "bad key":
        monkeypatch.setenv("OPENAI_API_KEY", "sk-revoked")
    elif fault == "unreachable":
        url = f"http://127.0.0.1:{_unused_port()}/v1"
    else:
        model = "gpt-9-mega"
    (root / "darwin.toml").write_text(
        f'[budget]\ndata = "{corpus}"\npreset = "tiny"\n\n'
        f'[llm]\nbackend = "openai"\nmodel = "{model}"\nbase_url = "{url}"\nmax_retries = 0\n'
        "timeout_s = 5.0\n"
    )
    try:
        with pytest.raises(SystemExit) as info:
            main(["run", "--repo", str(root), "-g", "1", "--quiet"])
    finally:
        s.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2
    assert len([line for line in err if "error" in line]) == 1
    assert "preflight" in err[-1] and "nothing was spent on offspring" in err[-1]
    assert not (root / "memory" / "g001").exists() and not (root / "memory" / "g000").exists()
    assert len(s.requests) <= 1
