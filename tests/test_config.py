"""darwin.toml: defaults, the commented default file, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from darwin_bot import config
from darwin_bot.cli import cli
from darwin_bot.errors import ConfigError


def test_the_commented_default_file_parses_to_the_defaults() -> None:
    import tomllib

    assert config.from_dict(tomllib.loads(config.DEFAULT_TOML)) == config.Config()


def test_empty_file_is_all_defaults(tmp_path: Path) -> None:
    p = tmp_path / "darwin.toml"
    p.write_text("")
    assert config.load(p) == config.Config()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[evolution]\npopulaton = 3\n", "did you mean 'population'"),
        ("[evolutoin]\n", "did you mean 'evolution'"),
        ("[budget]\npreset = 'huge'\n", "unknown preset 'huge'"),
        ("[budget]\niters = 10\nseconds = 5.0\n", "exactly one of budget.iters and budget.seconds"),
        ("[evolution]\npopulation = 'ten'\n", "expected an integer"),
        ("[evolution]\nsurvivors = 20\n", "survivors must be between 1 and population"),
        ("[evolution]\nevolvable = ['../etc']\n", "stay inside the repository"),
        ("[sandbox]\nbackend = 'docker'\n", "sandbox.backend must be one of"),
        ("not toml = = 1", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "darwin.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config.load(p)


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="darwin init"):
        config.load(tmp_path / "nope.toml")


def test_replace_revalidates() -> None:
    cfg = config.Config().replace("evolution", population=4, survivors=2)
    assert (cfg.evolution.population, cfg.evolution.survivors) == (4, 2)
    with pytest.raises(ConfigError):
        config.Config().replace("evolution", population=0)


def test_init_writes_the_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "darwin.toml"
    first = runner.invoke(cli, ["init", "--path", str(target)])
    assert first.exit_code == 0, first.output
    assert config.load(target) == config.Config()
    second = runner.invoke(cli, ["init", "--path", str(target)])
    assert second.exit_code != 0


def test_cli_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "darwin.toml"
    bad.write_text("[evolution]\npopulaton = 3\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "darwin_bot",
            "status",
            "--repo",
            str(tmp_path),
            "--config",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "did you mean 'population'" in proc.stderr
    assert "Traceback" not in proc.stderr
