"""``darwin requests``: list the agents' requests; approve or decline them on a local forge.

On GitHub, humans answer on the issue itself (label ``darwin:approved``, or
close as not planned); ``approve`` and ``decline`` are for the local file
forge, where there is no web page to click.
"""

from __future__ import annotations

from pathlib import Path

import click

from darwin_bot.cli.options import config_option, load_config
from darwin_bot.errors import ConfigError, ForgeNotFound
from darwin_bot.evaluate import not_installed_note
from darwin_bot.forge import CloseReason, Forge, LocalForge, open_forge
from darwin_bot.publish import (
    APPROVED_LABEL,
    DECLINED_LABEL,
    REQUEST_LABEL,
    dependency_name,
    pending_requests,
    read_requests,
)


def _root(config_path: Path | None) -> Path:
    return config_path.resolve().parent if config_path is not None else Path.cwd()


def _forge(config_path: Path | None) -> Forge:
    root = _root(config_path)
    return open_forge(load_config(config_path, root), root)


def _local_request(forge: Forge, number: int) -> LocalForge:
    if not isinstance(forge, LocalForge):
        raise ConfigError(
            "approve and decline work on the local forge only; on GitHub, label the issue "
            f"'{APPROVED_LABEL}' to approve or close it as not planned to decline"
        )
    try:
        issue = forge.get_issue(number)
    except ForgeNotFound as exc:
        raise ConfigError(
            f"there is no request #{number}; 'darwin requests --all' lists them"
        ) from exc
    if REQUEST_LABEL not in issue.labels:
        raise ConfigError(f"#{number} is not a darwin request; see 'darwin requests' for the list")
    return forge


@click.group("requests", invoke_without_command=True)
@config_option
@click.option("--all", "show_all", is_flag=True, help="Also list approved and declined requests.")
@click.pass_context
def requests_command(ctx: click.Context, config_path: Path | None, show_all: bool) -> None:
    """List the agents' requests to humans (pending ones, or --all)."""
    ctx.obj = config_path
    if ctx.invoked_subcommand is not None:
        return
    states = read_requests(_forge(config_path), acknowledge=False)
    shown = states if show_all else pending_requests(states)
    if not shown:
        click.echo("no pending requests" if not show_all else "no requests")
        return
    for s in shown:
        who = f"  (asked by {s.request.agent})" if s.request.agent else ""
        click.echo(f"#{s.number:<4} {s.status:<8} {s.request.kind:<11} {s.request.title}{who}")
        for said in s.human_comments:
            click.echo(f"      human: {' '.join(said.split())}")


@requests_command.command("approve")
@click.argument("number", type=int)
@click.option("--comment", default="", help="What you did, passed on to the agents.")
@click.pass_obj
def approve(config_path: Path | None, number: int, comment: str) -> None:
    """Approve request NUMBER (local forge)."""
    forge = _local_request(_forge(config_path), number)
    forge.set_labels(number, add=(APPROVED_LABEL,), remove=(DECLINED_LABEL,))
    if comment:
        forge.add_comment(number, comment)
    click.echo(f"approved #{number}")
    states = read_requests(forge, acknowledge=False)
    request = next((s.request for s in states if s.number == number), None)
    if request is not None and request.kind == "dependency":
        granted = dependency_name(request.title)
        note = not_installed_note(granted) if granted else None
        if note:
            click.echo(f"note: {note}")
    elif request is not None and request.kind == "data":
        data = load_config(config_path, _root(config_path)).budget.data
        click.echo(
            f"a data request: the corpus is budget.data (now {data!r}). Prepare the new one in "
            "a folder of its own ('darwin data prepare --input FILE --out DIR') and set "
            "budget.data to it; from the next generation the seed and the survivors are "
            "measured again on it."
        )


@requests_command.command("decline")
@click.argument("number", type=int)
@click.option("--comment", default="", help="Why, passed on to the agents.")
@click.pass_obj
def decline(config_path: Path | None, number: int, comment: str) -> None:
    """Decline request NUMBER (local forge): closes it as not planned."""
    forge = _local_request(_forge(config_path), number)
    forge.set_labels(number, add=(DECLINED_LABEL,), remove=(APPROVED_LABEL,))
    if comment:
        forge.add_comment(number, comment)
    forge.close_issue(number, reason=CloseReason.NOT_PLANNED)
    click.echo(f"declined #{number}")
