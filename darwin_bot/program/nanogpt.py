"""The ``nanogpt`` contract: karpathy/nanoGPT's ``train.py`` and ``model.py`` as they are.

Training runs the way nanoGPT's README runs it, ``python train.py [config]
--key=value ...``, from the folder that holds ``train.py`` (it does
``exec(open('configurator.py').read())`` relative to the working folder). The
argv is the preset's own (``[program.args]``; ``tiny`` = the README's CPU
example) followed by darwin's overrides, each passed only when ``train.py``
defines that global (its configurator rejects unknown keys):

- ``--out_dir`` = the sandbox's only writable folder;
- ``--dataset`` = the absolute data folder (``os.path.join('data', '/abs')`` is
  ``/abs``), which holds ``train.bin``, ``meta.pkl`` written by the trusted side
  from ``meta.json``, and a *stand-in* ``val.bin``: the last tenth of the
  training tokens. nanoGPT's ``estimate_loss`` reads ``val.bin`` at iteration
  0; the held-out split never enters the sandbox, so its own val loss is a
  train-split number and darwin ignores it;
- ``--max_iters`` = the budget, ``--eval_interval`` = the step between the
  learning curve's points (a quarter of the budget for the default fractions
  0.25, 0.5, 0.75; the budget itself when the fractions are not evenly spaced or
  do not divide it) and ``--always_save_checkpoint=True``: nanoGPT saves
  ``ckpt.pt`` only at an eval point with ``iter_num > 0``, so it writes it at
  each point of the curve (the harness copies each) and last at the end of the budget;
- ``--eval_iters=1`` (its own eval is on the stand-in: kept cheap),
  ``--device``, ``--compile=False`` (compile time would be charged to the
  budget), ``--dtype=float32`` on CPU, ``--wandb_log=False``, ``--seed`` when
  the script has one (karpathy's has none: it seeds with 1337).

Scoring builds ``GPT(GPTConfig(**model_args))`` from the agent's own
``model.py`` and loads ``ckpt['model']`` (``_orig_mod.`` stripped), with
``torch.load(weights_only=True)``, in the scoring sandbox
(``darwin_bot/evaluate/nanogpt_adapter.py``). The budget is iterations only:
nanoGPT has no time budget.
"""

from __future__ import annotations

import ast
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from darwin_bot.core import Budget
from darwin_bot.errors import ConfigError
from darwin_bot.program.base import (
    ContractKind,
    Launch,
    LaunchRequest,
    Part,
    TrainReport,
    parse,
    top_level_names,
)
from darwin_bot.program.nanogpt_static import (
    REQUIRED_KEYS,
    check_edit,
    read_checkpoint_report,
    static_parts,
)

# README.md of nanoGPT: "python train.py config/train_shakespeare_char.py --device=cpu ..."
# (max_iters is darwin's budget, so it is not in the list).
README_CPU_ARGS: tuple[str, ...] = (
    "config/train_shakespeare_char.py",
    "--device=cpu",
    "--compile=False",
    "--eval_iters=20",
    "--log_interval=1",
    "--block_size=64",
    "--batch_size=12",
    "--n_layer=4",
    "--n_head=4",
    "--n_embd=128",
    "--lr_decay_iters=2000",
    "--dropout=0.0",
)
PRESET_ARGS: dict[str, tuple[str, ...]] = {
    "tiny": README_CPU_ARGS,
    "shakespeare-char": ("config/train_shakespeare_char.py",),
}
PRESET_CONTEXT: dict[str, int] = {"tiny": 64, "shakespeare-char": 256}
OPTIONAL_KEYS = ("eval_iters", "compile", "dtype", "wandb_log", "seed")
STANDIN_FRACTION = 10  # val.bin stand-in = the last 1/10 of train.bin
MIN_STANDIN_TOKENS = 4096
CONFIGURATOR = "configurator.py"
NANOGPT_RULES = """\
- Keep the contract of karpathy/nanoGPT: `python {train} [config] --key=value ...` runs from
  its folder and executes configurator.py, which overrides train.py's globals {keys}: keep
  them plain top-level globals, and keep the exec of configurator.py. train.py saves ckpt.pt in
  out_dir with 'model_args' and 'model' (the state dict) at each eval point with iter_num > 0.
  {model} keeps GPTConfig(**model_args) and GPT(config) whose forward(idx[B, T], targets=None)
  gives logits that depend only on positions <= t (causal); with targets it returns
  (logits [B, T, vocab], loss). The scorer runs it as a torch.export graph at [1, T]: keep
  forward tensor operations only (no Python branches on the data, no state between calls).
- At run time {configs} and the arguments {args} override train.py's globals of those names,
  so editing their values in train.py changes nothing: change the code (model, optimizer,
  schedule, training loop) instead."""


