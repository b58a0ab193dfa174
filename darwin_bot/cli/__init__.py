"""The ``darwin`` command: a thin click group, one module per command.

Commands are imported lazily, so ``darwin --help`` and a command's start-up do
not pay for torch or PyGithub unless that command needs them. Every
``DarwinError`` becomes one line on stderr and its exit code; a traceback is
only shown with ``DARWIN_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

import click

from darwin_bot import __version__, lazy_surface
from darwin_bot.errors import DarwinError

if TYPE_CHECKING:
    from darwin_bot.cli.app import build_engine, llm_factory
    from darwin_bot.cli.demo import make_scratch_repo, prepare_corpus, scratch_toml


# command name -> (module under darwin_bot.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "Write a commented darwin.toml."),
    "data": ("data", "Prepare the corpus (tiny Shakespeare or synthetic)."),
    "evaluate": ("evaluate", "Train and score one agent's tree in the sandbox."),
    "check": ("check", "Check that a training program keeps its contract (one line per part)."),
    "run": ("run", "Run the evolution locally for N generations."),
    "demo": ("demo", "Make a scratch repository and evolve it offline for 3 generations."),
    "status": ("status", "Print the population and the leaderboard."),
    "memory": ("memory", "Show the evolution memory."),
    "requests": ("requests", "List, approve or decline the agents' requests to humans."),
    "propose": ("steps", "CI step: plan and mutate one generation, push, open PRs."),
    "repair": ("steps", "CI step: repair failed offspring from evaluation results."),
    "rung": ("steps", "CI step: plan the next leg of a halving schedule from the results."),
    "select": ("steps", "CI step: select, cull, record, update the dashboard."),
    "report": ("steps", "CI step: write the markdown report and the fitness plot."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"darwin_bot.cli.{COMMANDS[cmd_name][0]}")
        return getattr(module, f"{cmd_name}_command")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, package_name="darwin-bot")
def cli() -> None:
    """darwin-bot: evolve a training program with LLM-written mutations, in git."""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: map DarwinError to one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="darwin", standalone_mode=False)
    except DarwinError as exc:
        if os.environ.get("DARWIN_DEBUG"):
            raise
        click.echo(f"darwin: error: {exc}", err=True)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            # On the run's page, not only in the log: the line says what to fix.
            from darwin_bot.publish import annotate_error

            annotate_error(str(exc), title="darwin-bot", stream=sys.stdout)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("darwin: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "build_engine",
    "cli",
    "llm_factory",
    "main",
    "make_scratch_repo",
    "prepare_corpus",
    "scratch_toml",
]
_HOMES = {
    "build_engine": ".app",
    "llm_factory": ".app",
    "make_scratch_repo": ".demo",
    "prepare_corpus": ".demo",
    "scratch_toml": ".demo",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
