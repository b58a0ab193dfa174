"""``darwin run``: the evolution, locally, for N generations (resumable)."""

from __future__ import annotations

from pathlib import Path

import click

from darwin_bot.cli.options import config_option, load_config, repo_option
from darwin_bot.cli.render import print_final, print_generation
from darwin_bot.config import Config


def _preflight(root: Path, cfg: Config) -> None:
    """A tree that breaks its contract stops here, with what to fix."""
    from darwin_bot.program import contract_for, preflight

    preflight(contract_for(cfg.program), root.resolve(), cfg.budget.preset)


@click.command("run")
@click.option(
    "--generations",
    "-g",
    type=click.IntRange(min=1),
    default=None,
    help="Generations to run (default: evolution.generations).",
)
@repo_option("The repository to evolve.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel evaluations (default: one per GPU, or one per 2 CPU cores).",
)
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.option(
    "--wait", is_flag=True, help="If another darwin run holds the repository, wait for it."
)
@config_option
def run_command(
    generations: int | None,
    root: Path,
    workers: int | None,
    quiet: bool,
    wait: bool,
    config_path: Path | None,
) -> None:
    """Evolve the repository's seed/ locally. Killed and started again, it resumes."""
    from darwin_bot.cli.app import build_engine
    from darwin_bot.cli.live import interrupts
    from darwin_bot.publish import make_publisher

    cfg = load_config(config_path, root)
    _preflight(root, cfg)
    with interrupts():  # Ctrl-C: one line, the sandboxes ended, exit 3 (resume later)
        engine = build_engine(
            root,
            cfg,
            workers=workers,
            quiet=quiet,
            publisher=make_publisher(root, cfg),
            wait=wait,
            on_generation=print_generation,  # each leaderboard as its generation ends
        )
        engine.run(generations or cfg.evolution.generations)
    print_final(engine.repo, engine.generations(), engine.state)
