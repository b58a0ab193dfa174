"""A real model behind a real llama.cpp server: SmolLM2-135M-Instruct on node-llama-cpp.

``bash .ci/setup`` installs the server (``.ci/llama``); locally the tests skip
without it, in CI (``DARWIN_REQUIRE_TOOLS=1``) they fail. Training is the engine
tests' fake evaluator: what is real here is the LLM path, from the preflight
to the spend ledger, with a tiny completion budget so the model's replies are cut.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from benchmarks import _llama_server as llama
from darwin_bot.cli import app, main
from darwin_bot.config import Config, LLMConfig
from darwin_bot.core import Outcome
from darwin_bot.llm import OpenAIBackend
from darwin_bot.mutation import MutationContext, mutate_tree
from darwin_bot.spend import LEDGER_DIR, Ledger
from tests.conftest import require_tool
from tests.engine.test_engine import FakeEvaluator

pytestmark = pytest.mark.slow
MAX_TOKENS = 48


@pytest.fixture(scope="module")
def need_server() -> None:
    why = llama.missing()
    require_tool(not why, f"local model server: {why}")


def _backend(url: str, **llm: object) -> OpenAIBackend:
    cfg = LLMConfig(backend="openai", model=llama.MODEL_ID, base_url=url, max_retries=0, **llm)  # type: ignore[arg-type]
    return OpenAIBackend(cfg)


def test_a_prompt_over_the_servers_window_fails_its_chunk_only(
    need_server: None, tmp_path: Path, repo_root: Path
) -> None:
    """train.py's config globals (a 4,400-character chunk) cannot fit a 2,048-token server
    even with all the optional context left out: the window the server reports keeps the
    prompt from being sent; told a larger window than it has, the server's own 400 fails that
    chunk only."""
    shutil.copytree(repo_root / "seed", tmp_path / "seed")
    ctx = MutationContext("g001-000", 1, ("p",), None, None)
    only = ("seed/train.py::globals",)

    def run(llm: OpenAIBackend):  # noqa: ANN202
        return mutate_tree(
            tmp_path, ctx, llm, Config(), commit=lambda a: "", smoke=lambda t: None, only=only
        )  # type: ignore[arg-type,return-value]

    with llama.LlamaServer(ctx=2048) as server:
        fitted = _backend(server.url, max_tokens=MAX_TOKENS)
        assert (fitted.window().context_tokens, fitted.window().source) == (2048, "server")
        out = run(fitted)
        (event,) = out.events
        assert "does not fit the model's context window" in event.reason
        assert event.left_out == (
            "memory",
            "structure",
            "changed",
            "requests",
            "globals",
            "metrics",
        )
        assert server.stats()["requests"] == 0  # nothing sent
        out = run(_backend(server.url, max_tokens=MAX_TOKENS, context_tokens=8192))
    assert out.status == "rejected" and out.events[0].outcome is Outcome.REJECTED
    assert "exceeds the available context size" in out.events[0].reason


def _toml(root: Path, corpus: Path, url: str) -> None:
    (root / "darwin.toml").write_text(
        "[evolution]\npopulation = 2\nsurvivors = 1\nmutation_rate = 0.01\n\n"
        f'[budget]\ndata = "{corpus}"\npreset = "tiny"\nrepeats = 1\n\n'
        f'[llm]\nbackend = "openai"\nmodel = "{llama.MODEL_ID}"\nbase_url = "{url}"\n'
        f"max_tokens = {MAX_TOKENS}\nmax_retries = 0\ntimeout_s = 600.0\n"
    )


def _kill_after_preflight(server: llama.LlamaServer, seen: dict[str, int]) -> threading.Thread:
    """Kill ``server`` once it answered the preflight call: the run is then mid-generation."""

    def watch() -> None:
        while True:
            stats = server.stats()
            if stats["requests"] >= 1:
                seen.update(stats)
                server.kill()
                return
            time.sleep(0.1)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def test_a_real_offspring_counts_its_usage_and_a_killed_server_leaves_it_pending(
    need_server: None, scratch, corpus: Path, capsys, monkeypatch
) -> None:
    root = scratch()
    monkeypatch.setattr(app, "TrustedEvaluator", lambda *a, **k: FakeEvaluator())
    seen: dict[str, int] = {}
    with llama.LlamaServer(ctx=2048) as first:
        _toml(root, corpus, first.url)
        killer = _kill_after_preflight(first, seen)
        with pytest.raises(SystemExit) as stopped:
            main(["run", "--repo", str(root), "-g", "1", "--quiet"])
        killer.join(timeout=30)
    err = capsys.readouterr().err
    assert stopped.value.code == 3, err  # stopped, resume later: not a verdict
    assert "the LLM stopped answering" in err and "stays pending" in err
    memory = root / "memory"
    assert (memory / "g001" / "plan.json").exists()
    assert not list((memory / "g001").glob("offspring/*.json"))  # the offspring is pending

    with llama.LlamaServer(ctx=2048) as second:
        _toml(root, corpus, second.url)
        main(["run", "--repo", str(root), "-g", "1", "--quiet"])  # carries on: exit 0
        served = second.stats()
    assert list((memory / "g001").glob("offspring/*.json"))
    mutations = [m for m in _records(memory) if m["agent"] == "g001-000"]
    assert any(m["completion_tokens"] > 0 for m in mutations)  # real replies, counted
    for m in mutations:  # a reply that used the whole budget is reported as cut, not garbage
        if m["completion_tokens"] >= MAX_TOKENS:
            assert "cut at the token limit" in m["reason"], m
    calls = Ledger(memory / LEDGER_DIR).calls()
    assert sum(c.prompt_tokens for c in calls) == seen["prompt_tokens"] + served["prompt_tokens"]
    assert sum(c.completion_tokens for c in calls) == (
        seen["completion_tokens"] + served["completion_tokens"]
    )
    assert len(calls) == seen["requests"] + served["requests"]


def _records(memory: Path) -> list[dict]:
    import json

    return [json.loads(p.read_text()) for p in sorted(memory.glob("g001/mutations/*.json"))]
