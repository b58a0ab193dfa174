"""``darwin propose --dry-run``: check what a generation needs, propose nothing.

The workflow's ``dry_run`` dispatch runs this in the propose job (with that job's
token and the LLM key) and a trivial job on the GPU runner. It changes nothing
on the repository: no branch, no PR, no issue, no comment.

Checks, each one line (``ok`` or what to fix):

* the token reads the repository, its PRs and its issues (the permissions the
  jobs declare; an App token scoped down too far fails here);
* the repository lets this token open pull requests (the Actions setting);
* the LLM answers a one-line prompt with this key (none: the offline mutator);
* the GPU runner is the workflow's ``runner`` job: it queues until a runner with
  the labels ``self-hosted, linux, gpu`` takes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from darwin_bot.errors import ConfigError, DarwinError
from darwin_bot.publish import annotate_error, annotate_notice

if TYPE_CHECKING:
    from darwin_bot.config import Config
    from darwin_bot.forge import Forge

PROMPT = [{"role": "user", "content": "Reply with the single word: ready"}]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _run(name: str, fn: Callable[[], str]) -> Check:
    try:
        return Check(name, True, fn())
    except DarwinError as exc:  # each failure is one line: what was refused and what to do
        return Check(name, False, str(exc))


def _llm(cfg: Config) -> str:
    from darwin_bot.llm import make_llm, resolve_backend

    backend = resolve_backend(cfg.llm)
    if backend != "openai":
        return f"backend {backend}: no LLM is called (set OPENAI_API_KEY for one)"
    reply = make_llm(cfg.llm, seed=cfg.evolution.seed).complete(PROMPT)
    return f"{reply.model} answered ({reply.prompt_tokens}+{reply.completion_tokens} tokens)"


def checks(forge: Forge, cfg: Config) -> list[Check]:
    return [
        _run("repository", lambda: f"default branch {forge.default_branch()}"),
        _run("pull requests", lambda: f"{len(forge.list_prs())} agent PRs open"),
        _run("issues", lambda: f"{len(forge.list_issues(state='open'))} darwin issues open"),
        _run("the Actions PR setting", lambda: (forge.check_pull_requests(), "allowed")[1]),
        _run("the LLM", lambda: _llm(cfg)),
    ]


def dry_run(forge: Forge, cfg: Config) -> None:
    """Run the checks; print one line each; ConfigError naming the failed ones."""
    results = checks(forge, cfg)
    for c in results:
        line = f"{c.name}: {c.detail}"
        if c.ok:
            annotate_notice(line, title="darwin dry run")
        else:
            annotate_error(line, title="darwin dry run")
    failed = [c.name for c in results if not c.ok]
    if failed:
        raise ConfigError(f"dry run: {', '.join(failed)} failed (see the lines above)")
