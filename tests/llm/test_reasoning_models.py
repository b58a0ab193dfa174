"""Today's OpenAI models against a loopback server that enforces OpenAI's documented rules.

Reasoning models (gpt-5*, o-series) refuse ``max_tokens`` and any temperature
but 1; the backend sends what each family takes, and learns from a 400 it did
not expect (each parameter once) instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from darwin_bot.config import LLMConfig
from darwin_bot.errors import LLMAuthError, LLMRequestError
from darwin_bot.llm import OpenAIBackend
from darwin_bot.llm.params import is_reasoning
from tests.llm.fake_openai import FakeServer, body, openai_rules

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer(enforce=True, answer=lambda req: "SUMMARY: ok")
    yield s
    s.close()


def _backend(server: FakeServer, **llm: Any) -> OpenAIBackend:
    values: dict[str, Any] = {"backend": "openai", "base_url": server.url, "max_retries": 0}
    values.update(llm)
    return OpenAIBackend(LLMConfig(**values))


@pytest.mark.parametrize("model", ["gpt-5", "gpt-5-mini", "gpt-5-nano", "o3-mini", "o4-mini"])
def test_a_reasoning_model_gets_what_it_takes_at_the_first_call(
    server: FakeServer, model: str
) -> None:
    c = _backend(server, model=model, temperature=0.7, max_tokens=300).complete(MESSAGES)  # type: ignore[arg-type]
    assert c.text == "SUMMARY: ok" and server.refused == []
    (sent,) = server.requests
    assert sent["max_completion_tokens"] == 300
    assert "max_tokens" not in sent and "temperature" not in sent


def test_the_fake_server_refuses_what_openai_refuses() -> None:
    """The rules themselves: the backend's tests would prove nothing against a lenient fake."""
    assert openai_rules({"model": "gpt-5-mini", "max_tokens": 5})["error"]["param"] == "max_tokens"  # type: ignore[index]
    assert openai_rules({"model": "o3", "temperature": 0.7})["error"]["code"] == "unsupported_value"  # type: ignore[index]
    assert openai_rules({"model": "gpt-5", "temperature": 1, "max_completion_tokens": 5}) is None
    assert openai_rules({"model": "gpt-4o-mini", "max_tokens": 5, "temperature": 0.7}) is None
    assert is_reasoning("openai/gpt-5-mini") and not is_reasoning("gpt-4o")


def test_an_older_model_keeps_its_temperature_and_max_tokens_on_a_local_server(
    server: FakeServer,
) -> None:
    _backend(server, model="qwen2.5-coder", temperature=0.3, max_tokens=50).complete(MESSAGES)  # type: ignore[arg-type]
    sent = server.requests[0]
    assert (sent["temperature"], sent["max_tokens"]) == (0.3, 50)
    assert "max_completion_tokens" not in sent


def test_reasoning_effort_is_sent_and_unlearned_where_refused(server: FakeServer) -> None:
    _backend(server, model="gpt-5-mini", reasoning_effort="low").complete(MESSAGES)  # type: ignore[arg-type]
    assert server.requests[-1]["reasoning_effort"] == "low" and server.refused == []
    older = _backend(server, model="gpt-4o-mini", reasoning_effort="low")
    older.complete(MESSAGES)  # type: ignore[arg-type]
    older.complete(MESSAGES)  # type: ignore[arg-type]
    assert len(server.refused) == 1  # learned once: the third request went without it
    assert "reasoning_effort" not in server.requests[-1]


def test_a_400_unsupported_parameter_is_learned_once(server: FakeServer) -> None:
    """A model the table does not know as a reasoning model, behind a server that says so."""
    server.enforce = False
    refuse = openai_rules({"model": "gpt-5", "max_tokens": 1})
    refuse_t = openai_rules({"model": "gpt-5", "temperature": 0.7})
    server.queue += [(400, {}, refuse, 0), (400, {}, refuse_t, 0)]  # type: ignore[list-item]
    llm = _backend(server, model="house-reasoner", max_tokens=99)
    assert llm.complete(MESSAGES).text == "SUMMARY: ok"  # type: ignore[arg-type]
    llm.complete(MESSAGES)  # type: ignore[arg-type]
    first, second, third, fourth = server.requests
    assert "max_tokens" in first and second["max_completion_tokens"] == 99
    assert "temperature" not in third and "max_tokens" not in fourth
    assert "temperature" not in fourth


def test_a_400_for_another_reason_is_that_prompts_failure(server: FakeServer) -> None:
    server.enforce = False
    server.queue.append((400, {}, {"error": {"message": "context length exceeded"}}, 0))
    with pytest.raises(LLMRequestError, match="context length exceeded"):
        _backend(server, model="gpt-4o").complete(MESSAGES)  # type: ignore[arg-type]
    assert len(server.requests) == 1


def test_a_refused_key_and_an_unknown_model_are_auth_errors() -> None:
    s = FakeServer(answer=lambda req: "x", keys=("sk-good",), models=("gpt-5-mini",))
    try:
        with pytest.raises(LLMAuthError, match="refused the key") as info:
            _backend(s, model="gpt-5-mini").preflight()
        assert info.value.exit_code == 2
        with pytest.raises(LLMAuthError, match="does not serve model 'gpt-9'"):
            OpenAIBackend(
                LLMConfig(backend="openai", base_url=s.url, model="gpt-9", max_retries=0),
                api_key="sk-good",
            ).preflight()
    finally:
        s.close()


def test_the_window_comes_from_the_server_and_bounds_the_completion_budget() -> None:
    s = FakeServer(answer=lambda req: "x", context=2048)
    try:
        llm = _backend(s, model="SmolLM2", max_tokens=4096)
        assert (llm.window().context_tokens, llm.window().source) == (2048, "server")
        llm.complete([{"role": "user", "content": "y" * 3000}])
        sent = s.requests[-1]["max_tokens"]
        assert sent + llm.window().tokens([{"role": "user", "content": "y" * 3000}]) <= 2048
        with pytest.raises(LLMRequestError, match="no room for a reply"):
            llm.complete([{"role": "user", "content": "y" * 7000}])
    finally:
        s.close()
    assert (
        _backend(s, model="gpt-5-mini")
        .params.window(LLMConfig(model="gpt-5-mini"), None)
        .context_tokens
        == 400_000
    )


def test_a_reply_cut_at_the_limit_says_so(server: FakeServer) -> None:
    server.queue.append((200, {}, body("", finish="length"), 0))
    server.queue[-1][2]["choices"][0]["message"]["content"] = None  # a reasoning model's empty cut
    c = _backend(server, model="gpt-5-mini").complete(MESSAGES)  # type: ignore[arg-type]
    assert (c.text, c.finish_reason) == ("", "length")


def test_openai_base_url_from_the_environment_is_the_server_used(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The action passes the server as OPENAI_BASE_URL: it is a local server, not OpenAI."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    llm = OpenAIBackend(LLMConfig(backend="openai", model="qwen2.5-coder"), api_key="sk-x")
    llm.complete(MESSAGES)  # type: ignore[arg-type]
    assert llm.where == server.url and "max_tokens" in server.requests[-1]
