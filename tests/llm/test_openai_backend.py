"""The openai backend with the real openai client against a loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from darwin_bot.config import Config, LLMConfig
from darwin_bot.errors import ConfigError, LLMError, LLMTransientError
from darwin_bot.llm.openai_backend import OpenAIBackend, price_for
from darwin_bot.mutation import MutationContext, mutate_tree

MESSAGES = [{"role": "user", "content": "hello"}]


def _body(text: str, usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "test-model-2024",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    return body


class FakeServer:
    """Answers POST /v1/chat/completions from a queue of (status, headers, body, delay_s)."""

    def __init__(self) -> None:
        self.queue: list[tuple[int, dict[str, str], dict[str, Any], float]] = []
        self.requests: list[dict[str, Any]] = []
        self.times: list[float] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length", 0))
                server.requests.append(json.loads(self.rfile.read(length)))
                server.times.append(time.monotonic())
                server.auth = self.headers.get("authorization", "")
                status, headers, body, delay = server.queue.pop(0)
                if delay:
                    time.sleep(delay)
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up

            def log_message(self, *args: object) -> None:
                pass

        self.auth = ""
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = (
            True  # a handler still sleeping for the timeout test is not waited for
        )
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


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
    server.queue.append((400, {}, {"error": {"message": "bad model"}}, 0))
    with pytest.raises(LLMError, match="HTTP 400") as info:
        _backend(server).complete(MESSAGES)  # type: ignore[arg-type]
    assert not isinstance(info.value, LLMTransientError)
    assert len(server.requests) == 1


def test_timeout_is_retried_then_raised(server: FakeServer) -> None:
    server.queue += [(200, {}, _body("late"), 1.5), (200, {}, _body("late"), 1.5)]
    t0 = time.monotonic()
    with pytest.raises(LLMTransientError, match="timed out after up to 2 tries"):
        _backend(server, timeout_s=0.3, max_retries=1).complete(MESSAGES)  # type: ignore[arg-type]
    assert time.monotonic() - t0 < 3.0


def test_transient_failure_becomes_a_rejected_outcome(
    server: FakeServer, tmp_path: Path, repo_root: Path
) -> None:
    """The pipeline turns an LLM outage into a rejected offspring with files untouched, not a crash."""
    import shutil

    shutil.copytree(repo_root / "seed", tmp_path / "seed")
    before = (tmp_path / "seed" / "model.py").read_text()
    server.queue += [(503, {}, {"error": {"message": "down"}}, 0)] * 2
    ctx = MutationContext("g001-000", 1, ("p",), None, None)
    out = mutate_tree(
        tmp_path,
        ctx,
        _backend(server, max_retries=1),
        Config(),
        commit=lambda a: pytest.fail("nothing valid to commit"),  # type: ignore[arg-type,return-value]
        smoke=lambda t: pytest.fail("nothing to smoke"),
    )  # type: ignore[arg-type,return-value]
    assert out.status == "rejected"
    assert "LLM failed" in out.reason and "HTTP 503" in out.reason
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
