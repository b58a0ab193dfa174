"""``darwin check [PATH]``: does the program in PATH keep its contract? One line per part.

Runs the static checks of the configured contract (``[program] contract``) and
then the evaluator's smoke test (a few iterations on a slice of the data, in
the sandbox, scored on a few windows), and prints for each part of the
contract ``ok`` or ``MISS`` with what is missing and how to fix it. Exit 2 on
a miss. Without the configured corpus it smoke-tests on a small synthetic one.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click

from darwin_bot.cli.options import config_option, load_config
from darwin_bot.config import SANDBOXES
from darwin_bot.program import Part


def _data_dir(path: Path, cfg_data: str, data: Path | None, scratch: Path) -> tuple[Path, Part]:
    from darwin_bot.program import prepare_synthetic

    chosen = data or (Path(cfg_data) if Path(cfg_data).is_absolute() else path / cfg_data)
    if all((chosen / n).is_file() for n in ("train.bin", "val.bin", "meta.json")):
        return chosen, Part("data", True, str(chosen))
    prepare_synthetic(scratch / "data", seed=0, tokens=120_000)
    # A miss: nothing can be evolved without the corpus; the program is still smoke-tested.
    return scratch / "data", Part(
        "data",
        False,
        f"{chosen} has no corpus: run 'darwin data prepare --input FILE "
        f"--out {chosen}' (the program was smoke-tested on synthetic data)",
    )


@click.command("check")
@click.argument("path", type=click.Path(file_okay=False, exists=True, path_type=Path), default=".")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder with train.bin, val.bin, meta.json [config budget.data].",
)
@click.option(
    "--sandbox",
    type=click.Choice(SANDBOXES),
    default=None,
    help="Sandbox backend [config sandbox.backend].",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@config_option
def check_command(
    path: Path, data_dir: Path | None, sandbox: str | None, device: str, config_path: Path | None
) -> None:
    """Check that the program in PATH (default: .) keeps the configured contract."""
    from darwin_bot.cli.eval_options import refuse_secrets
    from darwin_bot.evaluate import EvalOptions, evaluate_tree
    from darwin_bot.program import contract_for, dynamic_parts

    refuse_secrets(os.environ)
    cfg = load_config(config_path, root=path)
    contract = contract_for(cfg.program)
    preset = cfg.budget.preset
    click.echo(f"contract {contract.kind} (preset {preset}) in {path}")
    parts = contract.static_parts(path.resolve(), preset)
    with tempfile.TemporaryDirectory(prefix="darwin-check-") as tmp:
        data, data_part = _data_dir(path, cfg.budget.data, data_dir, Path(tmp))
        parts.append(data_part)
        if all(p.ok for p in parts if p is not data_part):
            changes = {"data_dir": data, "device": device}
            if sandbox is not None:
                changes["sandbox"] = sandbox
            opts = EvalOptions.from_config(cfg, path, smoke=True, **changes)
            parts += dynamic_parts(contract, evaluate_tree(path, opts))
    for part in parts:
        click.echo(part.line())
    misses = sum(not p.ok for p in parts)
    click.echo(f"{misses} part(s) missing" if misses else "the program keeps its contract")
    if misses:
        sys.exit(2)
