"""``darwin.toml`` -> frozen dataclasses.

Every key has a default, so an empty file is a valid configuration. An unknown
key is an error that names the closest valid key; a value of the wrong type or
out of range is an error that says what is allowed. ``DEFAULT_TOML`` is the
commented file ``darwin init`` writes, and a test checks it parses to the
defaults.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from darwin_bot.errors import ConfigError

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
    # confirmation at a longer budget before promotion (darwin_bot/core/confirm.py); set one
    # of confirm_iters / confirm_seconds to turn it on
    confirm_iters: int | None = None
    confirm_seconds: float | None = None
    confirm_repeats: int | None = None  # default: repeats
    confirm_preset: str = ""  # default: preset


@dataclass(frozen=True)
class FitnessConfig:
    perplexity_weight: float = 1.0
    mfu_weight: float = 0.0  # MFU rests on the program's own token count: opt in


@dataclass(frozen=True)
class LLMConfig:
    backend: str = "auto"
    model: str = "gpt-4o-mini"
    base_url: str = ""
    temperature: float = 0.7
    max_tokens: int = 4096
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


@dataclass(frozen=True)
class Config:
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    fitness: FitnessConfig = field(default_factory=FitnessConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    forge: ForgeConfig = field(default_factory=ForgeConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    program: ProgramConfig = field(default_factory=ProgramConfig)

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with some keys of one section changed (validated like the file)."""
        current = dataclasses.asdict(getattr(self, section))
        current.update(changes)
        raw = {s: dataclasses.asdict(getattr(self, s)) for s in _section_names()}
        raw[section] = current
        return from_dict(raw)


def _section_names() -> list[str]:
    return [f.name for f in dataclasses.fields(Config)]


def _closest(name: str, options: list[str]) -> str:
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return (
        f"; did you mean {match[0]!r}?" if match else f"; valid keys: {', '.join(sorted(options))}"
    )


def _coerce(where: str, value: Any, hint: Any) -> Any:
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is type(None) or hint is type(None):
        return None
    if args and type(None) in args:  # Optional[X]
        if value is None:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(where, value, inner)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(f"{where}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected a list of {len(args)} values, got {value!r}")
        return tuple(
            _coerce(f"{where}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args, strict=True))
        )
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return {str(k): _coerce(f"{where}.{k}", v, args[1]) for k, v in value.items()}
    raise ConfigError(f"{where}: unsupported type {hint!r}")  # pragma: no cover


def _build(section: str, cls: type, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{section}] must be a table, got {raw!r}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in names:
            raise ConfigError(f"unknown key {section}.{key}{_closest(key, names)}")
        kwargs[key] = _coerce(f"{section}.{key}", value, hints[key])
    return cls(**kwargs)


def _check(cfg: Config) -> None:
    ev, bu, llm, sb, fo = cfg.evolution, cfg.budget, cfg.llm, cfg.sandbox, cfg.forge

    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise ConfigError(msg)

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
    pr = cfg.program
    need(
        pr.contract in CONTRACT_PRESETS,
        f"program.contract must be one of {', '.join(CONTRACT_PRESETS)}",
    )
    if pr.contract == "nanogpt":
        under = [
            f
            for f in (pr.train or "train.py", pr.model or "model.py")
            if not any(
                f == e.rstrip("/") or f.startswith(e)
                for e in ev.evolvable
                if e.endswith("/") or f == e
            )
        ]
        need(
            not under,
            f"evolution.evolvable must hold {', '.join(under)} under the nanogpt contract "
            '(e.g. evolvable = ["model.py", "train.py"]; darwin init --contract nanogpt writes it)',
        )
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
    need(
        cfg.fitness.perplexity_weight >= 0 and cfg.fitness.mfu_weight >= 0,
        "fitness weights must be 0 or more",
    )
    need(llm.backend in LLM_BACKENDS, f"llm.backend must be one of {', '.join(LLM_BACKENDS)}")
    need(
        llm.max_tokens >= 1 and llm.timeout_s > 0 and llm.max_retries >= 0,
        "llm.max_tokens, llm.timeout_s must be positive and llm.max_retries 0 or more",
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
    need(sb.backend in SANDBOXES, f"sandbox.backend must be one of {', '.join(SANDBOXES)}")
    need(
        sb.timeout_s > 0 and sb.smoke_timeout_s > 0 and sb.memory_mb >= 64 and sb.allowance_s >= 0,
        "sandbox timeouts must be positive, sandbox.allowance_s 0 or more "
        "and sandbox.memory_mb at least 64",
    )
    need(fo.kind in FORGES, f"forge.kind must be one of {', '.join(FORGES)}")
    need(fo.max_open_prs >= 1, "forge.max_open_prs must be at least 1")


def from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a Config from parsed TOML."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in sections:
            raise ConfigError(f"unknown section [{name}]{_closest(name, list(sections))}")
        kwargs[name] = _build(name, get_type_hints(Config)[name], value)
    cfg = Config(**kwargs)
    _check(cfg)
    return cfg


def load(path: str | Path | None) -> Config:
    """Load ``path`` (``darwin.toml``); a missing path means all defaults."""
    if path is None:
        return Config()
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist; run 'darwin init' to write one")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r}); "
            "save it as UTF-8"
        ) from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{p} is a folder; point --config at darwin.toml") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}; fix that line") from exc
    try:
        return from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from exc


