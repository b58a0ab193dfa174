"""Reply parsing and SEARCH/REPLACE application."""

from __future__ import annotations

import pytest

from darwin_bot.errors import MutationRejected
from darwin_bot.mutation.replies import apply_blocks, parse_reply

CHUNK = "def f(x):\n    y = x + 1\n    return y * 2\n"


def test_whole_chunk_fenced_with_fields_and_request() -> None:
    r = parse_reply(
        "Sure!\nSUMMARY: Double less\nRATIONALE: because\n"
        "REQUEST: dependency | add einops | cleaner reshapes\n```python\ndef f(x):\n    return x\n```\n",
        agent="g1",
        generation=2,
    )
    assert (r.summary, r.rationale, r.code) == (
        "Double less",
        "because",
        "def f(x):\n    return x\n",
    )
    assert r.requests[0].kind == "dependency" and r.requests[0].title == "add einops"
    assert r.requests[0].agent == "g1" and r.requests[0].generation == 2
    assert not r.truncated and not r.no_change


def test_unfenced_code_and_unclosed_fence() -> None:
    assert parse_reply("SUMMARY: s\ndef f(x):\n    return 0\n").code == "def f(x):\n    return 0\n"
    assert parse_reply("SUMMARY: s\n```python\ndef f(x):\n    return").truncated


def test_no_code_and_no_change() -> None:
    with pytest.raises(MutationRejected, match="reply has no code"):
        parse_reply("I think we should lower the learning rate.")
    assert parse_reply("NO CHANGE: fine as is").no_change


def test_search_replace_exact_and_whitespace_insensitive() -> None:
    r = parse_reply(
        "SUMMARY: s\n<<<<<<< SEARCH\n    y = x + 1\n=======\n    y = x + 2\n>>>>>>> REPLACE\n"
    )
    assert apply_blocks(CHUNK, r.blocks) == CHUNK.replace("x + 1", "x + 2")
    fuzzy = parse_reply(
        "```\n<<<<<<< SEARCH\ny  =  x + 1\n   return y * 2\n=======\ny = x + 3\nreturn y\n>>>>>>> REPLACE\n```"
    )
    assert apply_blocks(CHUNK, fuzzy.blocks) == "def f(x):\n    y = x + 3\n    return y\n"


def test_search_miss_names_the_nearest_lines() -> None:
    r = parse_reply("<<<<<<< SEARCH\n    y = x + 10\n=======\n    y = 0\n>>>>>>> REPLACE\n")
    with pytest.raises(MutationRejected, match="does not match.*nearest lines.*y = x \\+ 1"):
        apply_blocks(CHUNK, r.blocks)


def test_broken_block_and_mixed_reply() -> None:
    with pytest.raises(MutationRejected, match="divider"):
        parse_reply("<<<<<<< SEARCH\n    y = x + 1\n")
    with pytest.raises(MutationRejected, match="one or the other"):
        parse_reply("```python\nx=1\n```\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n")
