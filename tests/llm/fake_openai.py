"""A loopback OpenAI-compatible server for the tests, enforcing OpenAI's documented rules.

POST /v1/chat/completions answers from a queue of ``(status, headers, body, delay_s)``
or, when the queue is empty, with ``answer(request) -> text``. With
``enforce=True`` it refuses what OpenAI refuses, with OpenAI's error bodies:
reasoning models (``gpt-5*``, ``o1``/``o3``/``o4*``) answer 400
``unsupported_parameter`` to ``max_tokens`` and 400 ``unsupported_value`` to a
temperature other than 1; older models answer 400 to ``reasoning_effort``.
``keys`` (accepted bearer keys) and ``models`` (served models) make it answer
401 and 404 as OpenAI does. GET /props reports ``context`` like llama.cpp's server.
Every refusal is kept in ``refused``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REASONING = re.compile(r"^(gpt-5|o\d)")


def body(text: str, usage: bool = True, finish: str = "stop", model: str = "test-model-2024"):  # noqa: ANN201
    out: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": text}}
        ],
    }
    if usage:
        out["usage"] = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    return out


def _error(message: str, code: str, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


def openai_rules(req: dict[str, Any]) -> dict[str, Any] | None:
    """The 400 body OpenAI answers to ``req``, or None when it accepts it."""
    reasoning = bool(REASONING.match(str(req.get("model", ""))))
    if reasoning and "max_tokens" in req:
        return _error(
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "unsupported_parameter",
            "max_tokens",
        )
    if reasoning and req.get("temperature", 1) != 1:
        return _error(
            f"Unsupported value: 'temperature' does not support {req['temperature']} with this "
            "model. Only the default (1) value is supported.",
            "unsupported_value",
            "temperature",
        )
    if not reasoning and "reasoning_effort" in req:
        return _error(
            "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
            "unsupported_parameter",
            "reasoning_effort",
        )
    return None


class FakeServer:
    """See the module docstring."""

    def __init__(
        self,
        *,
        enforce: bool = False,
        answer: Callable[[dict[str, Any]], str] | None = None,
        keys: tuple[str, ...] = (),
        models: tuple[str, ...] = (),
        context: int | None = None,
    ) -> None:
        self.queue: list[tuple[int, dict[str, str], dict[str, Any], float]] = []
        self.requests: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.refused: list[tuple[int, dict[str, Any]]] = []
        self.auth = ""
        self.enforce, self.answer, self.keys, self.models = enforce, answer, keys, models
        self.context = context
        self.down = False  # True: every request answers 503, as a server in an outage
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True  # a handler still sleeping for a timeout test
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, req: dict[str, Any], auth: str) -> tuple[int, dict[str, str], Any, float]:
        """What the server answers to ``req`` (a JSON body) sent with ``auth``."""
        if self.down:
            return 503, {}, _error("the server is down", "server_error"), 0
        if self.keys and auth.removeprefix("Bearer ") not in self.keys:
            return 401, {}, _error("Incorrect API key provided.", "invalid_api_key"), 0
        model = str(req.get("model", ""))
        if self.models and model not in self.models:
            return 404, {}, _error(f"The model `{model}` does not exist.", "model_not_found"), 0
        refused = openai_rules(req) if self.enforce else None
        if refused is not None:
            return 400, {}, refused, 0
        if self.queue:
            return self.queue.pop(0)
        if self.answer is None:
            return 500, {}, _error("nothing queued", "server_error"), 0
        text = self.answer(req)
        out = body(text, model=model)
        prompt = sum(len(m["content"]) for m in req["messages"]) // 3
        out["usage"] = {"prompt_tokens": prompt, "completion_tokens": len(text) // 3}
        for k in self.usage:
            self.usage[k] += out["usage"][k]
        return 200, {}, out, 0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path == "/props" and server.context:
                    self._send(200, {}, {"default_generation_settings": {"n_ctx": server.context}})
                else:
                    self._send(404, {}, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                req = json.loads(self.rfile.read(length))
                server.requests.append(req)
                server.times.append(time.monotonic())
                server.auth = self.headers.get("authorization", "")
                status, headers, out, delay = server.reply(req, server.auth)
                if 400 <= status < 500:
                    server.refused.append((status, out))
                if delay:
                    time.sleep(delay)
                self._send(status, headers, out)

            def _send(self, status: int, headers: dict[str, str], out: Any) -> None:
                data = json.dumps(out).encode()
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

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