DEFAULT_TOML = """\
# darwin.toml: the configuration of darwin-bot. Every key is optional.

[evolution]
population = 10          # agents per generation (survivors + offspring)
survivors = 4            # top-k kept after each generation
generations = 3          # generations per `darwin run`
mutation_rate = 0.3      # chance that each chunk of a file is rewritten (at least one is)
crossover_rate = 0.0     # share of offspring made by merging two parents
selection = "tournament" # or "dgm": score x 1/(1 + children), as the Darwin Goedel Machine
tournament_size = 3
seed = 0                 # seeds selection, the heuristic mutator and training
evolvable = ["seed/"]    # the only paths a mutation may change
max_file_lines = 800
repair_attempts = 1      # LLM repairs of a failed validation or smoke test
branch_prefix = "darwin/"

[budget]
preset = "tiny"          # tiny | paper | nanogpt (see seed/train.py)
iters = 100              # fixed training iterations per evaluation (tiny, on CPU) ...
# seconds = 300.0        # ... or wall-clock seconds from process start (paper/nanogpt on a GPU)
repeats = 3              # runs of the baseline and of a champion candidate
significance = 0.05      # one-sided test a champion must pass against the baseline
smoke_iters = 12         # smoke-test iterations: past the warmup, so the decay branch runs too
data = "data/shakespeare_char"
max_cost_ratio = 1.5     # an iteration budget's run may take this many times the seed's mean
                         # training wall time; past it, it is over_budget (ranks last)
seconds_cost_ratio = 1.05  # the same for a seconds budget (its wall time varies far less)
# confirm_iters = 500    # promote only if the gain also holds at this longer budget ...
# confirm_seconds = 300.0  # ... or this one (set at most one)
# confirm_repeats = 3    # seeds at the confirmation budget (default: repeats)
# confirm_preset = ""    # default: preset

[fitness]                # fitness = -w_ppl * rel. perplexity change + w_mfu * rel. MFU change
perplexity_weight = 1.0
mfu_weight = 0.0         # MFU counts the program's own reported tokens: opt in to rank on it

[llm]
backend = "auto"         # auto: openai when OPENAI_API_KEY or base_url is set, else heuristic
model = "gpt-4o-mini"
base_url = ""            # any OpenAI-compatible server: vLLM, Ollama, llama.cpp
temperature = 0.7
max_tokens = 4096
timeout_s = 120.0
max_retries = 4
max_reply_chars = 60000
script = ""              # JSONL replies for backend = "scripted"
# prices = { "gpt-4o-mini" = [0.00015, 0.0006] }   # USD per 1k prompt, completion tokens
# max_usd = 5.0          # stop mutating before the LLM spend of this evolution passes $5
# max_usd_per_generation = 0.5
# models = [             # several endpoints; each mutation's model is picked by UCB1 on gain per $
#   { model = "gpt-4o-mini" },
#   { model = "qwen2.5-coder", base_url = "http://localhost:8000/v1", api_key_env = "VLLM_KEY" },
# ]

[sandbox]
backend = "auto"         # auto | bwrap | unshare | none (none runs agent code unconfined)
timeout_s = 900.0        # the wall limit when nothing tighter applies
smoke_timeout_s = 120.0
allowance_s = 5.0        # a seconds budget counts from the process start (start-up included);
                         # the process is killed at seconds + this (saving, the kill's slack)
memory_mb = 8192
max_procs = 256

[forge]
kind = "local"           # local (files under path) | github
repository = ""          # owner/name; default $GITHUB_REPOSITORY
base_url = ""            # GitHub Enterprise API URL
path = ".darwin/forge"
default_branch = ""      # default: the repository's
max_open_prs = 20
automerge = false        # merge the champion's PR when it passes the statistical gate

[memory]
path = "memory"
digest_tokens = 1500

[program]                # the program under evolution; see `darwin check`
contract = "darwin"      # darwin (seed/, DARWIN_* variables) | nanogpt (karpathy/nanoGPT as it is)
"""
