"""Contracts between darwin-bot and the program under evolution (see :mod:`.base`).

``contract_for(cfg.program)`` picks the profile: ``darwin`` (the seed's own) or
``nanogpt`` (karpathy/nanoGPT as it is).
"""

from __future__ import annotations

from pathlib import Path

from darwin_bot.config import ProgramConfig
from darwin_bot.errors import ConfigError
from darwin_bot.program.base import (
    Contract,
    ContractKind,
    Launch,
    LaunchRequest,
    Part,
    TrainReport,
)
from darwin_bot.program.darwin import DarwinContract
from darwin_bot.program.nanogpt import PRESET_ARGS, PRESET_CONTEXT, NanoGPTContract


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


__all__ = [
    "Contract",
    "ContractKind",
    "DarwinContract",
    "Launch",
    "LaunchRequest",
    "NanoGPTContract",
    "Part",
    "TrainReport",
    "contract_for",
    "require_files",
]
