"""The first hour, as a new user lives it: their own text file and their own seed commits.

A scratch repository with ``seed/``; ``darwin check`` before the corpus exists
(a miss, exit 2); ``darwin data prepare --input notes.txt`` (a text that is not
tiny Shakespeare); ``darwin run`` on it (real sandbox, real training, a tiny
budget); then a seed change committed on main: the next ``darwin run``
re-baselines on it. Along the way: the bot never commits on main, and every
evaluation records the sha256 of the user's text.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from darwin_bot.cli import make_scratch_repo
from darwin_bot.store import MemoryStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

TOML = """\
[evolution]
population = 2
survivors = 1
seed = 5

[budget]
preset = "tiny"
iters = 8
repeats = 2
smoke_iters = 2
data = "data/notes_char"
max_cost_ratio = 1000.0   # timing noise on a shared CPU must not decide this test

[fitness]
mfu_weight = 0.0

[llm]
backend = "heuristic"

[sandbox]
timeout_s = 180.0
smoke_timeout_s = 90.0
"""


def _notes(path: Path) -> Path:
    """A user's own text: not tiny Shakespeare, with characters tiny Shakespeare lacks."""
    rng = random.Random(11)
    words = [
        "naïve",
        "café",
        "garçon",
        "über",
        "straße",
        "ζῷον",
        "data",
        "model",
        "loss",
        "gradient",
        "step",
        "東京",
        "→",
        "✓",
    ]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) for _ in range(400)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _darwin(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "OPENAI_API_KEY")}
    env["DARWIN_THREADS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "darwin_bot", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_own_text_prepared_and_evolved_then_a_committed_seed_is_the_baseline(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    make_scratch_repo(root, TOML)
    main_before = _git(root, "rev-parse", "main")

    check = _darwin(root, "check", ".")
    assert check.returncode == 2, check.stdout + check.stderr
    assert "MISS data: data/notes_char has no corpus" in check.stdout

    notes = _notes(tmp_path / "notes.txt")
    prep = _darwin(root, "data", "prepare", "--input", str(notes))
    assert prep.returncode == 0, prep.stderr
    assert 'budget.data = "data/notes_char"' in prep.stdout
    digest = hashlib.sha256(notes.read_bytes()).hexdigest()
    meta = json.loads((root / "data" / "notes_char" / "meta.json").read_text(encoding="utf-8"))
    assert (meta["kind"], meta["sha256"]) == ("text", digest) and "東" in meta["itos"]

    first = _darwin(root, "run", "--generations", "1", "--workers", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "committed on the branch darwin/memory, never on main" in first.stderr
    memory = MemoryStore(root / "memory")
    assert [g["generation"] for g in memory.generations()] == [0, 1]
    results = [json.loads(p.read_text()) for p in (root / "memory" / "evals").rglob("*.json")]
    assert results and {r["extra"]["data_sha256"] for r in results} == {digest}
    assert any(r["status"] == "ok" for r in results)

    with (root / "seed" / "train.py").open("a", encoding="utf-8") as fh:
        fh.write("\n# tuned by hand\n")
    _git(
        root,
        "-c",
        "user.name=me",
        "-c",
        "user.email=me@example.com",
        "commit",
        "-qam",
        "seed: tuned by hand",
    )
    mine = _git(root, "rev-parse", "main")

    second = _darwin(root, "run", "--generations", "1", "--workers", "1")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "re-baselining" in second.stderr
    gens = MemoryStore(root / "memory").generations()
    assert [g["generation"] for g in gens] == [0, 1, 2, 3]
    assert gens[2]["reseeded"]["to"] == mine and gens[2]["survivors"] == ["seed"]

    # generation 3 scores the re-baselined seed again on its own windows (from the kept
    # graph, no training): the same measurement of the same tree; only timings differ
    b2, b3 = gens[2]["baseline"], gens[3]["baseline"]
    assert (b3["n"], b3["mean"]["perplexity"]) == (b2["n"], b2["mean"]["perplexity"])
    assert b3["mean"]["train_cpu_s"] == b2["mean"]["train_cpu_s"]  # carried, not trained again
    # main holds the user's two commits and nothing of the bot's
    assert _git(root, "rev-list", "--count", f"{main_before}..main") == "1"
    assert _git(root, "log", "-1", "--format=%s", "darwin/memory").startswith("darwin: record")
