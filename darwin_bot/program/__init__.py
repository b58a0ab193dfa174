"""Contracts between darwin-bot and the program under evolution (see :mod:`.base`).

``contract_for(cfg.program)`` picks the profile: ``darwin`` (the seed's own) or
``nanogpt`` (karpathy/nanoGPT as it is).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from darwin_bot import lazy_surface
from darwin_bot.config import ProgramConfig
from darwin_bot.errors import ConfigError
from darwin_bot.program.base import Contract, ContractKind
from darwin_bot.program.darwin import DarwinContract
from darwin_bot.program.nanogpt import PRESET_ARGS, PRESET_CONTEXT, NanoGPTContract

if TYPE_CHECKING:
    from darwin_bot.program.base import Launch, LaunchRequest, Part, TrainReport
    from darwin_bot.program.corpus import (
        DEFAULT_SYNTHETIC_TOKENS,
        SHAKESPEARE_URL,
        check_data_dir,
        default_text_out,
        load_meta,
        prepare_shakespeare,
        prepare_synthetic,
        prepare_text,
    )
    from darwin_bot.program.diagnose import dynamic_parts, guidance_text, preflight
    from darwin_bot.program.init_toml import toml_for


def require_files(contract: Contract, tree: Path) -> None:
    """ConfigError when ``tree`` lacks a file the contract runs (the caller passed the wrong folder)."""
    for rel in contract.required_files:
        if not (tree / rel).is_file():
            if contract.kind == ContractKind.DARWIN:
                hint = "pass the root of a darwin tree (the folder holding seed/)"
            else:
                hint = (
                    f"pass the folder holding nanoGPT's {', '.join(contract.required_files)}; "
                    "'darwin check' lists what the contract needs"
                )
            raise ConfigError(f"{tree} has no {rel}; {hint}")


def contract_for(program: ProgramConfig | None) -> Contract:
    """The contract profile ``[program]`` names, with its paths and arguments filled in."""
    program = program or ProgramConfig()
    if program.contract == ContractKind.NANOGPT:
        return NanoGPTContract(
            train_path=program.train or "train.py",
            model_path=program.model or "model.py",
            files=program.files or ("configurator.py", "config/"),
            args={**PRESET_ARGS, **program.args},
            context={**PRESET_CONTEXT, **program.context},
        )
    return DarwinContract(
        train_path=program.train or "seed/train.py", model_path=program.model or "seed/model.py"
    )


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "Contract",
    "ContractKind",
    "DEFAULT_SYNTHETIC_TOKENS",
    "DarwinContract",
    "Launch",
    "LaunchRequest",
    "NanoGPTContract",
    "Part",
    "SHAKESPEARE_URL",
    "TrainReport",
    "check_data_dir",
    "contract_for",
    "default_text_out",
    "dynamic_parts",
    "guidance_text",
    "load_meta",
    "preflight",
    "prepare_shakespeare",
    "prepare_synthetic",
    "prepare_text",
    "require_files",
    "toml_for",
]
_HOMES = {
    "DEFAULT_SYNTHETIC_TOKENS": ".corpus",
    "Launch": ".base",
    "LaunchRequest": ".base",
    "Part": ".base",
    "SHAKESPEARE_URL": ".corpus",
    "TrainReport": ".base",
    "check_data_dir": ".corpus",
    "default_text_out": ".corpus",
    "dynamic_parts": ".diagnose",
    "guidance_text": ".diagnose",
    "load_meta": ".corpus",
    "preflight": ".diagnose",
    "prepare_shakespeare": ".corpus",
    "prepare_synthetic": ".corpus",
    "prepare_text": ".corpus",
    "toml_for": ".init_toml",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
