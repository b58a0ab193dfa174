"""Where the window secret lives, and that no sandbox and no cache key mixes windows."""

from __future__ import annotations

import stat
from pathlib import Path

from darwin_bot.evaluate import windows
from darwin_bot.evaluate.sandbox import scrub_env
from darwin_bot.evaluate.scoring import WINDOW_SEED


def test_the_secret_is_made_once_private_and_kept(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(windows.ENV, raising=False)
    first = windows.read_secret(tmp_path)
    assert first and windows.read_secret(tmp_path) == first
    mode = stat.S_IMODE((tmp_path / windows.FILE).stat().st_mode)
    assert mode == 0o600
    assert windows.read_secret(None) is None  # no folder, no environment: none


def test_the_environment_wins_and_never_reaches_a_sandbox(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(windows.ENV, "from-ci")
    assert windows.read_secret(tmp_path) == "from-ci"
    assert not (tmp_path / windows.FILE).exists()
    assert windows.ENV not in scrub_env()
    assert windows.choose("secret", None) == (windows.seed_of("from-ci"),
                                              f"secret {windows.fingerprint('from-ci')}")  # fmt: skip


def test_fixed_explicit_and_fresh_windows(monkeypatch):
    monkeypatch.delenv(windows.ENV, raising=False)
    assert windows.choose("fixed", 5) == (WINDOW_SEED, "fixed")
    assert windows.choose("secret", 5) == (5, "secret")
    a, b = windows.choose("secret", None), windows.choose("secret", None)
    assert a[0] != b[0] and a[1] == "secret (this evaluation's)"
    assert windows.seed_of("x") == windows.seed_of("x") != windows.seed_of("y")
    assert windows.fingerprint("x") != windows.fingerprint("y") and "x" not in windows.fingerprint(
        "x"
    )


def test_the_engines_evaluator_names_its_windows_in_the_cache_key(tmp_path: Path, monkeypatch):
    from darwin_bot.cli.app import TrustedEvaluator
    from darwin_bot.config import Config
    from darwin_bot.evaluate import EVALUATOR_VERSION

    monkeypatch.delenv(windows.ENV, raising=False)
    one = TrustedEvaluator(Config(), tmp_path, secret_dir=tmp_path)
    secret = windows.read_secret(tmp_path)
    assert one.version == f"{EVALUATOR_VERSION}-w{windows.fingerprint(secret)}"
    (tmp_path / windows.FILE).unlink()  # a new secret: new windows, a new cache
    assert one.version != f"{EVALUATOR_VERSION}-w{windows.fingerprint(secret)}"
