"""Where the window secret lives, and that no sandbox and no cache key mixes windows."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np

from darwin_bot.evaluate import scrub_env, windows
from darwin_bot.evaluate.scoring import WINDOW_SEED, plan_probes


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
    assert secret is not None
    assert one.version == f"{EVALUATOR_VERSION}-w{windows.fingerprint(secret)}"
    one.at_generation(3)  # what the engine does before it evaluates generation 3
    assert one.version == f"{EVALUATOR_VERSION}-w{windows.fingerprint(secret)}-g3"
    assert one.windows == windows.of_generation(secret, 3).name
    one.at_generation(4)
    assert one.version == f"{EVALUATOR_VERSION}-w{windows.fingerprint(secret)}-g4"
    (tmp_path / windows.FILE).unlink()  # a new secret: new windows, a new cache
    assert one.version != f"{EVALUATOR_VERSION}-w{windows.fingerprint(secret)}-g4"


def test_each_generation_draws_its_own_windows_the_same_for_all_its_agents():
    g3, g3_again, g4 = (windows.of_generation("s", g) for g in (3, 3, 4))
    assert g3 == g3_again and g3.seed != g4.seed and g3.name != g4.name
    assert windows.of_generation("other", 3).seed != g3.seed
    assert "s" not in g3.name.split("-")[0] and g3.name.endswith("-g3")
    val = np.random.default_rng(0).integers(0, 65, 40_000).astype(np.uint16)
    plans = [plan_probes(val, 64, 65, 64, ws.seed, n_probes=8) for ws in (g3, g3_again, g4)]
    assert np.array_equal(plans[0].windows, plans[1].windows)  # paired within a generation
    assert len(set(plans[0].window_ids) & set(plans[2].window_ids)) < 32  # new for the next
    assert windows.choose("secret", g3.seed, g3.name) == (g3.seed, f"secret {g3.name}")


def test_a_generations_windows_need_the_secret(tmp_path: Path, monkeypatch):
    from click.testing import CliRunner

    from darwin_bot.cli import cli
    from darwin_bot.errors import ConfigError

    monkeypatch.delenv(windows.ENV, raising=False)
    (tmp_path / "seed").mkdir()
    for extra, says in (
        ([], "gh secret set DARWIN_WINDOW_SECRET"),
        (["--fixed-windows"], "not both"),
    ):
        res = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--generation", "2", *extra])
        assert isinstance(res.exception, ConfigError) and says in str(res.exception)  # exit 2


def test_kept_graphs_are_found_by_their_run_and_a_damaged_one_is_trained_again(tmp_path: Path):
    from types import SimpleNamespace

    from darwin_bot.core import Budget
    from darwin_bot.evaluate import SandboxRun, rescore
    from darwin_bot.evaluate.claims import Report

    out = tmp_path / "scratch" / "out"
    out.mkdir(parents=True)
    (out / "graph").write_bytes(b"g" * 100)
    (out / "model.pt").write_bytes(b"w" * 50)
    opts = SimpleNamespace(smoke=False, keep_dir=tmp_path / "kept", seed=1, preset="tiny",
                           budget=Budget(iters=5), program="darwin")  # fmt: skip
    ctx = SimpleNamespace(opts=opts, hash="t1", device="cpu", meta={"sha256": "c"},
                          scratch=tmp_path / "scratch")  # fmt: skip
    run = SandboxRun("bwrap", 0, False, 2.5, "iter 5", max_rss_mb=9.0, cpu_s=4.0)
    rescore.keep("5", ctx, ("graph", "model.pt"), run, Report(5, 320.0, 2.0, None), {"a": 1}, None)
    kept = rescore.find("5", ctx)
    assert kept is not None and kept.train.wall_s == 2.5 and kept.train.cpu_s == 4.0
    assert kept.extra == {"a": 1, "rescored": True} and kept.report.iterations == 5
    dest = tmp_path / "restored"
    rescore.restore(kept, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["graph", "model.pt"]
    assert rescore.find("6", ctx) is None  # another evaluator version: train again
    assert rescore.find("5", SimpleNamespace(**{**vars(ctx), "hash": "t2"})) is None
    opts.smoke = True
    assert rescore.find("5", ctx) is None  # a smoke test never re-scores
    opts.smoke = False
    (kept.folder / rescore.KEPT).write_text("{not json", encoding="utf-8")
    assert rescore.find("5", ctx) is None
    newer = opts.keep_dir / "newer"
    newer.mkdir()
    (newer / "graph").write_bytes(b"n" * 100)
    rescore._prune(opts.keep_dir, limit=120)  # room for one: the least recently used goes
    assert [p.name for p in opts.keep_dir.iterdir()] == ["newer"]
