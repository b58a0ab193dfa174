"""The ``openai`` backend: any OpenAI-compatible chat-completions server.

Retries are the openai client's own (``max_retries = llm.max_retries``): it
retries 408, 409, 429, 5xx, timeouts and dropped connections with exponential
backoff and jitter, honours ``Retry-After`` / ``retry-after-ms`` up to two
minutes, and gives up at once when the server asks for a longer wait. This
module adds no retry loop; it only maps what is left when the client gives up:
a transient failure becomes ``LLMTransientError``, any other API error an
``LLMError``. openai's exceptions never leave this module.

The key is read from ``OPENAI_API_KEY`` and never logged; a local ``base_url``
(vLLM, Ollama, llama.cpp) works with a dummy key.
"""

from __future__ import annotations

import logging
import os

import openai

from darwin_bot.config import LLMConfig
from darwin_bot.errors import ConfigError, LLMError, LLMReplyError, LLMTransientError
from darwin_bot.llm.base import Completion, Message

log = logging.getLogger(__name__)
DUMMY_KEY = "sk-local-no-key"


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
    """``LLM`` over the openai client; see the module docstring for retries."""

    def __init__(self, cfg: LLMConfig, *, api_key: str | None = None) -> None:
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        if not key and not cfg.base_url:
            raise ConfigError(
                "llm.backend = 'openai' needs OPENAI_API_KEY in the environment, or llm.base_url "
                "pointing at a local OpenAI-compatible server"
            )
        self.cfg = cfg
        self.name = f"openai:{cfg.model}"
        self._warned_usage = False
        self._client = openai.OpenAI(
            base_url=cfg.base_url or None,
            api_key=key or DUMMY_KEY,
            timeout=cfg.timeout_s,
            max_retries=cfg.max_retries,
        )

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIBackend(model={self.cfg.model!r}, base_url={self.cfg.base_url!r})"

    def complete(self, messages: list[Message]) -> Completion:
        where = self.cfg.base_url or "api.openai.com"
        tries = f"after up to {self.cfg.max_retries + 1} tries ({where})"
        try:
            resp = self._client.chat.completions.create(
                model=self.cfg.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self.cfg.temperature,
                max_tokens=self.cfg.max_tokens,
            )
        except openai.APITimeoutError as exc:  # a subclass of APIConnectionError: first
            raise LLMTransientError(f"LLM request timed out {tries}") from exc
        except openai.APIConnectionError as exc:
            raise LLMTransientError(f"LLM request connection failed {tries}") from exc
        except openai.APIStatusError as exc:
            code = exc.status_code
            if code in (408, 409, 429) or code >= 500:
                raise LLMTransientError(f"LLM request HTTP {code} {tries}: {_brief(exc)}") from exc
            raise LLMError(f"LLM server refused the request: HTTP {code}: {_brief(exc)}") from exc
        return self._completion(resp)

    def _completion(self, resp: object) -> Completion:
        choices = getattr(resp, "choices", None) or []
        text = choices[0].message.content if choices and choices[0].message else None
        if text is None:
            raise LLMReplyError("LLM reply has no message content")
        model = getattr(resp, "model", None) or self.cfg.model
        usage = getattr(resp, "usage", None)
        if usage is None:
            if not self._warned_usage:
                log.warning(
                    "LLM server %s reports no token usage; counting 0 tokens",
                    self.cfg.base_url or "api.openai.com",
                )
                self._warned_usage = True
            return Completion(text=text, model=model, usage_reported=False)
        pt, ct = int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)
        p_in, p_out = price_for(self.cfg.prices, model, self.cfg.model)
        return Completion(
            text=text,
            model=model,
            prompt_tokens=pt,
            completion_tokens=ct,
            cost_usd=pt / 1000.0 * p_in + ct / 1000.0 * p_out,
        )


def _brief(exc: openai.APIStatusError) -> str:
    msg = str(getattr(exc, "message", "") or exc)
    return msg[:300]
