"""The CI steps of one generation: ``propose``, ``repair``, ``rung``, ``select``, ``report``.

Each runs in a GitHub-hosted job that holds the write token (and, for propose
and repair, the LLM key), so none of them ever runs agent code: smoke tests
and full evaluations happen in the ``evaluate`` job on the sandboxed GPU
runner, whose result files come back through ``--results``. State travels
between the jobs in git: agent branches, archived heads, and the memory
folder, committed on a branch of its own (``darwin/memory``): the jobs read
the default branch and push only under the prefix, so a protected default
branch and a champion merged through the API never conflict with a step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from darwin_bot.cli.options import config_option, load_config
from darwin_bot.config import Config
from darwin_bot.core import Status
from darwin_bot.errors import ConfigError, RunStopped
from darwin_bot.publish import annotate_notice, append_summary, set_output, untrusted_block

if TYPE_CHECKING:
    from collections.abc import Sequence

    from darwin_bot.git import GitRepo
    from darwin_bot.store import GenerationSummary

_repo_option = click.option(
    "--repo",
    "root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Checkout of the default branch (the trusted side).",
)
_remote_option = click.option(
    "--remote",
    default="origin",
    show_default=True,
    help="Git remote to fetch agent branches from and push to ('' for none).",
)
_model_option = click.option(
    "--model", default=None, help="LLM model to use (overrides llm.model in darwin.toml)."
)
_results_option = click.option(
    "--results",
    "results_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="Folder holding the evaluate jobs' result JSON files (searched recursively).",
)


def _with_overrides(cfg: Config, model: str | None = None, population: int | None = None) -> Config:
    if model:
        cfg = cfg.replace("llm", model=model)
    if population is not None:
        cfg = cfg.replace("evolution", population=population)
    return cfg


def _engine(root: Path, cfg: Config, remote: str):
    from darwin_bot.cli.app import build_engine
    from darwin_bot.engine import DeferredEvaluator
    from darwin_bot.evaluate import EVALUATOR_VERSION, current_windows, required_secret
    from darwin_bot.git import GitRepo
    from darwin_bot.publish import make_publisher

    # Every job of a generation files and reads results under that generation's windows,
    # which the evaluate legs draw by the same secret: without it, nothing is comparable.
    secret = required_secret("this CI step")
    # Agent branches, archive refs and the memory branch first, then the memory
    # folder from that branch: the engine starts from the recorded state.
    repo = GitRepo(root, prefix=cfg.evolution.branch_prefix, remote=remote or None)
    repo.fetch()
    repo.restore_memory(cfg.memory.path)
    engine = build_engine(
        root,
        cfg,
        publisher=make_publisher(root, cfg, memory_branch=True, remote=remote or None),
        remote=remote or None,
        evaluator=DeferredEvaluator(EVALUATOR_VERSION, lambda g: current_windows(secret, g).name),
        workers=1,
    )
    engine.use_windows(engine.next_generation())
    return engine


def load_results(folder: Path) -> list[dict[str, Any]]:
    """Every result file under ``folder``; a file that is not a result is a clear error."""
    out = []
    for path in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}: not JSON ({exc}); is --results the artifacts folder?"
            ) from exc
        if not isinstance(data, dict) or "status" not in data:
            raise ConfigError(f"{path}: not an evaluation result (no 'status')")
        out.append(data)
    return out


def _finish(repo: GitRepo, folder: str, files: list[str], message: str) -> None:
    """Commit the memory on the memory branch; push it with the agent branches, atomically.

    This is the step's commit point: the forge writes before it are upserts a
    rerun repeats harmlessly, and if the push is refused nothing of it lands.
    """
    if (repo.root / folder).exists():  # not yet on a new repository's first propose
        # darwin's own files only: what a human put under memory/ is never committed
        repo.commit_memory(folder, message, files=files)
    remote_has = repo.remote_branches()
    local = set(repo.agents())
    repo.push_generation(
        [repo.branch(a) for a in sorted(local)],
        delete=sorted(b for b in remote_has if b[len(repo.prefix) :] not in local),
    )


def _commit_and_push_memory(repo: GitRepo, folder: str, files: list[str], message: str) -> None:
    """Commit what the step wrote to memory after its commit point; push only the memory."""
    if (repo.root / folder).exists() and repo.commit_memory(folder, message, files=files):
        repo.push_generation([])


@click.command("propose")
@_repo_option
@_remote_option
@_model_option
@click.option(
    "--population",
    type=click.IntRange(min=2),
    default=None,
    help="Population size (overrides evolution.population).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the token, the repository's PR setting and the LLM key; propose nothing.",
)
@config_option
def propose_command(
    root: Path,
    remote: str,
    model: str | None,
    population: int | None,
    dry_run: bool,
    config_path: Path | None,
) -> None:
    """Plan and mutate the next generation, push the branches, open the PRs.

    Output ``agents``: the evaluation jobs (agent, branch, head, seed) as JSON.
    """
    cfg = _with_overrides(load_config(config_path, root), model, population)
    engine = _engine(root, cfg, remote)
    g = engine.next_generation()
    legs = engine.ci.legs()  # before anything is pushed: a schedule CI cannot run stops here
    if dry_run and engine.publisher is not None:
        from darwin_bot.cli.dry_run import dry_run as check_all

        check_all(engine.publisher.forge, engine.cfg)
        set_output("agents", "[]")
        set_output("generation", str(g))
        return
    if g > 0 and engine.publisher is not None:
        # Before the LLM is paid and any branch is pushed: PRs the repository refuses
        # (its Actions setting) would leave branches no reviewer ever sees.
        engine.publisher.check_forge()
    if engine.publisher is not None and engine.publisher.controls().get("pause"):
        annotate_notice("darwin is paused from the dashboard; nothing proposed")
        set_output("agents", "[]")
        set_output("generation", str(g))
        return
    if g == 0:
        engine.ensure_seed()
    else:
        for rec in engine.propose(g):
            line = f"{rec.agent}: {rec.status} {rec.summary or rec.reason}"
            untrusted_block(line)
    _finish(
        engine.repo,
        engine.cfg.memory.path,
        engine.memory_files(),
        f"darwin: propose generation {g}",
    )
    if g > 0:
        engine.publish(g)  # PRs need their head branches on the forge: after the push
        # Publishing opens the agents' requests and records them under memory/requests/:
        # commit those too, or a rerun of this step would be the one to commit them.
        _commit_and_push_memory(
            engine.repo,
            engine.cfg.memory.path,
            engine.memory_files(),
            f"darwin: propose generation {g}: requests",
        )
    jobs = engine.matrix(g)
    set_output("agents", json.dumps(jobs))
    set_output("generation", str(g))
    # how many rung legs the workflow chains after rung 0 (0: a flat schedule)
    set_output("legs", str(legs if g > 0 else 0))
    click.echo(json.dumps({"generation": g, "agents": jobs}, indent=2))


@click.command("repair")
@_repo_option
@_remote_option
@_results_option
@_model_option
@config_option
def repair_command(
    root: Path, remote: str, results_dir: Path, model: str | None, config_path: Path | None
) -> None:
    """Ask the LLM to fix the offspring whose evaluation failed; push the repair commits.

    Output ``agents``: the evaluation jobs for the repaired offspring and the leader's repeats.
    """
    from darwin_bot.core import EvalResult

    cfg = _with_overrides(load_config(config_path, root), model)
    engine = _engine(root, cfg, remote)
    g = engine.next_generation()
    results = load_results(results_dir)
    engine.ingest_files(results)
    failures = {
        r["extra"]["agent"]: EvalResult.from_dict(r)
        for r in results
        if r["status"] != Status.OK and (r.get("extra") or {}).get("agent")
    }
    repaired = engine.repair(g, failures) if g > 0 else []
    for agent in repaired:
        annotate_notice(f"{agent}: repaired after '{failures[agent].reason[:200]}'")
    _finish(
        engine.repo, engine.cfg.memory.path, engine.memory_files(), f"darwin: repair generation {g}"
    )
    # Re-evaluate the repaired, and give the provisional leader its repeat runs now, so
    # select can apply the statistical gate this generation, as `darwin run` does.
    jobs = [job for job in engine.matrix(g) if job["agent"] in repaired] + engine.confirm_jobs(g)
    set_output("agents", json.dumps(jobs))
    click.echo(json.dumps({"generation": g, "repaired": repaired, "agents": jobs}, indent=2))


@click.command("rung")
@_repo_option
@_remote_option
@_results_option
@config_option
def rung_command(root: Path, remote: str, results_dir: Path, config_path: Path | None) -> None:
    """Plan one leg of a halving schedule from every result so far (writes nothing).

    Output ``agents``: the next rung's missing runs (its entrants, chosen as ``darwin run``
    chooses them, and the seed's runs there), or once every rung is in, the leader's
    repeats at its rung and its confirmation runs; ``[]`` when nothing is left.
    """
    cfg = load_config(config_path, root)
    engine = _engine(root, cfg, remote)
    g = engine.next_generation()
    engine.ingest_files(load_results(results_dir))
    # nothing once this generation is selected (a plan job run again after select)
    jobs = engine.rung_jobs(g) if g > 0 and engine.proposed(g) else []
    set_output("agents", json.dumps(jobs))
    click.echo(json.dumps({"generation": g, "agents": jobs}, indent=2))


@click.command("select")
@_repo_option
@_remote_option
@_results_option
@config_option
def select_command(root: Path, remote: str, results_dir: Path, config_path: Path | None) -> None:
    """Rank, confirm, cull, record the generation, update PRs and the dashboard."""
    from darwin_bot.publish import generation_summary_markdown

    cfg = load_config(config_path, root)
    engine = _engine(root, cfg, remote)
    g = engine.next_generation()
    if g > 0 and not engine.proposed(g):
        # A rerun after this generation was selected (or a select with nothing
        # proposed): the recorded summary is the answer, and the forge is left alone.
        g -= 1
    engine.use_windows(g)  # its legs' results are filed under that generation's windows
    engine.ingest_files(load_results(results_dir))
    if g > 0 and engine.summary(g) is None:
        _check_every_leg_reported(engine.matrix(g) + engine.ci.rung_gaps(g), g)
        if engine.publisher is not None:
            engine.publisher.check_request_budget(g)  # before the first write of this select
    summary = engine.baseline() if g == 0 else engine.select(g, confirm=False)
    _finish(
        engine.repo, engine.cfg.memory.path, engine.memory_files(), f"darwin: select generation {g}"
    )
    from darwin_bot.publish import job_summary_extras  # plot and LLM spend

    markdown = generation_summary_markdown(summary) + "\n\n"
    markdown += job_summary_extras(engine.repo, cfg, engine.memory, summary)
    append_summary(markdown)
    out = write_report(engine.repo.root, engine.generations(), markdown)
    set_output("champion", summary.champion or "")
    set_output("generation", str(g))
    set_output("report", str(out))
    click.echo(markdown)


def _check_every_leg_reported(missing: list[dict[str, Any]], g: int) -> None:
    """Stop (exit 3) rather than cull agents whose evaluation never ran to its end.

    An evaluate leg that fails for the agent's own reasons (a crash, a timeout in
    the sandbox, a rejected branch) still writes a result that ranks last; a leg
    with no result at all was lost by the infrastructure (no runner online, a job
    cancelled after GitHub's 24 hours in the queue, a runner that died). Culling
    for that would decide an agent's fate by an outage: the generation stays open
    instead, and "Re-run failed jobs" (or the next run, which proposes the same
    generation again) evaluates those legs.
    """
    if missing:
        legs = ", ".join(f"{job['agent']} (seed {job['seed']})" for job in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise RunStopped(
            f"{len(missing)} evaluation leg(s) of generation {g} left no result: {legs}{more}. "
            "Nothing was culled for it: re-run the failed jobs of this run (or run the "
            "workflow again) once a GPU runner is online"
        )


def write_report(root: Path, generations: Sequence[GenerationSummary], markdown: str) -> Path:
    """``.darwin/report/report.md`` and ``fitness.png``: what the workflow uploads."""
    from darwin_bot.publish import fitness_plot

    folder = root / ".darwin" / "report"
    folder.mkdir(parents=True, exist_ok=True)
    fitness_plot(generations, folder / "fitness.png")
    path = folder / "report.md"
    path.write_text(markdown, encoding="utf-8")
    return path


@click.command("report")
@_repo_option
@config_option
def report_command(root: Path, config_path: Path | None) -> None:
    """Write the last generation's markdown report and the fitness plot (.darwin/report/)."""
    from darwin_bot.git import GitRepo
    from darwin_bot.publish import generation_summary_markdown
    from darwin_bot.store import History, MemoryStore

    cfg = load_config(config_path, root)
    repo = GitRepo(root, prefix=cfg.evolution.branch_prefix)
    gens = History(MemoryStore(repo.root / cfg.memory.path)).summaries()
    if not gens:
        raise ConfigError("no generation recorded yet; run 'darwin run' or the workflow first")
    markdown = generation_summary_markdown(gens[-1])
    path = write_report(repo.root, gens, markdown)
    append_summary(markdown)
    set_output("report", str(path))
    click.echo(markdown)
