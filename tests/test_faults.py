"""Crash consistency, SQLite-style: kill a small evolution at every write point and resume.

One uninterrupted run (2 generations, population 3, the local forge, the
heuristic mutator, the engine tests' fake evaluator instead of training)
counts its write points (``darwin_bot.faults``: state files, git writes,
forge writes). Then, for each write point N (all of them, or a seeded sample
of at least ``MIN_POINTS`` when there are more than ``MAX_POINTS``), a fresh
copy of the same repository runs until it is SIGKILLed just before write N,
is started again, and its final state must equal the uninterrupted run's
field by field: every agent branch and archived head (commit ids: git dates
are pinned, so the same work makes the same commits), main's and the memory branch's
commits (subject and files), every JSON file under memory/ and the local forge (timestamps and
timings removed), and no leftover worktree or temporary file.

Each run is a forked child of the test process, so the many runs do not pay
the interpreter's start-up each time.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import traceback
from pathlib import Path
from typing import Any

import pytest

from darwin_bot import faults
from darwin_bot.cli import make_scratch_repo
from darwin_bot.git import GitRepo
from darwin_bot.spend import Ledger
from tests.engine.test_engine import FakeEvaluator

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]

MIN_POINTS = 50
MAX_POINTS = int(os.environ.get("DARWIN_FAULT_POINTS", "60"))

TOML = """\
[evolution]
population = 3
survivors = 2
seed = 5

[budget]
iters = 10
repeats = 2

[fitness]
mfu_weight = 0.0

[llm]
backend = "heuristic"
"""

_PINNED = {
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+0000",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+0000",
}
_VOLATILE_KEYS = {"timestamp", "timings", "created_at", "updated_at", "at", "since"}
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?")


def _evolve(root: Path) -> None:
    from darwin_bot.cli import build_engine
    from darwin_bot.config import load
    from darwin_bot.publish import make_publisher

    cfg = load(root / "darwin.toml")
    engine = build_engine(
        root,
        cfg,
        publisher=make_publisher(root, cfg),
        evaluator=FakeEvaluator(),
        quiet=True,
        workers=1,  # the default asks torch for GPUs: seconds of import in every child
    )
    engine.run(2)


def _in_child(root: Path, env: dict[str, str]) -> int | str:
    """Run the evolution in a forked child; its exit code, or 'killed' when SIGKILLed."""
    err = root.parent / f"{root.name}.err"
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.environ.update({**_PINNED, **env})
            _evolve(root)
        except BaseException:
            err.write_text(traceback.format_exc(), encoding="utf-8")
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "killed"
    code = os.WEXITSTATUS(status)
    assert code == 0, err.read_text(encoding="utf-8") if err.exists() else code
    return code


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        # A PR's plot link is pinned to the memory commit that holds the plot; that commit
        # also carries the per-process spend ledgers, so its sha differs after a resume.
        value = _SPEND_TABLE.sub("### LLM spend\n\n<ledger>\n\n", value)
        return _PINNED_SHA.sub("<pinned>", _ISO.sub("<time>", value))
    return value


# The LLM spend ledger is one file per process (darwin_bot/spend): a resumed run is one more
# process, so it has one more ledger file by design. Its files are left out of the
# comparison, and what they add up to is compared instead.
_PER_PROCESS = "spend/"
# The dashboard's spend table counts every LLM call in the ledger, and the calls a killed
# process made are real (they were paid for), so a resumed run shows more of them.
_SPEND_TABLE = re.compile(r"### LLM spend\n\n.*?(?=\n\n#|\n\n<!--|\Z)", re.S)
_PINNED_SHA = re.compile(r"(?<=\.png@)[0-9a-f]{7,40}|(?<=/raw/)[0-9a-f]{40}(?=/)")


def _json_files(folder: Path) -> dict[str, Any]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != ".lock":
            rel = path.relative_to(folder).as_posix()
            if rel.startswith(_PER_PROCESS):
                continue
            if path.suffix != ".json":  # plots and any other file: byte for byte
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
                continue
            out[rel] = _scrub(json.loads(path.read_text(encoding="utf-8")))
    return out


def state(root: Path) -> dict[str, Any]:
    """Everything that must agree between an interrupted-and-resumed run and an uninterrupted one."""
    repo = GitRepo(root)
    refs = repo.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/darwin/")
    # the memory branch's commits hold per-process ledgers: compared by subject and files below
    refs = "\n".join(r for r in refs.splitlines() if not r.startswith("refs/heads/darwin/memory "))
    archive = repo.git("for-each-ref", "--format=%(refname) %(objectname)", "refs/darwin/")
    log = repo.git("log", "--format=%s", "--name-only", "main", "darwin/memory")
    log = "\n".join(ln for ln in log.splitlines() if not ln.startswith("memory/" + _PER_PROCESS))
    out = {
        "spend_usd": round(Ledger(root / "memory" / "spend").totals().usd, 9),
        "branches": refs.splitlines(),
        "archive": archive.splitlines(),
        "main": log,
        "memory": _json_files(root / "memory"),
        "forge": _json_files(root / ".darwin" / "forge"),
        "worktrees": repo.git("worktree", "list").count("\n"),
        "status": repo.git("status", "--porcelain", "--untracked-files=all", "memory"),
    }
    # The local forge links its issues by file URL, which holds the copy's own folder name.
    return json.loads(json.dumps(out).replace(str(root), "<root>"))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults") / "template"
    make_scratch_repo(root, TOML)
    return root


def _copy(template: Path, name: str) -> Path:
    dest = template.parent / name
    shutil.copytree(template, dest, symlinks=True)
    return dest


def _points(total: int) -> list[int]:
    if total <= MAX_POINTS:
        return list(range(1, total + 1))
    picked = set(random.Random(15).sample(range(1, total + 1), MAX_POINTS - 4))
    return sorted(picked | {1, 2, total - 1, total})  # always the first and the last ones


def test_a_kill_at_any_write_point_resumes_to_the_uninterrupted_state(
    template: Path,
) -> None:
    reference = _copy(template, "reference")
    log = template.parent / "points.log"
    assert _in_child(reference, {faults.LOG_ENV: str(log)}) == 0
    kinds = [line.split()[0] for line in log.read_text(encoding="utf-8").splitlines()]
    total = len(kinds)
    expected = state(reference)
    assert expected["branches"] and expected["archive"], "the run must cull and keep agents"
    assert {"state", "git", "forge"} <= set(kinds), kinds
    assert total >= MIN_POINTS, f"only {total} write points; the test needs a bigger run"

    points = _points(total)
    print(f"\nwrite points: {total} ({dict((k, kinds.count(k)) for k in set(kinds))}); ")
    print(f"killing at {len(points)} of them")
    assert len(points) >= MIN_POINTS
    for n in points:
        root = _copy(template, f"kill-{n}")
        assert _in_child(root, {faults.AT_ENV: str(n)}) == "killed", f"no write point {n}"
        assert _in_child(root, {}) == 0
        got = state(root)
        for key in expected:
            assert got[key] == expected[key], f"killed at write point {n} ({kinds[n - 1]}): {key}"
        shutil.rmtree(root)
