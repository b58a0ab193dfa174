"""The darwin.toml ``darwin init --contract CONTRACT`` writes.

``darwin``: :data:`darwin_bot.config.DEFAULT_TOML`, unchanged. ``nanogpt``: the
same file with nanoGPT's evolvable paths, its presets (``tiny`` = the README's
CPU example, ``shakespeare-char`` = ``config/train_shakespeare_char.py``)
spelled out under ``[program.args]`` so they can be edited, and the
``[program]`` table.
"""

from __future__ import annotations

import json

from darwin_bot.config import DEFAULT_TOML
from darwin_bot.program.base import ContractKind
from darwin_bot.program.nanogpt import PRESET_ARGS, PRESET_CONTEXT

NANOGPT_PROGRAM = """\
[program]                # karpathy/nanoGPT as it is: `darwin check` says what it needs
contract = "nanogpt"
train = "train.py"       # run as `python train.py ARGS --out_dir=... --max_iters=...` from its folder
model = "model.py"       # scoring builds GPT(GPTConfig(**ckpt['model_args'])) from it
files = ["configurator.py", "config/"]   # read by the program, never changed by a mutation

[program.args]           # per preset: what train.py gets before darwin's own overrides
{args}

[program.context]        # per preset: the held-out window length (the block_size it trains with)
{context}
"""


def _toml_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def toml_for(contract: str) -> str:
    """The commented darwin.toml for ``contract``."""
    if contract == ContractKind.DARWIN:
        return DEFAULT_TOML
    text = DEFAULT_TOML.replace(
        'evolvable = ["seed/"]    # the only paths a mutation may change',
        'evolvable = ["model.py", "train.py"]  # the only paths a mutation may change',
    ).replace(
        'preset = "tiny"          # tiny | paper | nanogpt (see seed/train.py)',
        'preset = "tiny"          # tiny (nanoGPT README\'s CPU example) | shakespeare-char',
    )
    head, sep, _ = text.partition("[program]")
    assert sep, "DEFAULT_TOML has a [program] table"
    args = "\n".join(f'"{k}" = {_toml_list(v)}' for k, v in PRESET_ARGS.items())
    context = "\n".join(f'"{k}" = {v}' for k, v in PRESET_CONTEXT.items())
    return head + NANOGPT_PROGRAM.format(args=args, context=context)
