"""State verified before work: the memory files parse and match their schemas, and every
agent the memory names can still be found in git.

``darwin status`` and ``darwin run`` call :func:`verify_state` before anything
else, so a hand-deleted branch or a truncated file is one line naming it and
the fix (exit 2), not a traceback after a generation of training.
"""

from __future__ import annotations

from darwin_bot.engine.ports import Repository
from darwin_bot.errors import BrokenState
from darwin_bot.store import History, MemoryStore, RunState


def named_agents(
    memory: MemoryStore, history: History, run_state: RunState
) -> dict[str, tuple[str, str | None]]:
    """Every agent the memory says has a commit: id -> (the file naming it, its head if recorded)."""
    named: dict[str, tuple[str, str | None]] = {}
    for s in history.summaries():
        where = str(memory.generation_path(s.generation))
        for agent in (*s.survivors, *s.culled):
            named.setdefault(agent, (where, None))
        for rec in run_state.offspring(s.generation + 1).values():
            if rec.head is not None:
                path = run_state.offspring_path(rec.generation, rec.agent)
                named[rec.agent] = (str(path), rec.head)
    return named


def verify_state(
    repo: Repository, memory: MemoryStore, history: History, run_state: RunState
) -> None:
    """Raise ``BrokenState`` (exit 2) for the first unreadable file or missing agent."""
    memory.record_files()  # every memory record, schema-checked on read
    run_state.verify()  # plans, offspring, journals, evaluation cache, run target
    for agent, (where, head) in sorted(named_agents(memory, history, run_state).items()):
        if repo.rev(repo.branch(agent)) or repo.archived(agent):
            continue
        branch = repo.branch(agent)
        if head and repo.rev(head):
            fix = f"restore it with: git branch {branch} {head}"
        else:
            fix = (
                f"restore it (git fetch origin {branch}:{branch}) or, to redo the generations "
                f"after it was made, delete their folders under {memory.root}"
            )
        raise BrokenState(
            f"agent {agent!r} named in {where} has no branch {branch!r} and no archived head; {fix}"
        )
