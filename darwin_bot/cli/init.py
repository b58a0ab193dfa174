"""``darwin init``: write a commented darwin.toml (for the seed's contract, or nanoGPT's).

With ``--github``, also the workflow that runs one generation per run on GitHub
Actions from the released action (``.github/workflows/darwin.yml``), with
``forge.kind = "github"`` in the darwin.toml.
"""

from __future__ import annotations

from pathlib import Path

import click

from darwin_bot.config import CONTRACT_PRESETS
from darwin_bot.errors import ConfigError

WORKFLOW_PATH = Path(".github") / "workflows" / "darwin.yml"
_LOCAL_FORGE = 'kind = "local"           # local (files under path) | github'
_GITHUB_FORGE = 'kind = "github"          # local (files under path) | github'


@click.command("init")
@click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("darwin.toml"),
    show_default=True,
    help="Where to write the file.",
)
@click.option(
    "--contract",
    type=click.Choice(list(CONTRACT_PRESETS)),
    default="darwin",
    show_default=True,
    help="The program's contract: darwin (seed/) or nanogpt (karpathy/nanoGPT as it is).",
)
@click.option(
    "--github",
    is_flag=True,
    help="Also write .github/workflows/darwin.yml (next to --path) running the released action, "
    "and set forge.kind = 'github'.",
)
@click.option(
    "--action",
    default=None,
    help="The action the workflow runs, OWNER/REPO@REF [default: darwin-bot's releases at this "
    "version's major tag]. Pin a commit sha after the @ to fix one release.",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init_command(path: Path, contract: str, github: bool, action: str | None, force: bool) -> None:
    """Write a commented darwin.toml with every key at its default (and, with --github, the workflow)."""
    from darwin_bot.program import toml_for

    if action is not None and not github:
        raise ConfigError("--action is for --github: the workflow it writes runs that action")
    workflow = path.parent / WORKFLOW_PATH
    targets = [path, workflow] if github else [path]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not force:
        raise ConfigError(f"{', '.join(existing)} exists; pass --force to overwrite")
    text = toml_for(contract)
    if github:
        from darwin_bot.forge import default_action, render_workflow

        rendered = render_workflow(action or default_action())  # checked before anything is written
        if _LOCAL_FORGE not in text:
            raise ConfigError("the darwin.toml template has no [forge] kind line to set")
        text = text.replace(_LOCAL_FORGE, _GITHUB_FORGE)
        workflow.parent.mkdir(parents=True, exist_ok=True)
        workflow.write_text(rendered, encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    click.echo(
        f"wrote {path}"
        + (f" (contract {contract}; check it with 'darwin check')" if contract != "darwin" else "")
    )
    if github:
        click.echo(f"wrote {workflow}: commit both, then follow the set-up in docs/github.md")
        # Without it every job of the workflow refuses to start: say so now, with the fix.
        click.echo(
            "set the secret that draws each generation's scored windows (once):\n"
            '  gh secret set DARWIN_WINDOW_SECRET --body "$(openssl rand -hex 32)"'
        )
