"""Exit codes as documented: 2 for every usage or input error, one line on stderr."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from darwin_bot.cli import main, make_scratch_repo
from darwin_bot.errors import NotARepository, SeedDoesNotTrain
from darwin_bot.paths import seed_source


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code or 0), capsys.readouterr().err


def _one_line(err: str, *needles: str) -> None:
    assert err.count("\n") == 1 and err.startswith("darwin: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def test_outside_a_git_repository_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "not-a-repo"
    shutil.copytree(seed_source(), folder / "seed")  # the program is fine; git is missing
    for argv in (["run", "--repo", str(folder)], ["status", "--repo", str(folder)]):
        code, err = _exit(argv, capsys)
        assert code == 2, err
        _one_line(err, "is not a git repository", "git init")


def test_approving_a_request_that_does_not_exist_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    make_scratch_repo(root, "")
    for verb in ("approve", "decline"):
        code, err = _exit(["requests", "--config", str(root / "darwin.toml"), verb, "99"], capsys)
        assert code == 2, err
        _one_line(err, "no request #99", "darwin requests --all")


def test_the_documented_codes_of_the_new_errors() -> None:
    assert NotARepository.exit_code == 2 and SeedDoesNotTrain.exit_code == 2


@pytest.mark.parametrize("error", ["forge", "llm"])
def test_an_outage_past_its_retries_is_exit_3_resume_later(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, error: str
) -> None:
    from darwin_bot.cli import requests as requests_cli
    from darwin_bot.errors import ForgeTransientError, LLMTransientError

    def down(_: object) -> None:
        if error == "forge":
            raise ForgeTransientError("GitHub answered 502 five times")
        raise LLMTransientError("the LLM answered 429 five times")

    monkeypatch.setattr(requests_cli, "_forge", down)
    code, err = _exit(["requests"], capsys)
    assert code == 3, err
    _one_line(err, "five times")
