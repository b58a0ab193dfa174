"""``darwin memory``: read the evolution memory (``show``) and the prompt digest (``digest``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from darwin_bot.cli.options import config_option, load_config, repo_option


def _store(root: Path, path: Path | None, config_path: Path | None) -> Any:
    """The memory at ``path``; its engine files (plans, offspring, evals) are checked first."""
    from darwin_bot.store import MemoryStore, RunState

    if path is None:
        cfg = load_config(config_path, root)
        path = root / cfg.memory.path
    RunState(path).verify()  # a truncated or foreign engine file: one line naming it, exit 2
    store = MemoryStore(path)
    # Every record is read (and so checked against its schema) before anything is printed,
    # so a bad file is one line, exit 2, whichever subcommand meets it.
    for read in (store.generations, store.mutations, store.requests):
        read()
    return store


_repo_option = repo_option("Repository whose memory to read.")
_path_option = click.option(
    "--path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Memory folder (default: memory.path of darwin.toml, 'memory').",
)


@click.group("memory")
def memory_command() -> None:
    """Show the evolution memory: generations, mutations and human requests."""


@memory_command.command("show")
@_repo_option
@_path_option
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print every record as one JSON document.")
@click.option("--generation", type=int, default=None, help="Only this generation's mutations.")
def show_command(
    root: Path, path: Path | None, config_path: Path | None, as_json: bool, generation: int | None
) -> None:
    """Print the generation summaries, mutation records and requests readably."""
    store = _store(root, path, config_path)
    gens = store.generations()
    if generation is not None:
        gens = [g for g in gens if g["generation"] == generation]
    muts = store.mutations(generation)
    reqs = store.requests()
    if as_json:
        doc = {"generations": gens, "mutations": muts, "requests": reqs}
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
        return
    if not (gens or muts or reqs):
        click.echo(f"memory at {store.root} is empty; run 'darwin run' or 'darwin demo' first")
        return
    for summary in gens:
        click.echo(_generation_text(summary))
    if muts:
        click.echo(f"mutations ({len(muts)}):")
        for rec in muts:
            click.echo(_mutation_text(rec))
    if reqs:
        click.echo(f"requests ({len(reqs)}):")
        for rec in reqs:
            issue = f" issue {rec['issue']}" if rec["issue"] is not None else ""
            click.echo(
                f"  [{rec['state']}] {rec['kind']}: {rec['title']} ({rec['agent'] or '-'}){issue}"
            )


@memory_command.command("digest")
@_repo_option
@_path_option
@config_option
@click.option(
    "--tokens",
    type=click.IntRange(min=1),
    default=None,
    help="Budget in tokens (default: memory.digest_tokens).",
)
def digest_command(
    root: Path, path: Path | None, config_path: Path | None, tokens: int | None
) -> None:
    """Print the digest of the memory that mutation prompts receive."""
    store = _store(root, path, config_path)
    budget = tokens if tokens is not None else load_config(config_path, root).memory.digest_tokens
    click.echo(store.digest(budget) or "(nothing in memory yet)")


def _generation_text(summary: dict[str, Any]) -> str:
    from darwin_bot.core import Row
    from darwin_bot.publish import leaderboard_text

    gate = summary["gate"] or {}
    head = (
        f"generation {summary['generation']}: leader {summary['leader'] or '-'}, "
        f"champion {summary['champion'] or '-'}"
    )
    if gate:
        head += f", gate p={gate['p_value'] if gate['p_value'] is not None else '-'}"
    head += (
        f"\n  survivors: {', '.join(summary['survivors']) or '-'}"
        f"\n  culled: {', '.join(summary['culled']) or '-'}"
    )
    seed_ppl = ((summary.get("baseline") or {}).get("mean") or {}).get("perplexity")
    table = leaderboard_text([Row.from_json(r) for r in summary["ranking"]], seed_ppl)
    return head + "\n" + "".join(f"  {line}\n" for line in table.splitlines())


def _mutation_text(rec: dict[str, Any]) -> str:
    delta = rec["fitness_delta"]
    score = f"{delta:+.4f}" if delta is not None else "   -   "
    where = f" {rec['file']}" if rec["file"] else ""
    if rec["chunk"] is not None:
        where += f"#{rec['chunk']}"
    reason = f" ({rec['reason']})" if rec["reason"] else ""
    summary = " ".join(rec["summary"].split())
    return f"  {score} g{rec['generation']} {rec['id']} {rec['kind']} [{rec['outcome']}]{where}: {summary}{reason}"
