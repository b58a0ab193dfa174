"""The evaluate job's step, for a darwin-bot whose ``darwin evaluate`` lacks ``--branch``.

``python eval_job.py PATH BRANCH OUT SEED DATA CONFIG`` does what ``darwin
evaluate PATH --branch BRANCH --out OUT --seed SEED --data DATA --config
CONFIG`` is specified to do: refuse a token in the environment, reject an
agent whose commits change more than the evolvable paths without running it,
else train and score it with the trusted evaluator, and write the result with
``extra.head``, ``extra.agent`` and ``extra.branch`` (what ``select`` keys it
by). :func:`darwin_supports_branch` says when the real command can be used.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path


def darwin_supports_branch() -> bool:
    """Whether this darwin-bot's ``darwin evaluate`` takes ``--branch``."""
    out = subprocess.run(
        [sys.executable, "-m", "darwin_bot", "evaluate", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return "--branch" in out.stdout


def main(argv: list[str]) -> int:
    from darwin_bot.app import TrustedEvaluator
    from darwin_bot.cli.evaluate import refuse_secrets
    from darwin_bot.config import load
    from darwin_bot.core.results import Budget, EvalResult
    from darwin_bot.errors import DarwinError
    from darwin_bot.evaluate import EVALUATOR_VERSION
    from darwin_bot.evaluate.provenance import unverified_reason

    path, branch, out, seed, data, config = argv
    agent_dir = Path(path)
    try:
        refuse_secrets(os.environ)
    except DarwinError as exc:
        print(f"darwin: {exc}", file=sys.stderr)
        return exc.exit_code
    cfg = load(Path(config))
    head = subprocess.run(
        ["git", "-C", path, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    reason = unverified_reason(
        agent_dir, cfg.forge.default_branch or "main", cfg.evolution.evolvable
    )
    if reason is not None:
        result = EvalResult(
            status="rejected",
            reason=reason,
            metrics=None,
            device="",
            seed=int(seed),
            budget=Budget(iters=cfg.budget.iters, seconds=cfg.budget.seconds),
            evaluator_version=EVALUATOR_VERSION,
            tree_hash="",
            preset=cfg.budget.preset,
        )
    else:
        result = TrustedEvaluator(cfg, Path(data), threads=1)(agent_dir, seed=int(seed))
    prefix = cfg.evolution.branch_prefix
    extra = {**result.extra, "head": head, "branch": branch, "agent": branch[len(prefix) :]}
    result = dataclasses.replace(result, extra=extra)
    Path(out).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
