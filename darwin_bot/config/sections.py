"""The sections of ``darwin.toml`` as frozen dataclasses, and the choices their keys allow.

Every key has a default; the comments in :data:`darwin_bot.config.template.DEFAULT_TOML`
say what each one does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRESETS: tuple[str, ...] = ("tiny", "paper", "nanogpt", "shakespeare-char")
# The presets each program contract knows (see darwin_bot.program): the seed's own
# scales, and nanoGPT's configs (tiny = its README's CPU example).
CONTRACT_PRESETS: dict[str, tuple[str, ...]] = {
    "darwin": ("tiny", "paper", "nanogpt"),
    "nanogpt": ("tiny", "shakespeare-char"),
}
SANDBOXES: tuple[str, ...] = ("auto", "bwrap", "unshare", "none")
LLM_BACKENDS: tuple[str, ...] = ("auto", "openai", "heuristic", "scripted")
FORGES: tuple[str, ...] = ("local", "github")
SELECTIONS: tuple[str, ...] = ("tournament", "dgm")
SCHEDULES: tuple[str, ...] = ("flat", "halving")  # darwin_bot/core/schedule.py

# GitHub Actions: "A matrix can generate a maximum of 256 jobs per workflow run"
# (docs.github.com, Running variations of jobs in a workflow).
MAX_MATRIX_JOBS = 256


@dataclass(frozen=True)
class EvolutionConfig:
    population: int = 10
    survivors: int = 4
    generations: int = 3
    mutation_rate: float = 0.3
    crossover_rate: float = 0.0
    selection: str = "tournament"
    tournament_size: int = 3
    seed: int = 0
    evolvable: tuple[str, ...] = ("seed/",)
    max_file_lines: int = 800
    repair_attempts: int = 1
    branch_prefix: str = "darwin/"


@dataclass(frozen=True)
class BudgetConfig:
    preset: str = "tiny"
    iters: int | None = 100
    seconds: float | None = None
    repeats: int = 3
    significance: float = 0.05
    smoke_iters: int = 12
    data: str = "data/shakespeare_char"
    max_cost_ratio: float = 1.5
    seconds_cost_ratio: float = 1.05
    curve: tuple[float, ...] = (0.25, 0.5, 0.75)  # budget fractions of the trusted curve
    # confirmation at a longer budget before promotion (darwin_bot/core/confirm.py); set one
    # of confirm_iters / confirm_seconds to turn it on
    confirm_iters: int | None = None
    confirm_seconds: float | None = None
    confirm_repeats: int | None = None  # default: repeats
    confirm_preset: str = ""  # default: preset


@dataclass(frozen=True)
class SearchConfig:
    """How a generation spends its training runs across budgets (``core.schedule``)."""

    schedule: str = "flat"
    rungs: tuple[int, ...] = (1, 2, 5)  # halving: budget multipliers of the search budget
    keep: float = 0.5  # halving: the share of a rung that advances to the next


@dataclass(frozen=True)
class FitnessConfig:
    perplexity_weight: float = 1.0
    mfu_weight: float = 0.0  # MFU rests on the program's own token count: opt in
    time_to_loss_weight: float = 0.0  # trusted: 1 - the budget fraction to the seed's loss


@dataclass(frozen=True)
class LLMConfig:
    backend: str = "auto"
    model: str = "gpt-4o-mini"
    base_url: str = ""
    temperature: float = 0.7  # not sent to reasoning models (gpt-5*, o-series): they take none
    max_tokens: int = (
        4096  # the completion budget (max_completion_tokens where the server takes it)
    )
    reasoning_effort: str = ""  # minimal | low | medium | high for reasoning models; "": theirs
    # the model's context window in tokens; 0: what the server reports (llama.cpp, vLLM), else
    # the known window of the model's family, else 8192
    context_tokens: int = 0
    timeout_s: float = 120.0
    max_retries: int = 4
    max_reply_chars: int = 60000
    script: str = ""
    # model name -> [USD per 1k prompt tokens, USD per 1k completion tokens]; over the
    # shipped table (darwin_bot/spend/prices.json)
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    # spend caps in USD (darwin_bot/spend): the whole evolution's ledger, and one generation's
    max_usd: float | None = None
    max_usd_per_generation: float | None = None
    # several OpenAI-compatible endpoints, picked per mutation by a bandit (darwin_bot/spend):
    # each {model = "...", base_url = "...", api_key_env = "NAME_OF_ENV_VAR"} (model required)
    models: tuple[dict[str, str], ...] = ()
    allowed_imports: tuple[str, ...] = (
        "math",
        "os",
        "time",
        "json",
        "pickle",
        "contextlib",
        "dataclasses",
        "functools",
        "inspect",
        "typing",
        "numpy",
        "torch",
    )


@dataclass(frozen=True)
class SandboxConfig:
    backend: str = "auto"
    timeout_s: float = 900.0
    smoke_timeout_s: float = 120.0
    allowance_s: float = 5.0
    memory_mb: int = 8192
    max_procs: int = 256


@dataclass(frozen=True)
class ForgeConfig:
    kind: str = "local"
    repository: str = ""
    base_url: str = ""
    path: str = ".darwin/forge"
    default_branch: str = ""
    max_open_prs: int = 20
    automerge: bool = False


@dataclass(frozen=True)
class MemoryConfig:
    path: str = "memory"
    digest_tokens: int = 1500


@dataclass(frozen=True)
class ProgramConfig:
    """How the program under evolution is run and scored (``darwin_bot.program``).

    Empty values take the contract's defaults: ``darwin`` runs ``seed/train.py``;
    ``nanogpt`` runs ``train.py`` from its own folder with ``files`` =
    ``configurator.py`` and ``config/`` and the per-preset ``args`` of its README.
    """

    contract: str = "darwin"
    train: str = ""
    model: str = ""
    files: tuple[str, ...] = ()  # files the program reads but a mutation may not change
    args: dict[str, tuple[str, ...]] = field(default_factory=dict)  # preset -> argv
    context: dict[str, int] = field(default_factory=dict)  # preset -> scoring window length
