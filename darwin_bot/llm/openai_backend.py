"""The ``openai`` backend: any OpenAI-compatible chat-completions server.

What is sent depends on the model (see :mod:`darwin_bot.llm.params`): reasoning
models (the gpt-5 family, the o-series) get ``max_completion_tokens``, no
temperature and ``llm.reasoning_effort`` when set; other models on OpenAI get
``max_completion_tokens`` and the temperature; on any other server the widely
understood ``max_tokens``. A server that answers 400 ``unsupported_parameter``
or ``unsupported_value`` for one of these is believed once: the backend learns
to send the other name, or nothing, and asks again.

Retries are the openai client's own (``max_retries = llm.max_retries``): it
retries 408, 409, 429, 5xx, timeouts and dropped connections with exponential
backoff and jitter, honours ``Retry-After`` / ``retry-after-ms`` up to two
minutes, and gives up at once when the server asks for a longer wait. This
module adds no retry loop for those; it maps what is left when the client gives
up: a transient failure is ``LLMTransientError`` (the run stops, resumable), a
refused key or unknown model ``LLMAuthError``, a refused prompt (400)
``LLMRequestError`` (that chunk fails). openai's exceptions never leave this module.

The key is read from ``OPENAI_API_KEY`` and never logged; a local ``base_url``
(vLLM, Ollama, llama.cpp) works with a dummy key.
"""

from __future__ import annotations

import dataclasses
import logging
import os

import openai

from darwin_bot.config import LLMConfig
from darwin_bot.errors import (
    ConfigError,
    LLMAuthError,
    LLMError,
    LLMReplyError,
    LLMRequestError,
    LLMTransientError,
)
from darwin_bot.llm.base import Completion, Message
from darwin_bot.llm.context import Window
from darwin_bot.llm.params import Params, learnable, server_window

log = logging.getLogger(__name__)
DUMMY_KEY = "sk-local-no-key"
PREFLIGHT: list[Message] = [{"role": "user", "content": "Reply with the word OK."}]
PREFLIGHT_TOKENS = 16


def price_for(prices: dict[str, tuple[float, float]], *models: str) -> tuple[float, float]:
    """USD per 1k (prompt, completion) tokens for the first of ``models`` the table knows.

    An exact name wins; else the longest table key that prefixes the name
    (``gpt-4o-mini`` prices ``gpt-4o-mini-2024-07-18``); else free.
    """
    for m in models:
        if m in prices:
            return prices[m]
    for m in models:
        keys = [k for k in prices if m.startswith(k)]
        if keys:
            return prices[max(keys, key=len)]
    return (0.0, 0.0)


