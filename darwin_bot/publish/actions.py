"""GitHub Actions I/O: outputs, the step summary, annotations, masking, groups.

Everything the bot tells the Actions runner goes through this module, so the
two ways a step can be subverted are closed in one place:

* **Output files.** ``set_output`` writes ``name<<DELIMITER`` ... ``DELIMITER``
  to ``$GITHUB_OUTPUT`` with a fresh random delimiter that is checked not to
  occur in the value, so a value (for example an LLM-written summary) can never
  end the block early and forge another output.
* **Workflow commands.** The runner executes any stdout line that starts with
  ``::``. Text the bot did not write itself (LLM replies, agent logs) must be
  echoed with ``untrusted_block``, which brackets it in
  ``::stop-commands::TOKEN`` ... ``::TOKEN::`` with an unguessable token, so
  ``::set-output``, ``::error`` or ``::add-mask`` inside it are printed, not run.

Outside GitHub Actions (``GITHUB_ACTIONS`` is not ``true``) the same calls
degrade to plain human-readable output, so the CLI can call them unconditionally.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from darwin_bot.store import GenerationSummary

# The runner refuses a step summary over 1 MiB (it is then not shown at all);
# stay under it with room for the truncation note.
SUMMARY_LIMIT_BYTES = 1024 * 1024 - 1024

_OUTPUT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def in_actions() -> bool:
    """True when running as a GitHub Actions step (the runner sets ``GITHUB_ACTIONS=true``)."""
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _out(stream: TextIO | None) -> TextIO:
    # Resolved at call time so tests (and click's runner) that swap sys.stdout are honoured.
    return stream if stream is not None else sys.stdout


def _random_token(avoid: str, prefix: str) -> str:
    """A random token that does not occur in ``avoid`` (retried, never trusted to luck)."""
    while True:
        token = f"{prefix}{secrets.token_hex(16)}"
        if token not in avoid:
            return token


# ----------------------------------------------------------------------------- escaping


def escape_data(text: str) -> str:
    """Escape a workflow command's message: ``%``, CR and LF (the runner's own rules)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a workflow command property value: as ``escape_data`` plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_command(command: str, message: str = "", **properties: object) -> str:
    """One workflow command line, e.g. ``::error file=a.py,line=3::boom``.

    Properties whose value is ``None`` are left out; the rest are escaped, so a
    file name or title cannot end the property list or the command early.
    """
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    )
    head = f"::{command} {props}" if props else f"::{command}"
    return f"{head}::{escape_data(message)}"


# ----------------------------------------------------------------------------- outputs


def format_output(name: str, value: str, delimiter: str | None = None) -> str:
    """The ``$GITHUB_OUTPUT`` record for one output, in the multiline heredoc form.

    ``delimiter`` is for tests; by default a random one is drawn. A delimiter
    that occurs in the value (or name) is refused rather than written, because
    it would let the value end the record and inject further outputs.
    """
    if not _OUTPUT_NAME.match(name):
        raise ValueError(
            f"output name {name!r} is not valid; use letters, digits, '_' and '-', "
            "starting with a letter or '_'"
        )
    if delimiter is None:
        delimiter = _random_token(value, "ghadelimiter_")
    elif delimiter in value or delimiter in name:
        raise ValueError("the output delimiter occurs in the value; it would end the record early")
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def set_output(name: str, value: str, *, stream: TextIO | None = None) -> None:
    """Set step output ``name`` to ``value`` (any text, newlines included).

    In Actions it is appended to ``$GITHUB_OUTPUT``; elsewhere it is printed as
    ``name=value`` (or the heredoc form if the value has several lines) so a
    local run shows what the step would have output.
    """
    path = os.environ.get("GITHUB_OUTPUT")
    record = format_output(name, value)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(record)
        return
    text = record if "\n" in value or "\r" in value else f"{name}={value}\n"
    _out(stream).write(text)


# ----------------------------------------------------------------------------- step summary


def append_summary(markdown: str) -> bool:
    """Append ``markdown`` to the job's step summary; False when there is none to write.

    The summary file is capped near GitHub's 1 MiB limit: past it, the text is
    cut and a note says so, because an oversized summary is dropped whole.
    """
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    target = Path(path)
    used = target.stat().st_size if target.exists() else 0
    data = text.encode("utf-8")
    if used + len(data) > SUMMARY_LIMIT_BYTES:
        room = max(0, SUMMARY_LIMIT_BYTES - used)
        # Cut on a character boundary, then say that something is missing.
        data = data[:room].decode("utf-8", errors="ignore").encode("utf-8")
        data += b"\n\n*(summary truncated: GitHub shows at most 1 MiB)*\n"
    with open(target, "ab") as fh:
        fh.write(data)
    return True


