"""``darwin status``: the population and the last leaderboard."""

from __future__ import annotations

from pathlib import Path

import click

from darwin_bot.cli.options import config_option, load_config, repo_option


@click.command("status")
@repo_option()
@config_option
def status_command(root: Path, config_path: Path | None) -> None:
    """Print the agents (branches), the last generation's leaderboard and the champion."""
    from darwin_bot.cli.render import print_generation
    from darwin_bot.gitrepo import GitRepo
    from darwin_bot.memory import MemoryStore

    cfg = load_config(config_path, root)
    repo = GitRepo(root, prefix=cfg.evolution.branch_prefix)
    memory = MemoryStore(repo.root / cfg.memory.path)
    agents = repo.agents()
    click.echo(f"agents ({len(agents)}): {', '.join(agents) or 'none'}")
    gens = memory.generations()
    if not gens:
        click.echo("no generation recorded yet; run 'darwin run'")
        return
    print_generation(gens[-1])