class OpenAIBackend:
    """``LLM`` over the openai client; see the module docstring for parameters and retries."""

    def __init__(self, cfg: LLMConfig, *, api_key: str | None = None) -> None:
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        if not key and not cfg.base_url:
            raise ConfigError(
                "llm.backend = 'openai' needs OPENAI_API_KEY in the environment, or llm.base_url "
                "pointing at a local OpenAI-compatible server"
            )
        # The openai client reads OPENAI_BASE_URL when base_url is unset (the action's input):
        # what is sent and where the window is asked depend on the server actually used.
        cfg = dataclasses.replace(
            cfg, base_url=cfg.base_url or os.environ.get("OPENAI_BASE_URL", "")
        )
        self.cfg = cfg
        self.name = f"openai:{cfg.model}"
        self.where = cfg.base_url or "api.openai.com"
        self.params = Params.for_model(cfg)
        self._key = key or DUMMY_KEY
        self._warned_usage = False
        self._window: Window | None = None
        self._client = openai.OpenAI(
            base_url=cfg.base_url or None,
            api_key=self._key,
            timeout=cfg.timeout_s,
            max_retries=cfg.max_retries,
        )

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(model={self.cfg.model!r}, base_url={self.cfg.base_url!r})"

    def window(self) -> Window:
        """The model's context window (asked of the server once, where it reports one)."""
        if self._window is None:
            reported = None
            local = self.cfg.base_url and "api.openai.com" not in self.cfg.base_url
            if local and not self.cfg.context_tokens:  # OpenAI reports none: the table knows
                reported = server_window(self.cfg.base_url, self._key, self.cfg.model)
            self._window = self.params.window(self.cfg, reported)
        return self._window

    def preflight(self) -> Completion:
        """One tiny call that proves the server, the key and the model answer (see ``spend``)."""
        self.window()
        return self._call(PREFLIGHT, PREFLIGHT_TOKENS, preflight=True)

    def complete(self, messages: list[Message]) -> Completion:
        budget = self.window().completion_budget(messages)
        if budget < 1:
            w = self.window()
            raise LLMRequestError(
                f"the prompt (~{w.tokens(messages)} tokens) leaves no room for a reply in the "
                f"model's context window of {w.context_tokens} tokens"
            )
        return self._call(messages, budget)

    def _call(self, messages: list[Message], budget: int, *, preflight: bool = False) -> Completion:
        """One request; a parameter the server rejects is learned and the request sent again."""
        while True:
            kwargs = self.params.request(self.cfg, budget)
            try:
                resp = self._client.chat.completions.create(
                    model=self.cfg.model,
                    messages=messages,  # type: ignore[arg-type]
                    **kwargs,
                )
            except openai.BadRequestError as exc:
                fix = learnable(exc.body, kwargs)
                if fix is None or not self.params.learn(fix):
                    raise self._mapped(exc) from exc
                log.warning(
                    "%s refuses %s for %s: sending without it", self.where, fix, self.cfg.model
                )
                continue
            except openai.APIError as exc:
                raise self._mapped(exc) from exc
            return self._completion(resp, messages, preflight=preflight)

    def _mapped(self, exc: openai.APIError) -> LLMError:
        tries = f"after up to {self.cfg.max_retries + 1} tries ({self.where})"
        if isinstance(exc, openai.APITimeoutError):  # a subclass of APIConnectionError: first
            return LLMTransientError(f"LLM request timed out {tries}")
        if isinstance(exc, openai.APIConnectionError):
            return LLMTransientError(f"LLM server unreachable {tries}")
        code = getattr(exc, "status_code", 0) or 0
        brief = _brief(exc)
        if code in (408, 409, 429) or code >= 500:
            return LLMTransientError(f"LLM request HTTP {code} {tries}: {brief}")
        if code in (401, 403):
            return LLMAuthError(
                f"the LLM server {self.where} refused the key (HTTP {code}): set OPENAI_API_KEY "
                f"(or the llm.models entry's api_key_env) to a valid key: {brief}"
            )
        if code == 404:
            return LLMAuthError(
                f"the LLM server {self.where} does not serve model {self.cfg.model!r} (HTTP 404): "
                f"check llm.model and llm.base_url: {brief}"
            )
        if code in (400, 413, 422):
            return LLMRequestError(f"LLM server refused the request: HTTP {code}: {brief}")
        return LLMError(f"LLM server refused the request: HTTP {code}: {brief}")

    def _completion(self, resp: object, messages: list[Message], *, preflight: bool) -> Completion:
        choices = getattr(resp, "choices", None) or []
        choice = choices[0] if choices else None
        finish = str(getattr(choice, "finish_reason", "") or "")
        text = choice.message.content if choice is not None and choice.message else None
        if text is None and (preflight or finish == "length"):
            text = ""  # a reasoning model can spend its whole budget thinking: cut, not garbage
        if text is None:
            raise LLMReplyError("LLM reply has no message content")
        model = getattr(resp, "model", None) or self.cfg.model
        usage = getattr(resp, "usage", None)
        if usage is None:
            if not self._warned_usage:
                log.warning("LLM server %s reports no token usage; counting 0 tokens", self.where)
                self._warned_usage = True
            return Completion(text=text, model=model, usage_reported=False, finish_reason=finish)
        pt, ct = int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)
        self.window().learn(messages, pt)
        p_in, p_out = price_for(self.cfg.prices, model, self.cfg.model)
        return Completion(
            text=text,
            model=model,
            prompt_tokens=pt,
            completion_tokens=ct,
            cost_usd=pt / 1000.0 * p_in + ct / 1000.0 * p_out,
            finish_reason=finish,
        )


def _brief(exc: openai.APIError) -> str:
    msg = str(getattr(exc, "message", "") or exc)
    return msg[:300]
