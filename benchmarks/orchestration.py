"""The bot's own cost per generation, with training stubbed out; prints JSON.

    python benchmarks/orchestration.py                      # populations 10, 50, 100
    python benchmarks/orchestration.py --populations 10     # one size
    python benchmarks/orchestration.py --forges local       # no emulator

For each population N (survivors 0.4 N, as the default config) and each forge
(``local``: LocalForge files; ``github``: GitHubForge against the ``emulate``
GitHub API emulator on loopback, PyGithub's request spacing off), one
generation after the baseline runs through the real Engine and ForgePublisher:
plan, mutate (heuristic mutator, real git worktrees and commits), open the
PRs, evaluate, select, close the culled, write the dashboard. What is stubbed:
training and smoke tests (a fake evaluator whose metrics are a deterministic
function of the tree's content), and ``git push`` (the emulator cannot receive
one, so agent branches are mirrored through its API between propose and
publish; that time and those requests are not counted).

Reported per run: ``wall_s`` (propose + publish + evaluate + select), ``cpu_s``
(the same steps' CPU time, this process and its git subprocesses: comparable
across machines under different load, which ``load_avg_1m`` records),
``requests`` (every HTTP request the bot sent to the API, counted by the
loopback proxy in front of the emulator) and ``requests_per_agent`` (over the
N - survivors offspring, the agents that get a PR), with the requests broken
down by method and endpoint. ``max_open_prs`` is raised above N so every
offspring gets its PR (the worst case). Targets: at most 6 requests per agent,
at most 30 s for N = 100 against the emulator.

GitHub's limits: ``writes`` counts the content-creating requests (every method
but GET); ``hours_at_limits`` is what the generation's requests take of GitHub's
hourly allowance (1,000 requests per hour for a ``GITHUB_TOKEN``, 500
content-creating per hour for any token: the scarcer one), and ``estimate`` is
darwin_bot/forge/rate_budget.py's count for the same population, which select
checks against what GitHub says is left before it writes anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from darwin_bot.core import Budget, EvalResult, Metrics
from darwin_bot.forge import (
    REST_PER_HOUR,
    WRITES_PER_HOUR,
    generation_budget,
    propose_budget,
    select_budget,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
FORGE_TESTS = REPO_ROOT / "tests" / "forge"
TARGET_REQUESTS_PER_AGENT = 6
TARGET_WALL_S_100 = 30.0

TOML = """\
# darwin.toml written by benchmarks/orchestration.py
[evolution]
population = {population}
survivors = {survivors}
seed = 3

[budget]
preset = "tiny"
repeats = 2

[llm]
backend = "heuristic"

[forge]
kind = "local"
max_open_prs = {max_open_prs}
"""


class FakeEvaluator:
    """Deterministic metrics from the evolvable files' bytes: no training, no sandbox.

    The first tree it scores (the seed: the baseline comes first) gets the best
    perplexity, so no offspring passes the champion gate: a promotion is one
    PR per generation, not per agent, and would only blur the per-agent count.
    """

    version = "orchestration-bench"

    def __init__(self) -> None:
        self.baseline: str | None = None

    def __call__(self, tree: Path, *, seed: int, smoke: bool = False) -> EvalResult:
        h = hashlib.sha256()
        for path in sorted(
            p for p in tree.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        ):
            h.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
        if self.baseline is None and not smoke:
            self.baseline = h.hexdigest()
        x = int.from_bytes(h.digest()[:4], "big") / 2**32
        ppl = (9.0 if h.hexdigest() == self.baseline else 10.0 + 2.0 * x) + 0.01 * (seed % 7)
        metrics = None
        if not smoke:
            metrics = Metrics(
                val_loss=math.log(ppl), perplexity=ppl, mfu=0.1 + 0.05 * x,
                tokens_per_s=1e4, train_seconds=1.0, peak_mem_mb=100.0,
            )  # fmt: skip
        return EvalResult(
            status="ok", reason="", metrics=metrics, device="fake", seed=seed,
            budget=Budget(iters=1), evaluator_version=self.version, tree_hash=h.hexdigest()[:16],
        )  # fmt: skip


def _cpu() -> float:
    """User + system CPU seconds of this process and its finished children (git)."""
    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(step: Any) -> tuple[Any, float, float]:
    """``step()``'s result, wall seconds and CPU seconds."""
    cpu, started = _cpu(), time.monotonic()
    out = step()
    return out, time.monotonic() - started, _cpu() - cpu


def _endpoint(method: str, path: str) -> str:
    """``GET /repos/o/r/pulls/12/comments?x`` -> ``GET pulls/N/comments`` (for the breakdown)."""
    path = re.sub(r"^/repos/[^/]+/[^/]+/?", "", path.split("?", 1)[0])
    path = re.sub(r"/[0-9a-f]{40}", "/SHA", path)
    path = re.sub(r"/\d+", "/N", path)
    path = re.sub(r"heads/.*", "heads/BRANCH", path)
    return f"{method} {path or '/'}"


def _scratch(root: Path, population: int) -> Any:
    from darwin_bot.cli import make_scratch_repo
    from darwin_bot.config import load

    survivors = max(1, round(0.4 * population))
    toml = TOML.format(population=population, survivors=survivors, max_open_prs=population + 10)
    make_scratch_repo(root, toml)
    return load(root / "darwin.toml")


