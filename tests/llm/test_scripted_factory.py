"""The scripted backend and make_llm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from darwin_bot.config import LLMConfig
from darwin_bot.errors import ConfigError, LLMError
from darwin_bot.llm import HeuristicLLM, OpenAIBackend, make_llm
from darwin_bot.llm import factory as factory_mod
from darwin_bot.llm.scripted import ScriptedLLM

MSG = [{"role": "user", "content": "x"}]


def test_scripted_plays_back_in_order_then_fails(tmp_path: Path) -> None:
    script = tmp_path / "r.jsonl"
    lines = [
        {"text": "one", "model": "m1", "prompt_tokens": 3, "completion_tokens": 4},
        {"text": "two"},
    ]
    script.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    llm = make_llm(LLMConfig(backend="scripted", script=str(script)))
    assert isinstance(llm, ScriptedLLM)
    a, b = llm.complete(MSG), llm.complete(MSG)  # type: ignore[arg-type]
    assert (a.text, a.model, a.prompt_tokens, a.completion_tokens) == ("one", "m1", 3, 4)
    assert (b.text, b.model) == ("two", "scripted")
    with pytest.raises(LLMError, match="ran out of replies after 2"):
        llm.complete(MSG)  # type: ignore[arg-type]


def test_scripted_bad_lines_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": 1}\n')
    with pytest.raises(ConfigError, match="bad.jsonl:1"):
        ScriptedLLM.from_file(bad)
    bad.write_text("{nope\n")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ScriptedLLM.from_file(bad)
    with pytest.raises(ConfigError, match="needs llm.script"):
        make_llm(LLMConfig(backend="scripted"))


def test_auto_picks_heuristic_offline_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(factory_mod, "_said_auto", False)
    assert isinstance(make_llm(LLMConfig(), seed=3), HeuristicLLM)
    assert isinstance(make_llm(LLMConfig()), HeuristicLLM)
    err = capsys.readouterr().err
    assert err.count("llm.backend = auto -> heuristic") == 1


def test_auto_picks_openai_with_a_key_or_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory_mod, "_said_auto", True)
    assert isinstance(make_llm(LLMConfig(base_url="http://127.0.0.1:9/v1")), OpenAIBackend)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert isinstance(make_llm(LLMConfig()), OpenAIBackend)
