"""The openai backend with the real openai client against a loopback OpenAI-compatible server."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from darwin_bot.config import Config, LLMConfig
from darwin_bot.errors import ConfigError, LLMRequestError, LLMTransientError
from darwin_bot.llm.openai_backend import OpenAIBackend, price_for
from darwin_bot.mutation import MutationContext, mutate_tree
from tests.llm.fake_openai import FakeServer
from tests.llm.fake_openai import body as _body

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


def _backend(server: FakeServer, **llm: Any) -> OpenAIBackend:
    values: dict[str, Any] = {
        "backend": "openai",
        "model": "test-model",
        "base_url": server.url,
        "max_retries": 2,
        "timeout_s": 5.0,
        "prices": {"test-model": (0.01, 0.03)},
    }
    values.update(llm)
    return OpenAIBackend(LLMConfig(**values))


def test_normal_reply_counts_tokens_and_cost(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    server.queue.append((200, {}, _body("SUMMARY: hi"), 0))
    c = _backend(server, temperature=0.3, max_tokens=77).complete(MESSAGES)  # type: ignore[arg-type]
    assert c.text == "SUMMARY: hi"
    assert c.model == "test-model-2024"
    assert (c.prompt_tokens, c.completion_tokens, c.usage_reported) == (1000, 500, True)
    assert c.cost_usd == pytest.approx(
        1.0 * 0.01 + 0.5 * 0.03
    )  # prefix match prices the dated model
    sent = server.requests[0]
    assert (sent["model"], sent["temperature"], sent["max_tokens"]) == ("test-model", 0.3, 77)
    assert server.auth == "Bearer sk-secret-value"


def test_usage_absent_counts_zero_and_warns_once(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.queue += [(200, {}, _body("a", usage=False), 0), (200, {}, _body("b", usage=False), 0)]
    llm = _backend(server)
    with caplog.at_level(logging.WARNING, logger="darwin_bot.llm.openai_backend"):
        first, second = llm.complete(MESSAGES), llm.complete(MESSAGES)  # type: ignore[arg-type]
    assert (first.prompt_tokens, first.completion_tokens, first.usage_reported) == (0, 0, False)
    assert second.text == "b" and second.cost_usd == 0.0
    assert sum("reports no token usage" in r.message for r in caplog.records) == 1


def test_429_then_success_honours_retry_after(server: FakeServer) -> None:
    server.queue += [
        (429, {"retry-after": "0.3"}, {"error": {"message": "slow down"}}, 0),
        (200, {}, _body("done"), 0),
    ]
    c = _backend(server).complete(MESSAGES)  # type: ignore[arg-type]
    assert c.text == "done"
    assert len(server.requests) == 2
    assert server.times[1] - server.times[0] >= 0.28  # the client waited what the server asked


def test_500_twice_then_transient_error(server: FakeServer) -> None:
    err = {"error": {"message": "boom"}}
    server.queue += [(500, {}, err, 0), (502, {}, err, 0)]
    with pytest.raises(LLMTransientError, match="HTTP 502 after up to 2 tries"):
        _backend(server, max_retries=1).complete(MESSAGES)  # type: ignore[arg-type]
    assert len(server.requests) == 2


def test_400_is_not_retried(server: FakeServer) -> None:
    server.queue.append((400, {}, {"error": {"message": "prompt too long"}}, 0))
    with pytest.raises(LLMRequestError, match="HTTP 400") as info:
        _backend(server).complete(MESSAGES)  # type: ignore[arg-type]
    assert not isinstance(info.value, LLMTransientError)
    assert len(server.requests) == 1


def test_timeout_is_retried_then_raised(server: FakeServer) -> None:
    server.queue += [(200, {}, _body("late"), 1.5), (200, {}, _body("late"), 1.5)]
    t0 = time.monotonic()
    with pytest.raises(LLMTransientError, match="timed out after up to 2 tries"):
        _backend(server, timeout_s=0.3, max_retries=1).complete(MESSAGES)  # type: ignore[arg-type]
    assert time.monotonic() - t0 < 3.0


def test_transient_failure_is_raised_with_the_files_untouched(
    server: FakeServer, tmp_path: Path, repo_root: Path
) -> None:
    """An LLM outage is not a verdict: the pipeline raises it on (the engine stops the run and
    the offspring stays pending), with the files as they were."""
    import shutil

    shutil.copytree(repo_root / "seed", tmp_path / "seed")
    before = (tmp_path / "seed" / "model.py").read_text()
    server.queue += [(503, {}, {"error": {"message": "down"}}, 0)] * 2
    ctx = MutationContext("g001-000", 1, ("p",), None, None)
    with pytest.raises(LLMTransientError, match="HTTP 503"):
        mutate_tree(
            tmp_path,
            ctx,
            _backend(server, max_retries=1),
            Config(),
            commit=lambda a: pytest.fail("nothing valid to commit"),  # type: ignore[arg-type,return-value]
            smoke=lambda t: pytest.fail("nothing to smoke"),
        )  # type: ignore[arg-type,return-value]
    assert (tmp_path / "seed" / "model.py").read_text() == before


def test_key_required_without_base_url() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIBackend(LLMConfig(backend="openai"))


def test_key_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-print")
    assert "sk-do-not-print" not in repr(OpenAIBackend(LLMConfig(backend="openai")))


def test_price_table_lookup() -> None:
    table = {"gpt-4o": (1.0, 2.0), "gpt-4o-mini": (0.1, 0.2)}
    assert price_for(table, "gpt-4o-mini-2024-07-18") == (0.1, 0.2)  # longest prefix
    assert price_for(table, "other", "gpt-4o") == (1.0, 2.0)
    assert price_for(table, "llama3") == (0.0, 0.0)


def test_a_retry_after_over_two_minutes_is_not_slept_through(server: FakeServer) -> None:
    server.queue += [(429, {"retry-after": "500"}, {"error": {"message": "later"}}, 0)]
    t0 = time.monotonic()
    with pytest.raises(LLMTransientError, match="HTTP 429"):
        _backend(server).complete(MESSAGES)  # type: ignore[arg-type]
    assert len(server.requests) == 1 and time.monotonic() - t0 < 5.0