def run_once(
    workdir: Path, population: int, forge_kind: str, emulator: Any = None
) -> dict[str, Any]:
    """One generation after the baseline; the bot's wall time and its API requests."""
    from darwin_bot.cli import llm_factory
    from darwin_bot.engine import Engine
    from darwin_bot.git import GitRepo
    from darwin_bot.publish import ForgePublisher, make_publisher
    from darwin_bot.store import MemoryStore

    root = workdir / f"{forge_kind}-{population}"
    cfg = _scratch(root, population)
    repo = GitRepo(root, prefix=cfg.evolution.branch_prefix)
    mirror = None
    if forge_kind == "local":
        publisher = make_publisher(root, cfg)
    else:
        from forge_emulator import BOT_TOKEN
        from mirror import Mirror

        from darwin_bot.forge import GitHubForge

        repository = emulator.new_repo(f"bench-{population}-{int(time.time() * 1000)}")
        mirror = Mirror(emulator.api_url, BOT_TOKEN, repository, root)
        mirror.push("main")
        forge = GitHubForge(
            repository, BOT_TOKEN, base_url=emulator.api_url,
            seconds_between_requests=0, seconds_between_writes=0,
        )  # fmt: skip
        publisher = ForgePublisher(forge, repo, cfg, MemoryStore(root / cfg.memory.path))
    engine = Engine(
        repo, cfg, evaluator=FakeEvaluator(), llm_factory=llm_factory(cfg), publisher=publisher
    )
    engine.baseline()
    if mirror is not None:
        mirror.push(repo.branch("seed"))

    log = emulator.proxy.log if mirror is not None else []
    load = os.getloadavg()[0]
    records, propose_s, propose_cpu = _timed(lambda: engine.propose(1))
    if mirror is not None:  # stands in for git push: neither timed nor counted
        for rec in records:
            if rec.ok:
                mirror.push(repo.branch(rec.agent))
    mark = len(log)
    summary, rest_s, rest_cpu = _timed(
        lambda: (engine.publish(1), engine.evaluate(1), engine.select(1))[-1]
    )
    sent = log[mark:]
    offspring = len(records)
    out: dict[str, Any] = {
        "forge": forge_kind,
        "population": population,
        "offspring": offspring,
        "proposed_ok": sum(r.ok for r in records),
        "culled": len(summary.culled),
        "wall_s": round(propose_s + rest_s, 2),
        "propose_s": round(propose_s, 2),
        "publish_evaluate_select_s": round(rest_s, 2),
        # CPU seconds of the bot and its git subprocesses (not the emulator): what wall_s
        # would be on an idle machine with one core, minus waiting on the API
        "cpu_s": round(propose_cpu + rest_cpu, 2),
        "propose_cpu_s": round(propose_cpu, 2),
        "load_avg_1m": round(load, 2),
    }
    if mirror is not None:
        out["requests"] = len(sent)
        out["requests_per_agent"] = round(len(sent) / max(1, offspring), 2)
        out["errors"] = sum(1 for _, _, status in sent if status >= 400)
        writes = sum(1 for method, _, _ in sent if method != "GET")
        out["writes"] = writes
        out["writes_per_agent"] = round(writes / max(1, offspring), 2)
        out["hours_at_limits"] = round(max(len(sent) / REST_PER_HOUR, writes / WRITES_PER_HOUR), 3)
        # The count for this run's PRs (offspring, of which ``culled`` closed), and what a
        # generation at steady state (population - survivors offspring) would send.
        ok = sum(r.ok for r in records)
        estimate = propose_budget(ok) + select_budget(ok - len(summary.culled), len(summary.culled))
        steady = generation_budget(population, cfg.evolution.survivors)
        out["steady_state_estimate"] = {
            "requests": steady.requests,
            "writes": steady.writes,
            "hours_at_limits": round(steady.hours(), 3),
        }
        out["estimate"] = {
            "requests": estimate.requests,
            "writes": estimate.writes,
            "hours_at_limits": round(estimate.hours(), 3),
        }
        out["by_endpoint"] = dict(Counter(_endpoint(m, p) for m, p, _ in sent).most_common())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--populations", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument(
        "--forges", nargs="+", choices=["local", "github"], default=["local", "github"]
    )
    parser.add_argument("--workdir", type=Path, default=None, help="Kept for inspection if given.")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(FORGE_TESTS))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="darwin-orch-"))
    workdir.mkdir(parents=True, exist_ok=True)
    emulator = None
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    try:
        if "github" in args.forges:
            from forge_emulator import Emulator, find_emulate

            binary = find_emulate(REPO_ROOT)
            if binary is None or shutil.which("node") is None:
                notes.append("github skipped: emulate not installed (npm install emulate@0.11.2)")
            else:
                emulator = Emulator(binary, workdir / "emulate")
                (workdir / "emulate").mkdir(exist_ok=True)
                emulator.start()
        for n in args.populations:
            for kind in args.forges:
                if kind == "github" and emulator is None:
                    continue
                results.append(run_once(workdir, n, kind, emulator))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    finally:
        if emulator is not None:
            emulator.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    github = [r for r in results if r["forge"] == "github"]
    report = {
        "benchmark": "orchestration",
        "targets": {
            "requests_per_agent_max": TARGET_REQUESTS_PER_AGENT,
            "wall_s_population_100_github_max": TARGET_WALL_S_100,
        },
        "results": results,
        "met": {
            "requests_per_agent": all(
                r["requests_per_agent"] <= TARGET_REQUESTS_PER_AGENT for r in github
            )
            if github
            else None,
            "wall_s_100": all(
                r["wall_s"] <= TARGET_WALL_S_100 for r in github if r["population"] == 100
            )
            if any(r["population"] == 100 for r in github)
            else None,
            # One generation inside GitHub's hourly allowance (GITHUB_TOKEN).
            "fits_hourly_limits": all(r["hours_at_limits"] <= 1.0 for r in github)
            if github
            else None,
        },
        "notes": notes,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