@dataclass(frozen=True)
class NanoGPTContract:
    train_path: str = "train.py"
    model_path: str = "model.py"
    files: tuple[str, ...] = (CONFIGURATOR, "config/")
    args: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(PRESET_ARGS))
    context: dict[str, int] = field(default_factory=lambda: dict(PRESET_CONTEXT))
    kind: ContractKind = ContractKind.NANOGPT
    model_file: str = "ckpt.pt"
    curve_file: str = "ckpt.pt"  # nanoGPT rewrites it at every eval point

    @property
    def program_dir(self) -> str:
        return str(PurePosixPath(self.train_path).parent)

    def _rel(self, name: str) -> str:
        return str(PurePosixPath(self.program_dir) / name) if self.program_dir != "." else name

    @property
    def required_files(self) -> tuple[str, ...]:
        return (self.train_path, self.model_path, self._rel(CONFIGURATOR))

    @property
    def support_files(self) -> tuple[str, ...]:
        return tuple(self._rel(f) for f in self.files)

    def copy_paths(self, evolvable: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*evolvable, *self.support_files]))

    def preset_args(self, preset: str) -> tuple[str, ...]:
        if preset not in self.args:
            raise ConfigError(
                f"no arguments for preset {preset!r} under [program.args]; "
                f"known: {', '.join(self.args)}"
            )
        return self.args[preset]

    def static_parts(self, tree: Path, preset: str) -> list[Part]:

        return static_parts(self, tree, preset)

    def launch(self, req: LaunchRequest, tree: Path) -> Launch:
        if req.budget.iters is None:
            raise ConfigError(
                "the nanogpt contract needs an iteration budget (budget.iters or "
                "--iters): nanoGPT's train.py stops at max_iters and has no time budget"
            )
        syntax = parse(tree / self.train_path)
        defined = top_level_names(syntax) if syntax is not None else set()
        values: dict[str, object] = {
            "out_dir": req.out,
            "dataset": req.data,
            "max_iters": req.budget.iters,
            "eval_interval": eval_interval(req.budget.iters, req.curve),
            "always_save_checkpoint": True,
            "device": req.device,
            "eval_iters": 1,
            "compile": False,
            "wandb_log": False,
            "seed": req.seed,
        }
        if req.device == "cpu":
            values["dtype"] = "float32"
        overrides = [f"--{k}={v}" for k, v in values.items() if k in defined]
        env = (("OMP_NUM_THREADS", str(req.threads)),) if req.threads else ()
        script = PurePosixPath(self.train_path).name
        return Launch((script, *self.preset_args(req.preset), *overrides), self.program_dir, env)

    def curve_fractions(self, budget: Budget, asked: tuple[float, ...]) -> tuple[float, ...]:
        if budget.iters is None or eval_interval(budget.iters, asked) == budget.iters:
            return ()  # nanoGPT saves only at multiples of eval_interval: not at these
        return asked

    def stage_data(self, dest: Path) -> None:
        """meta.pkl from meta.json, and the stand-in val.bin cut from train.bin."""
        import json
        import pickle

        meta = json.loads((dest / "meta.json").read_text(encoding="utf-8"))
        with open(dest / "meta.pkl", "wb") as f:
            pickle.dump(meta, f)
        train = np.memmap(dest / "train.bin", dtype=np.uint16, mode="r")
        n = max(len(train) // STANDIN_FRACTION, min(MIN_STANDIN_TOKENS, len(train)))
        np.asarray(train[len(train) - n :]).tofile(dest / "val.bin")
        for name in ("meta.pkl", "val.bin"):
            (dest / name).chmod(0o644)

    def output_problem(self, out: Path) -> str | None:
        if regular_file(out / self.model_file):
            return None
        found = ", ".join(sorted(p.name for p in out.iterdir())[:8]) or "nothing"
        return (
            f"train.py wrote no ckpt.pt in out_dir (it wrote: {found}); nanoGPT saves it only at "
            "an eval point with iter_num > 0: keep the save under `if iter_num > 0` and the "
            "eval_interval/always_save_checkpoint/out_dir overrides working"
        )

    def read_report(self, out: Path, wall_s: float) -> TrainReport | None:

        return read_checkpoint_report(out / self.model_file, wall_s)

    def worker_args(self) -> list[str]:
        return ["--contract", self.kind.value, "--model-file", self.model_path]

    def eval_context(self, preset: str) -> int:
        if preset not in self.context:
            raise ConfigError(
                f"no scoring context for preset {preset!r}; set it under "
                "[program.context] (the block_size its arguments train with)"
            )
        return self.context[preset]

    def rules(self) -> str:
        argv = [a for args in self.args.values() for a in args]
        configs = sorted({a for a in argv if not a.startswith("--")})
        keys = sorted({a[2:].partition("=")[0] for a in argv if a.startswith("--")})
        return NANOGPT_RULES.format(
            train=self.train_path,
            model=self.model_path,
            keys=", ".join([*REQUIRED_KEYS, *OPTIONAL_KEYS]),
            configs=", ".join(configs) or "no config file",
            args=", ".join(f"--{k}" for k in keys) or "(none)",
        )

    def check_edit(self, path: str, old: ast.Module, new: ast.Module) -> str | None:

        return check_edit(self, path, old, new)


def eval_interval(iters: int, curve: tuple[float, ...]) -> int:
    """nanoGPT saves ckpt.pt at multiples of eval_interval: the curve's step when its
    fractions are 1/n, 2/n, ... and n divides the budget (the last save is then the end);
    else the budget itself (one save, at the end: no curve)."""
    n = len(curve) + 1
    even = all(abs(f - (k + 1) / n) < 1e-9 for k, f in enumerate(curve))
    return iters // n if curve and even and iters % n == 0 else iters


def regular_file(path: Path) -> bool:
    """A regular file that is not a link (the agent's output folder is hostile)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
