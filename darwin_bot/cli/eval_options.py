"""What ``darwin evaluate``'s command line becomes: the evaluation options, checked.

The config first, then what the command line gave; a token in the environment, a
``--baseline`` file that is not a result, a ``--confirm`` without a confirmation
budget are the caller's errors (``ConfigError``, exit 2).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from pathlib import Path
from typing import Any

from darwin_bot.config import Config
from darwin_bot.core import Budget, Cost, EvalResult
from darwin_bot.errors import ConfigError, SecretInEnvironment

# Agent code must never run in a process that holds one of these, even though
# the sandbox's environment is scrubbed: the evaluate job is meant to have none.
SECRET_VARS: tuple[str, ...] = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "OPENAI_API_KEY",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)


def refuse_secrets(environ: dict[str, str] | os._Environ[str]) -> None:
    """SecretInEnvironment when a known token is set (even empty values are refused)."""
    found = [name for name in SECRET_VARS if name in environ]
    if found:
        raise SecretInEnvironment(
            f"refusing to run agent code with {', '.join(found)} in the environment; "
            "unset it (the evaluate job must not hold secrets)"
        )


def windows_options(fixed: bool, generation: int | None) -> dict[str, Any]:
    """The options that pick the scored windows: fixed, a generation's, or the default."""
    from darwin_bot.evaluate import of_generation, required_secret

    if fixed and generation is not None:
        raise ConfigError("pass --fixed-windows or --generation, not both")
    if fixed:
        return {"windows": "fixed"}
    if generation is None:
        return {}
    chosen = of_generation(required_secret("darwin evaluate --generation"), generation)
    return {"window_seed": chosen.seed, "window_name": chosen.name}


def baseline_wall(path: Path, preset: str, budget: Budget) -> Cost:
    """The mean measured cost of the ok runs in a ``darwin evaluate --json`` file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        runs = data.get("runs", [data])
        results = [EvalResult.from_dict(r) for r in runs]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"--baseline {path}: not a result of 'darwin evaluate --json' ({exc})"
        ) from exc
    costs = [c for r in results if r.ok and (c := Cost.of(r.extra)) is not None]
    if not costs:
        raise ConfigError(f"--baseline {path}: no ok run with a measured train_wall_s in it")
    first = results[0]
    if first.preset != preset or first.budget != budget:
        raise ConfigError(
            f"--baseline {path} was measured under preset {first.preset!r}, budget "
            f"{first.budget.key()}; evaluate under the same (here: {preset!r}, {budget.key()})"
        )

    def mean(values: list[float]) -> float:  # only when every run measured it
        return statistics.fmean(values) if all(values) else 0.0

    return Cost(
        statistics.fmean(c.train_wall_s for c in costs),
        mean([c.score_wall_s for c in costs]),
        mean([c.train_cpu_s for c in costs]),
        mean([c.score_cpu_s for c in costs]),
    )


def confirm_budget(
    cfg: Config, iters: int | None, seconds: float | None, preset: str | None
) -> dict[str, Any]:
    """The confirmation budget and preset of ``--confirm`` (ConfigError when there is none)."""
    from darwin_bot.core import ConfirmSpec

    if iters is not None or seconds is not None or preset is not None:
        raise ConfigError(
            "--confirm takes its budget and preset from the config; drop "
            "--iters, --seconds and --preset"
        )
    spec = ConfirmSpec.from_config(cfg.budget)
    if spec.budget is None:
        raise ConfigError(
            "--confirm needs budget.confirm_iters or budget.confirm_seconds in darwin.toml"
        )
    return {"budget": spec.budget, "preset": spec.preset}


def rung_budget(
    cfg: Config, rung: int, iters: int | None, seconds: float | None, confirm: bool
) -> tuple[int | None, float | None]:
    """The (iters, seconds) of ``--rung`` (ConfigError when the schedule has no such rung)."""
    from darwin_bot.core import Schedule, ScheduleKind

    if iters is not None or seconds is not None or confirm:
        raise ConfigError(
            "--rung takes its budget from the config; drop --iters, --seconds, --confirm"
        )
    se = cfg.search
    sched = Schedule(ScheduleKind(se.schedule), tuple(se.rungs), se.keep)
    if rung > sched.top:
        raise ConfigError(
            f"--rung {rung}: search.schedule {se.schedule!r} with rungs {list(se.rungs)} "
            f"has rungs 0 to {sched.top}"
        )
    b = sched.budget(Budget(iters=cfg.budget.iters, seconds=cfg.budget.seconds), rung)
    return b.iters, b.seconds


def eval_options(
    cfg: Config,
    path: Path,
    changes: dict[str, Any],
    given: dict[str, Any],
    *,
    iters: int | None,
    seconds: float | None,
    confirm: bool,
    smoke: bool,
    baseline_file: Path | None,
) -> Any:
    """The evaluation options: the config, then what the command line gave (None: not given)."""
    from darwin_bot.evaluate import EvalOptions

    if confirm:
        changes |= confirm_budget(cfg, iters, seconds, given["preset"])
    if iters is not None or seconds is not None:
        changes["budget"] = Budget(iters=iters, seconds=seconds)
    changes |= {name: value for name, value in given.items() if value is not None}
    opts = EvalOptions.from_config(cfg, path, smoke=smoke, **changes)
    if baseline_file is not None:
        cost = baseline_wall(baseline_file, opts.preset, opts.budget)
        opts = dataclasses.replace(
            opts,
            baseline_train_wall_s=cost.train_wall_s,
            baseline_score_wall_s=cost.score_wall_s,
            baseline_train_cpu_s=cost.train_cpu_s or None,
            baseline_score_cpu_s=cost.score_cpu_s or None,
        )
    return opts
