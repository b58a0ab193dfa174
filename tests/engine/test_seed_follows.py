"""The seed follows the user's commits, and the bot's memory commits stay off the user's branch.

Real git, the engine's fake evaluator (perplexity from the tree's hash), the heuristic mutator.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from darwin_bot.cli import make_scratch_repo
from darwin_bot.cli.progress import Reporter
from darwin_bot.core import SEED_AGENT
from darwin_bot.engine import Engine
from darwin_bot.errors import SeedDoesNotTrain
from darwin_bot.git import GitRepo
from darwin_bot.llm import make_llm
from tests.engine.test_engine import FakeEvaluator, _cfg, _files_hash


def _engine(root: Path, evaluator: FakeEvaluator | None = None) -> Engine:
    cfg = _cfg()
    return Engine(
        GitRepo(root, prefix=cfg.evolution.branch_prefix),
        cfg,
        evaluator=evaluator or FakeEvaluator(),
        llm_factory=lambda seed: make_llm(cfg.llm, seed=seed),
        progress=Reporter(tty=False),
    )


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _commit_seed_edit(root: Path, line: str, message: str) -> str:
    with (root / "seed" / "train.py").open("a", encoding="utf-8") as fh:
        fh.write(f"\n# {line}\n")
    _git(root, "add", "seed/train.py")
    _git(root, "-c", "user.name=me", "-c", "user.email=me@example.com", "commit", "-qm", message)
    return _git(root, "rev-parse", "HEAD")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    make_scratch_repo(repo, "")
    return repo


def test_a_committed_seed_is_the_next_runs_baseline_and_the_old_generations_stay(
    root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    first = _engine(root)
    first.run(1)
    old_seed = first.seed_head()
    old_agents = set(first.repo.agents()) - {SEED_AGENT}
    old_baseline = first.summary(1).baseline  # type: ignore[union-attr]
    new_seed = _commit_seed_edit(root, "a better idea", "seed: a better idea")
    capfd.readouterr()

    again = _engine(root)
    again.run(1)
    err = capfd.readouterr().err
    assert "the seed changed on main" in err and "re-baselining" in err
    gens = [g["generation"] for g in again.memory.generations()]
    assert gens == [0, 1, 2, 3]  # the re-baseline has its own generation, then one more
    rebase = again.summary(2)
    assert rebase is not None and rebase.reseeded is not None
    assert (rebase.reseeded["from"], rebase.reseeded["to"]) == (old_seed, new_seed)
    assert rebase.survivors == (SEED_AGENT,) and [r.agent for r in rebase.ranking] == ["seed"]
    assert again.seed_head() == new_seed  # its branch, or its archive once culled
    assert again.repo.archived("seed-g001") == old_seed  # the old seed, under its generation
    # the old generations, their agents and their baseline are as they were
    assert again.summary(1).baseline == old_baseline  # type: ignore[union-attr]
    assert old_agents <= set(again.repo.agents())
    # the new seed was measured, and the next generation is compared with it and bred from it
    want = FakeEvaluator().perplexity(_files_hash(root), 3)
    assert rebase.baseline is not None
    assert rebase.baseline.mean.perplexity == pytest.approx(want, abs=0.002)
    assert rebase.baseline.mean.perplexity != pytest.approx(old_baseline.mean.perplexity)  # type: ignore[union-attr]
    assert again.summary(3).baseline == rebase.baseline  # type: ignore[union-attr]
    assert {rec.parents[0] for rec in again.offspring_records(3).values()} == {SEED_AGENT}

    third = _engine(root)
    third.run(1)  # nothing changed since: no second re-baseline
    assert third.summary(4) is not None and third.summary(4).reseeded is None  # type: ignore[union-attr]


def test_a_seed_that_did_not_train_fixed_and_committed_is_taken(root: Path) -> None:
    broken = _commit_seed_edit(root, "broken", "seed: broken")
    bad_tree = _files_hash(root)[:16]
    with pytest.raises(SeedDoesNotTrain, match="does not train.*commit, and run again") as exc:
        _engine(root, FakeEvaluator(fail_when={bad_tree})).run(1)
    assert exc.value.exit_code == 2
    assert GitRepo(root).rev("darwin/seed") == broken

    fixed = _commit_seed_edit(root, "fixed", "seed: fixed")
    engine = _engine(root, FakeEvaluator(fail_when={bad_tree}))
    engine.run(1)
    assert engine.seed_head() == fixed
    base = engine.summary(0)
    assert base is not None and base.baseline is not None and base.reseeded is None
    assert engine.summary(1) is not None


def test_an_uncommitted_edit_of_the_seed_is_a_warning_and_not_trained(
    root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    committed = _files_hash(root)
    (root / "seed" / "model.py").write_text("# half-done\n", encoding="utf-8")
    ev = FakeEvaluator()
    engine = _engine(root, ev)
    engine.run(1)
    err = capfd.readouterr().err
    assert "warning: uncommitted changes to seed/model.py are not part of the seed" in err
    assert {h for (h, s) in ev.calls if s == 3} >= {committed}  # the committed seed trained
    assert engine.summary(1) is not None


def test_the_memory_goes_to_its_own_branch_and_the_run_says_so_once(
    root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    before = _git(root, "rev-parse", "main")
    _engine(root).run(1)
    err = capfd.readouterr().err
    assert err.count("is committed on the branch darwin/memory, never on main") == 1
    assert _git(root, "rev-parse", "main") == before  # your branch: no commit from the bot
    log = _git(root, "log", "--format=%s", "darwin/memory").splitlines()
    assert log[:2] == ["darwin: record generation 1", "darwin: record the baseline (generation 0)"]
    tracked = _git(root, "ls-tree", "-r", "--name-only", "darwin/memory").splitlines()
    assert "memory/g001/summary.json" in tracked and not any(p.startswith("seed/") for p in tracked)
    assert _git(root, "status", "--porcelain") == ""  # memory/ is excluded, not untracked noise
    _engine(root).run(1)
    assert "darwin/memory" not in capfd.readouterr().err  # said once per repository
    assert _git(root, "rev-parse", "main") == before
    assert _git(root, "log", "-1", "--format=%s", "darwin/memory") == "darwin: record generation 2"


def test_a_generation_started_on_the_old_seed_is_finished_before_the_rebaseline(
    root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _engine(root).run(1)
    with pytest.raises(KeyboardInterrupt):
        _engine(root, FakeEvaluator(crash_after=1)).run(1)  # killed while making generation 2
    new_seed = _commit_seed_edit(root, "new", "seed: new")
    capfd.readouterr()

    resumed = _engine(root)
    resumed.run(1)  # finishes the interrupted run on the old seed
    assert (
        "generation 2 was started on the old seed and is finished first" in capfd.readouterr().err
    )
    assert resumed.completed() == 2 and resumed.summary(2).reseeded is None  # type: ignore[union-attr]

    later = _engine(root)
    later.run(1)
    assert later.summary(3).reseeded["to"] == new_seed  # type: ignore[index,union-attr]
    assert later.completed() == 4


def test_an_agent_branch_checked_out_to_look_at_never_becomes_the_seed(root: Path) -> None:
    first = _engine(root)
    first.run(1)
    seed = first.seed_head()
    agent = next(a for a in first.repo.agents() if a != SEED_AGENT)
    _git(root, "checkout", "-q", f"darwin/{agent}")
    again = _engine(root)
    again.run(1)
    assert again.seed_head() == seed
    assert all(g.get("reseeded") is None for g in again.memory.generations())
