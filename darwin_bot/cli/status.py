"""``darwin status``: the population and the last leaderboard."""

from __future__ import annotations

from pathlib import Path

import click

from darwin_bot.cli.options import config_option, load_config, repo_option


@click.command("status")
@repo_option()
@config_option
def status_command(root: Path, config_path: Path | None) -> None:
    """Print the agents (branches), the last generation's leaderboard and the champion.

    Checks the state first: every memory file against its schema, and every agent the
    memory names against git.
    """
    from darwin_bot.cli.render import print_generation
    from darwin_bot.engine import DeferredEvaluator, Engine
    from darwin_bot.git import GitRepo

    cfg = load_config(config_path, root)
    repo = GitRepo(root, prefix=cfg.evolution.branch_prefix)
    engine = Engine(repo, cfg, evaluator=DeferredEvaluator("status"), llm_factory=lambda _: None)
    engine.verify()  # a broken file or a missing agent branch: one line, exit 2
    agents = repo.agents()
    click.echo(f"agents ({len(agents)}): {', '.join(agents) or 'none'}")
    gens = engine.generations()
    if not gens:
        click.echo("no generation recorded yet; run 'darwin run'")
        return
    print_generation(gens[-1])
