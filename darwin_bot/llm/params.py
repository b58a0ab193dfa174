"""What a chat-completions request may carry for a model, and what the server says it serves.

OpenAI's reasoning models (the gpt-5 family and the o-series) refuse
``max_tokens`` ("Use 'max_completion_tokens' instead") and any temperature but
the default, and take ``reasoning_effort``. Older models take both token names
on OpenAI; servers that copy the API (vLLM, llama.cpp, Ollama) all understand
``max_tokens`` and not always the newer name. :class:`Params` starts from those
rules and learns from a 400 ``unsupported_parameter`` / ``unsupported_value``
(each parameter once), so a model released after this table still works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from darwin_bot.config import LLMConfig
from darwin_bot.llm.context import DEFAULT_CONTEXT, Window, known_context

_REASONING = re.compile(r"^(gpt-5|o\d)")
_UNSUPPORTED = ("unsupported_parameter", "unsupported_value")
_QUOTED = re.compile(r"'(\w+)'")
ADJUSTABLE = ("max_tokens", "max_completion_tokens", "temperature", "reasoning_effort")
PROBE_TIMEOUT_S = 5.0


def is_reasoning(model: str) -> bool:
    """Whether ``model`` is an OpenAI reasoning model (``openai/gpt-5-mini`` counts)."""
    return bool(_REASONING.match(model.rsplit("/", 1)[-1].lower()))


@dataclass
class Params:
    """The request parameters for one model, as learned so far."""

    token_param: str = "max_tokens"
    temperature: bool = True
    effort: bool = True
    learned: set[str] = field(default_factory=set)

    @classmethod
    def for_model(cls, cfg: LLMConfig) -> Params:
        reasoning = is_reasoning(cfg.model)
        on_openai = not cfg.base_url or "api.openai.com" in cfg.base_url
        token = "max_completion_tokens" if reasoning or on_openai else "max_tokens"
        return cls(token_param=token, temperature=not reasoning)

    def request(self, cfg: LLMConfig, budget: int) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` besides model and messages."""
        out: dict[str, Any] = {self.token_param: budget}
        if self.temperature:
            out["temperature"] = cfg.temperature
        if self.effort and cfg.reasoning_effort:
            out["reasoning_effort"] = cfg.reasoning_effort
        return out

    def learn(self, param: str) -> bool:
        """Stop sending ``param`` the way it was sent; False when that was tried already."""
        if param in self.learned or param not in ADJUSTABLE:
            return False
        self.learned.add(param)
        if param == "max_tokens":
            self.token_param = "max_completion_tokens"
        elif param == "max_completion_tokens":
            self.token_param = "max_tokens"
        elif param == "temperature":
            self.temperature = False
        else:
            self.effort = False
        return True

    def window(self, cfg: LLMConfig, reported: int | None) -> Window:
        """The context window: configured, else the server's report, else the model's known one."""
        if cfg.context_tokens:
            return Window(cfg.context_tokens, cfg.max_tokens, "config")
        if reported:
            return Window(reported, cfg.max_tokens, "server")
        known = known_context(cfg.model)
        if known:
            return Window(known, cfg.max_tokens, "known")
        return Window(DEFAULT_CONTEXT, cfg.max_tokens, "default")


def learnable(body: object, sent: dict[str, Any]) -> str | None:
    """The parameter a 400 says the model does not support, when we sent it; else None."""
    err = body.get("error", body) if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None
    message = str(err.get("message") or "")
    code = str(err.get("code") or "")
    if code not in _UNSUPPORTED and not message.lower().startswith("unsupported"):
        return None
    param = err.get("param")
    if not param:
        quoted = _QUOTED.search(message)
        param = quoted.group(1) if quoted else None
    return param if param in sent else None


def server_window(base_url: str, key: str, model: str) -> int | None:
    """The context size a local server reports, or None when it reports none.

    llama.cpp's server: ``GET /props`` -> ``default_generation_settings.n_ctx``
    (what it serves, not what the model was trained on); vLLM: ``max_model_len``
    of the model in ``GET /v1/models``; others: ``context_length`` there.
    """
    root = re.sub(r"/v1/?$", "", base_url.rstrip("/"))
    headers = {"Authorization": f"Bearer {key}"}
    props = _get_json(f"{root}/props", headers)
    if isinstance(props, dict):
        settings = props.get("default_generation_settings") or {}
        n = settings.get("n_ctx") if isinstance(settings, dict) else None
        if isinstance(n, int) and n > 0:
            return n
    listing = _get_json(f"{base_url.rstrip('/')}/models", headers)
    rows = listing.get("data") if isinstance(listing, dict) else None
    rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
    for row in rows:
        if len(rows) > 1 and row.get("id") != model:
            continue  # a server with several models: only the one we use
        for key_ in ("max_model_len", "context_length"):
            n = row.get(key_)
            if isinstance(n, int) and n > 0:
                return n
    return None


def _get_json(url: str, headers: dict[str, str]) -> object:
    try:
        r = httpx.get(url, headers=headers, timeout=PROBE_TIMEOUT_S)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
