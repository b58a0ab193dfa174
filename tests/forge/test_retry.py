"""The retry policy and the classification of GitHub failures (no server needed)."""

from __future__ import annotations

import pytest
import requests
from github import GithubException

from darwin_bot.forge.github import SECONDARY_LIMIT_WAIT_S, classify, map_error
from darwin_bot.forge.retry import GaveUp, RetryPolicy, Transient


def _exc(status: int, message: str = "", **headers: str) -> GithubException:
    return GithubException(status, {"message": message}, headers)


def test_permanent_failure_propagates_at_once() -> None:
    sleeps: list[float] = []
    calls = []

    def fn() -> None:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        RetryPolicy(sleep=sleeps.append).run(fn, lambda exc: None)
    assert calls == [1] and sleeps == []


def test_transient_failures_back_off_then_succeed() -> None:
    sleeps: list[float] = []
    outcomes = iter([OSError("a"), OSError("b"), "done"])

    def fn() -> str:
        item = next(outcomes)
        if isinstance(item, Exception):
            raise item
        return item

    policy = RetryPolicy(attempts=5, base_delay_s=1.0, jitter=0.0, sleep=sleeps.append)
    assert policy.run(fn, lambda exc: Transient("flaky")) == "done"
    assert sleeps == [1.0, 2.0]


def test_server_advice_wins_and_backoff_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=5.0, jitter=0.0)
    assert policy.delay(10, None) == 5.0
    assert policy.delay(0, 42.0) == 42.0
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)


def test_gave_up_keeps_the_last_failure() -> None:
    policy = RetryPolicy(attempts=2, base_delay_s=0.0, sleep=lambda s: None)
    with pytest.raises(GaveUp, match="gave up after 2 attempts") as info:
        policy.run(lambda: (_ for _ in ()).throw(OSError("down")), lambda e: Transient("down"))
    assert isinstance(info.value.__cause__, OSError)


@pytest.mark.parametrize(
    ("exc", "wait"),
    [
        (_exc(502), None),
        (_exc(503), None),
        (_exc(403, "You have exceeded a secondary rate limit"), SECONDARY_LIMIT_WAIT_S),
        (_exc(403, "whatever", **{"Retry-After": "12"}), 12.0),
        (_exc(429, "slow down"), SECONDARY_LIMIT_WAIT_S),
        (_exc(403, "API rate limit exceeded", **{"x-ratelimit-remaining": "0",
                                                  "x-ratelimit-reset": "1030"}), 31.0),
    ],
)  # fmt: skip
def test_transient_github_failures(exc: GithubException, wait: float | None) -> None:
    got = classify(exc, now=lambda: 1000.0)
    assert got is not None and got.wait_s == wait


@pytest.mark.parametrize(
    "exc",
    [_exc(401, "Bad credentials"), _exc(403, "Must have admin rights"), _exc(404), _exc(422),
     ValueError("not a github error")],
)  # fmt: skip
def test_permanent_github_failures(exc: Exception) -> None:
    assert classify(exc) is None


def test_connection_errors_are_transient() -> None:
    assert classify(requests.ConnectionError("refused")) is not None
    assert classify(requests.Timeout("slow")) is not None


def test_map_error_says_what_to_do() -> None:
    assert "GITHUB_TOKEN" in str(map_error(_exc(401, "Bad credentials"), "list issues"))
    assert "permission" in str(map_error(_exc(403, "nope"), "list issues"))
    err = _exc(422, "Validation Failed")
    err.data["errors"] = [{"code": "already_exists"}]  # type: ignore[index]
    assert "already_exists" in str(map_error(err, "create label"))
