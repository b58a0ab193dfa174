"""The rules a configuration must meet beyond its types: ranges, choices, and keys that go together.

Each section has its own function; :func:`check_sections` runs them in the
order the file reads, so the first broken rule is the one reported.
"""

from __future__ import annotations

from darwin_bot.config.sections import (
    CONTRACT_PRESETS,
    FORGES,
    LLM_BACKENDS,
    MAX_MATRIX_JOBS,
    PRESETS,
    SANDBOXES,
    SCHEDULES,
    SELECTIONS,
    BudgetConfig,
    EvolutionConfig,
    FitnessConfig,
    ForgeConfig,
    LLMConfig,
    ProgramConfig,
    SandboxConfig,
    SearchConfig,
)
from darwin_bot.errors import ConfigError


def need(cond: bool, msg: str) -> None:
    """A ConfigError saying ``msg`` unless ``cond``."""
    if not cond:
        raise ConfigError(msg)


def check_evolution(ev: EvolutionConfig) -> None:
    need(ev.population >= 1, "evolution.population must be at least 1")
    need(
        1 <= ev.survivors <= ev.population,
        f"evolution.survivors must be between 1 and population ({ev.population})",
    )
    need(ev.generations >= 0, "evolution.generations must be 0 or more")
    need(0.0 < ev.mutation_rate <= 1.0, "evolution.mutation_rate must be in (0, 1]")
    need(0.0 <= ev.crossover_rate <= 1.0, "evolution.crossover_rate must be in [0, 1]")
    need(ev.selection in SELECTIONS, f"evolution.selection must be one of {', '.join(SELECTIONS)}")
    need(ev.tournament_size >= 1, "evolution.tournament_size must be at least 1")
    need(bool(ev.evolvable), "evolution.evolvable must name at least one path")
    need(
        all(not p.startswith("/") and ".." not in p.split("/") for p in ev.evolvable),
        "evolution.evolvable paths must be relative and stay inside the repository",
    )
    need(ev.repair_attempts >= 0, "evolution.repair_attempts must be 0 or more")
    need(ev.max_file_lines >= 10, "evolution.max_file_lines must be at least 10")
    need(
        ev.branch_prefix.endswith("/") and len(ev.branch_prefix) > 1,
        "evolution.branch_prefix must end with '/', e.g. 'darwin/'",
    )


def check_program(pr: ProgramConfig, ev: EvolutionConfig) -> None:
    need(
        pr.contract in CONTRACT_PRESETS,
        f"program.contract must be one of {', '.join(CONTRACT_PRESETS)}",
    )
    if pr.contract != "nanogpt":
        return
    under = [
        f
        for f in (pr.train or "train.py", pr.model or "model.py")
        if not any(
            f == e.rstrip("/") or f.startswith(e) for e in ev.evolvable if e.endswith("/") or f == e
        )
    ]
    need(
        not under,
        f"evolution.evolvable must hold {', '.join(under)} under the nanogpt contract "
        '(e.g. evolvable = ["model.py", "train.py"]; darwin init --contract nanogpt writes it)',
    )


def check_budget(bu: BudgetConfig, ev: EvolutionConfig, pr: ProgramConfig) -> None:
    presets = tuple(dict.fromkeys([*CONTRACT_PRESETS[pr.contract], *pr.args]))
    need(
        bu.preset in presets,
        f"unknown preset {bu.preset!r} for the {pr.contract} contract; choose one of "
        f"{', '.join(presets)} (or add it under [program.args])",
    )
    need(
        (bu.iters is None) != (bu.seconds is None),
        "set exactly one of budget.iters and budget.seconds",
    )
    need(bu.iters is None or bu.iters >= 1, "budget.iters must be at least 1")
    need(bu.seconds is None or bu.seconds > 0, "budget.seconds must be positive")
    need(
        all(0 < f < 1 for f in bu.curve) and list(bu.curve) == sorted(set(bu.curve)),
        "budget.curve must list increasing fractions between 0 and 1 (the end is always scored)",
    )
    need(bu.repeats >= 1, "budget.repeats must be at least 1")
    # In CI each (agent, seed) is one leg of a job matrix, and GitHub refuses a
    # matrix of more than 256 jobs per workflow run; population x repeats is the
    # most one evaluation matrix can need (every agent with all its repeats).
    need(
        ev.population * bu.repeats <= MAX_MATRIX_JOBS,
        f"evolution.population x budget.repeats is {ev.population * bu.repeats}, over GitHub's "
        f"{MAX_MATRIX_JOBS}-job matrix limit; lower one of them",
    )
    need(0.0 < bu.significance < 1.0, "budget.significance must be in (0, 1)")
    need(bu.smoke_iters >= 1, "budget.smoke_iters must be at least 1")
    need(
        bu.max_cost_ratio >= 1.0 and bu.seconds_cost_ratio >= 1.0,
        "budget.max_cost_ratio and budget.seconds_cost_ratio must be at least 1",
    )
    _check_confirmation(bu)


