"""``darwin.toml`` -> frozen dataclasses.

Every key has a default, so an empty file is a valid configuration. An unknown
key is an error that names the closest valid key; a value of the wrong type or
out of range is an error that says what is allowed. ``DEFAULT_TOML`` is the
commented file ``darwin init`` writes, and a test checks it parses to the
defaults.

The parts: ``sections`` (the dataclasses and the choices), ``coerce`` (TOML
values to typed fields), ``checks`` (the rules beyond types), ``template``
(``DEFAULT_TOML``); this module is the whole :class:`Config` and its loading.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from darwin_bot import lazy_surface
from darwin_bot.config.checks import check_search, check_sections
from darwin_bot.config.coerce import build, closest
from darwin_bot.config.sections import (
    BudgetConfig,
    EvolutionConfig,
    FitnessConfig,
    ForgeConfig,
    LLMConfig,
    MemoryConfig,
    ProgramConfig,
    SandboxConfig,
    SearchConfig,
)
from darwin_bot.errors import ConfigError

if TYPE_CHECKING:
    from darwin_bot.config.sections import CONTRACT_PRESETS, MAX_MATRIX_JOBS, PRESETS, SANDBOXES
    from darwin_bot.config.template import DEFAULT_TOML


@dataclass(frozen=True)
class Config:
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
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


def _check(cfg: Config) -> None:
    check_sections(
        cfg.evolution, cfg.budget, cfg.fitness, cfg.llm, cfg.sandbox, cfg.forge, cfg.program
    )
    check_search(cfg.search)


def from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a Config from parsed TOML."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in sections:
            raise ConfigError(f"unknown section [{name}]{closest(name, list(sections))}")
        kwargs[name] = build(name, get_type_hints(Config)[name], value)
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


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "BudgetConfig",
    "CONTRACT_PRESETS",
    "Config",
    "DEFAULT_TOML",
    "EvolutionConfig",
    "FitnessConfig",
    "ForgeConfig",
    "LLMConfig",
    "MAX_MATRIX_JOBS",
    "MemoryConfig",
    "PRESETS",
    "ProgramConfig",
    "SANDBOXES",
    "SandboxConfig",
    "SearchConfig",
    "from_dict",
    "load",
]
_HOMES = {
    "CONTRACT_PRESETS": ".sections",
    "DEFAULT_TOML": ".template",
    "MAX_MATRIX_JOBS": ".sections",
    "PRESETS": ".sections",
    "SANDBOXES": ".sections",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