# ----------------------------------------------------------------------------- annotations


def _annotate(
    level: str,
    message: str,
    file: str | None,
    line: int | None,
    title: str | None,
    stream: TextIO | None,
) -> None:
    if in_actions():
        _out(stream).write(format_command(level, message, file=file, line=line, title=title) + "\n")
        return
    where = f"{file}:{line}: " if file and line is not None else (f"{file}: " if file else "")
    head = f"{title}: " if title else ""
    (stream if stream is not None else sys.stderr).write(f"{level}: {where}{head}{message}\n")


def annotate_error(
    message: str,
    file: str | None = None,
    line: int | None = None,
    *,
    title: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """An error annotation (``::error file=..,line=..::message``) on the run's page."""
    _annotate("error", message, file, line, title, stream)


def annotate_warning(
    message: str,
    file: str | None = None,
    line: int | None = None,
    *,
    title: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """A warning annotation; see ``error``."""
    _annotate("warning", message, file, line, title, stream)


def annotate_notice(
    message: str,
    file: str | None = None,
    line: int | None = None,
    *,
    title: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """A notice annotation; see ``error``."""
    _annotate("notice", message, file, line, title, stream)


# ----------------------------------------------------------------------------- masking, groups


def mask(value: str, *, stream: TextIO | None = None) -> None:
    """Ask the runner to replace ``value`` with ``***`` in all later log output.

    The runner masks line by line, so each line of a multi-line value is
    registered on its own. No-op outside Actions and for an empty value.
    """
    if not in_actions():
        return
    out = _out(stream)
    for part in value.splitlines():
        if part.strip():
            out.write(format_command("add-mask", part) + "\n")


@contextmanager
def group(title: str, *, stream: TextIO | None = None) -> Iterator[None]:
    """A collapsible log group; outside Actions the title is printed as a header."""
    out = _out(stream)
    if in_actions():
        out.write(format_command("group", title) + "\n")
    else:
        out.write(f"== {title}\n")
    try:
        yield
    finally:
        if in_actions():
            out.write("::endgroup::\n")


# ----------------------------------------------------------------------------- untrusted text


@contextmanager
def stop_commands(avoid: str = "", *, stream: TextIO | None = None) -> Iterator[str]:
    """Suspend workflow-command processing for everything written inside the block.

    Yields the random resume token. ``avoid`` is text known to be written inside;
    the token is drawn so that it does not occur in it. Outside Actions nothing
    is emitted (there is no runner to fool) and the token is still yielded.
    """
    token = _random_token(avoid, "darwin-")
    out = _out(stream)
    if in_actions():
        out.write(f"::stop-commands::{token}\n")
    try:
        yield token
    finally:
        if in_actions():
            # Always resume, even if writing the block failed half way: a
            # dangling stop-commands would silently disable the step's commands.
            out.flush()
            out.write(f"::{token}::\n")


def untrusted_block(text: str, *, stream: TextIO | None = None) -> None:
    """Echo text the bot did not write (LLM output, agent logs) so it cannot run commands.

    Any ``::set-output``, ``::error``, ``::add-mask`` ... line in ``text`` is shown
    verbatim in the log instead of being executed by the runner.
    """
    out = _out(stream)
    with stop_commands(text, stream=out):
        out.write(text if text.endswith("\n") or not text else text + "\n")


__all__ = [
    "SUMMARY_LIMIT_BYTES",
    "append_summary",
    "annotate_error",
    "escape_data",
    "escape_property",
    "format_command",
    "format_output",
    "group",
    "in_actions",
    "mask",
    "annotate_notice",
    "set_output",
    "stop_commands",
    "untrusted_block",
    "annotate_warning",
]


def job_summary_extras(repo: Any, cfg: Any, memory: Any, summary: GenerationSummary) -> str:
    """What the generation's job summary adds to the leaderboard: the leader's plot, the spend."""
    from darwin_bot.publish.review import PLOTS_DIR, image_url
    from darwin_bot.spend import spend_report

    out = []
    leader = summary.leader
    rel = f"{cfg.memory.path}/{PLOTS_DIR}/{leader}.png"
    if leader and (repo.root / rel).exists():
        sha = repo.git("log", "-1", "--format=%H", "--", rel).strip()
        repository = cfg.forge.repository or os.environ.get("GITHUB_REPOSITORY", "")
        url = image_url(repository if cfg.forge.kind == "github" else "", sha, rel) if sha else rel
        out += [f"### Leader `{leader}`", "", f"![lineage perplexity and training loss]({url})", ""]
    out += ["### LLM spend", "", spend_report(cfg, memory)]
    return "\n".join(out)