def _check_confirmation(bu: BudgetConfig) -> None:
    need(
        bu.confirm_iters is None or bu.confirm_seconds is None,
        "set at most one of budget.confirm_iters and budget.confirm_seconds",
    )
    need(
        (bu.confirm_iters is None or bu.confirm_iters >= 1)
        and (bu.confirm_seconds is None or bu.confirm_seconds > 0)
        and (bu.confirm_repeats is None or bu.confirm_repeats >= 2),
        "budget.confirm_iters must be at least 1, confirm_seconds positive, confirm_repeats 2+",
    )
    need(
        bu.confirm_preset in ("", *PRESETS),
        f"budget.confirm_preset must be empty or one of {', '.join(PRESETS)}",
    )


def check_search(se: SearchConfig) -> None:
    need(se.schedule in SCHEDULES, f"search.schedule must be one of {', '.join(SCHEDULES)}")
    need(
        bool(se.rungs)
        and se.rungs[0] == 1
        and all(b > a for a, b in zip(se.rungs, se.rungs[1:], strict=False)),
        "search.rungs must start at 1 and increase, e.g. [1, 2, 5] (multiples of the search budget)",
    )
    need(0.0 < se.keep < 1.0, "search.keep must be in (0, 1), e.g. 0.5")


REASONING_EFFORTS = ("", "minimal", "low", "medium", "high")


def check_llm(llm: LLMConfig) -> None:
    need(llm.backend in LLM_BACKENDS, f"llm.backend must be one of {', '.join(LLM_BACKENDS)}")
    need(
        llm.max_tokens >= 1 and llm.timeout_s > 0 and llm.max_retries >= 0,
        "llm.max_tokens, llm.timeout_s must be positive and llm.max_retries 0 or more",
    )
    need(
        llm.reasoning_effort in REASONING_EFFORTS,
        f"llm.reasoning_effort must be one of {', '.join(repr(e) for e in REASONING_EFFORTS)}",
    )
    need(
        llm.context_tokens == 0 or llm.context_tokens > llm.max_tokens,
        f"llm.context_tokens ({llm.context_tokens}) must be 0 (auto) or more than "
        f"llm.max_tokens ({llm.max_tokens})",
    )
    need(
        all(v is None or v > 0 for v in (llm.max_usd, llm.max_usd_per_generation)),
        "llm.max_usd and llm.max_usd_per_generation must be positive (leave them out for no cap)",
    )
    for i, spec in enumerate(llm.models):
        bad = sorted(set(spec) - {"model", "base_url", "api_key_env"})
        need(
            not bad,
            f"llm.models[{i}]: unknown key {', '.join(bad)}; use model, base_url, api_key_env",
        )
        need(
            bool(spec.get("model")),
            f'llm.models[{i}] needs a model name, e.g. model = "gpt-4o-mini"',
        )


def check_sandbox(sb: SandboxConfig) -> None:
    need(sb.backend in SANDBOXES, f"sandbox.backend must be one of {', '.join(SANDBOXES)}")
    need(
        sb.timeout_s > 0 and sb.smoke_timeout_s > 0 and sb.memory_mb >= 64 and sb.allowance_s >= 0,
        "sandbox timeouts must be positive, sandbox.allowance_s 0 or more "
        "and sandbox.memory_mb at least 64",
    )


def check_forge(fo: ForgeConfig) -> None:
    need(fo.kind in FORGES, f"forge.kind must be one of {', '.join(FORGES)}")
    need(fo.max_open_prs >= 1, "forge.max_open_prs must be at least 1")


def check_sections(
    ev: EvolutionConfig,
    bu: BudgetConfig,
    fi: FitnessConfig,
    llm: LLMConfig,
    sb: SandboxConfig,
    fo: ForgeConfig,
    pr: ProgramConfig,
) -> None:
    """Every rule, section by section (the memory section has none beyond its types)."""
    check_evolution(ev)
    check_program(pr, ev)
    check_budget(bu, ev, pr)
    need(
        fi.perplexity_weight >= 0 and fi.mfu_weight >= 0 and fi.time_to_loss_weight >= 0,
        "fitness weights must be 0 or more",
    )
    check_llm(llm)
    check_sandbox(sb)
    check_forge(fo)
