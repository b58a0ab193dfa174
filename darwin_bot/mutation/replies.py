"""Parse an LLM reply into an edit, tolerantly.

The reply format (spelled out for the model in ``templates/reply_format.md``)::

    SUMMARY: one line, the commit subject
    RATIONALE: why this should lower perplexity or raise MFU   (optional)
    CHUNK: seed/model.py::MLP                                   (optional; default: the chunk asked for)
    EDIT: rmsnorm                                               (optional: a tag naming the kind of edit)

    ```python
    <the whole new chunk>
    ```

or, instead of the whole chunk, one or more blocks::

    <<<<<<< SEARCH
    exact lines of the current chunk
    =======
    their replacement
    >>>>>>> REPLACE

optionally ``REQUEST: <data|dependency|script|restructure|other> | <title> | <rationale>``,
or ``NO CHANGE: <reason>`` when the chunk is best left alone.

Tolerance: fences are optional, markers may carry extra ``<``/``>``/``=``,
field names are case-insensitive, and SEARCH text is matched ignoring
whitespace differences; a SEARCH block that matches nothing is rejected with
the nearest lines of the chunk (difflib) so the repair prompt can show them.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass

from darwin_bot.core import REQUEST_KINDS, HumanRequest
from darwin_bot.errors import MutationRejected


@dataclass(frozen=True)
class SearchReplace:
    search: str
    replace: str


@dataclass(frozen=True)
class Reply:
    """What a reply asks for; ``code`` and ``blocks`` are exclusive, both empty means no edit."""

    summary: str
    rationale: str
    target: str  # "file::chunk" named by the reply, or ""
    code: str | None
    blocks: tuple[SearchReplace, ...]
    requests: tuple[HumanRequest, ...]
    no_change: bool
    truncated: bool  # an opening fence was never closed
    edit: str = ""  # the EDIT tag ("rmsnorm", "hparam:learning_rate:up=0.002"), or ""
    explore: bool = False  # the EDIT line says the edit is exploring on purpose
    declined_because: str = ""  # the reason after NO CHANGE:


_FIELD = re.compile(r"^\s*\**(summary|rationale|chunk|edit|request|no change)\**\s*:\s*(.*)$", re.I)
_FENCE_OPEN = re.compile(r"^\s*```+\s*([\w+-]*)\s*$")
_FENCE_CLOSE = re.compile(r"^\s*```+\s*$")
_SEARCH = re.compile(r"^\s*<{5,}\s*SEARCH\s*$", re.I)
_DIVIDER = re.compile(r"^\s*={5,}\s*$")
_REPLACE = re.compile(r"^\s*>{5,}\s*REPLACE\s*$", re.I)


@dataclass
class _Scan:
    """The parts of a reply, read line by line."""

    fields: dict[str, str]
    requests: list[HumanRequest]
    blocks: list[SearchReplace]
    prose: list[str]
    code_lines: list[str] | None = None
    truncated: bool = False


def _fenced(lines: list[str], i: int, scan: _Scan) -> int:
    """Read the fence opening at ``i``; the index after it."""
    j = i + 1
    inner: list[str] = []
    while j < len(lines) and not _FENCE_CLOSE.match(lines[j]):
        inner.append(lines[j])
        j += 1
    if j >= len(lines):
        scan.truncated = True
    if any(_SEARCH.match(x) for x in inner):
        # SEARCH/REPLACE blocks wrapped in a fence: read them, not the fence
        k = 0
        while k < len(inner):
            if _SEARCH.match(inner[k]):
                block, k = _read_block(inner, k + 1)
                scan.blocks.append(block)
            else:
                k += 1
    elif scan.code_lines is None:
        scan.code_lines = inner
    return j + 1


def _scan(lines: list[str], agent: str, generation: int) -> _Scan:
    scan = _Scan({}, [], [], [])
    i = 0
    while i < len(lines):
        line = lines[i]
        if _SEARCH.match(line):
            block, i = _read_block(lines, i + 1)
            scan.blocks.append(block)
            continue
        if _FENCE_OPEN.match(line):
            i = _fenced(lines, i, scan)
            continue
        fm = _FIELD.match(line)
        if fm:
            key, value = fm.group(1).lower(), fm.group(2).strip()
            if key == "request":
                scan.requests.append(_parse_request(value, agent, generation))
            else:
                scan.fields.setdefault(key, value)
        else:
            scan.prose.append(line)
        i += 1
    return scan


def parse_reply(text: str, *, agent: str = "", generation: int = 0) -> Reply:
    """Parse ``text``; raises MutationRejected when it holds no usable edit at all."""
    scan = _scan(text.splitlines(), agent, generation)
    fields, requests, blocks, prose = scan.fields, scan.requests, scan.blocks, scan.prose
    code_lines, truncated = scan.code_lines, scan.truncated
    code = "\n".join(code_lines) + "\n" if code_lines is not None else None
    if code is None and not blocks and "no change" not in fields:
        code = _bare_code("\n".join(prose))
    if code is not None and blocks:
        raise MutationRejected(
            "reply has both a code block and SEARCH/REPLACE blocks; send one or the other"
        )
    summary = fields.get("summary", "").strip() or _first_sentence(prose)
    if code is None and not blocks and "no change" not in fields and not requests:
        raise MutationRejected(
            "reply has no code: expected a fenced ```python block with the whole chunk, "
            "or SEARCH/REPLACE blocks, or 'NO CHANGE: <reason>'"
        )
    edit_words = fields.get("edit", "").split()
    return Reply(
        edit=edit_words[0][:120] if edit_words else "",
        explore="explore" in edit_words[1:],
        declined_because=fields.get("no change", ""),
        summary=summary[:200] or "LLM edit",
        rationale=fields.get("rationale", ""),
        target=fields.get("chunk", "").strip().strip("`"),
        code=code,
        blocks=tuple(blocks),
        requests=tuple(requests),
        no_change="no change" in fields and code is None and not blocks,
        truncated=truncated,
    )


def _read_block(lines: list[str], i: int) -> tuple[SearchReplace, int]:
    search: list[str] = []
    while i < len(lines) and not _DIVIDER.match(lines[i]):
        search.append(lines[i])
        i += 1
    if i >= len(lines):
        raise MutationRejected("SEARCH block without '=======' divider (reply truncated?)")
    i += 1
    replace: list[str] = []
    while i < len(lines) and not _REPLACE.match(lines[i]):
        replace.append(lines[i])
        i += 1
    if i >= len(lines):
        raise MutationRejected("SEARCH/REPLACE block without '>>>>>>> REPLACE' (reply truncated?)")
    return SearchReplace("\n".join(search), "\n".join(replace)), i + 1


def _parse_request(value: str, agent: str, generation: int) -> HumanRequest:
    parts = [p.strip() for p in value.split("|")]
    kind = parts[0].lower() if parts else ""
    if kind not in REQUEST_KINDS:
        kind = "other"
    title = parts[1] if len(parts) > 1 else (parts[0] if parts else "")
    rationale = " | ".join(parts[2:]) if len(parts) > 2 else ""
    if not title:
        raise MutationRejected("REQUEST line needs: <kind> | <title> | <rationale>")
    return HumanRequest(
        kind=kind,
        title=title[:120],
        rationale=rationale,
        agent=agent,  # type: ignore[arg-type]
        generation=generation,
    )


def _first_sentence(prose: list[str]) -> str:
    for line in prose:
        s = line.strip()
        if s:
            return s.split(". ")[0]
    return ""


def _bare_code(text: str) -> str | None:
    """Unfenced code: the longest tail of ``text`` starting at a def/class/@ line that parses."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*(def |class |@|async def )", line):
            candidate = "\n".join(lines[i:]).strip("\n") + "\n"
            try:
                ast.parse(candidate)
            except SyntaxError:
                import textwrap

                try:
                    ast.parse(textwrap.dedent(candidate))
                except SyntaxError:
                    return candidate  # let validation report the syntax error
            return candidate
    return None


def _squash(s: str) -> str:
    return " ".join(s.split())


def apply_blocks(chunk_text: str, blocks: tuple[SearchReplace, ...]) -> str:
    """Apply SEARCH/REPLACE ``blocks`` to ``chunk_text`` in order.

    An exact match wins; otherwise lines are matched ignoring whitespace, and the
    replacement is re-indented by the difference between the matched and the
    searched indentation. No match raises MutationRejected with the nearest lines.
    """
    text = chunk_text
    for n, b in enumerate(blocks, 1):
        if not b.search.strip():
            raise MutationRejected(f"SEARCH block {n} is empty; copy the exact lines to replace")
        if b.search in text:
            text = text.replace(b.search, b.replace, 1)
            continue
        text = _fuzzy_replace(text, b, n)
    return text


def _fuzzy_replace(text: str, b: SearchReplace, n: int) -> str:
    lines = text.splitlines()
    want = [ln for ln in b.search.splitlines() if ln.strip()]
    key = [_squash(ln) for ln in want]
    for i in range(len(lines)):
        got: list[int] = []
        j = i
        while j < len(lines) and len(got) < len(key):
            if lines[j].strip():
                if _squash(lines[j]) != key[len(got)]:
                    break
                got.append(j)
            elif not got:
                break
            j += 1
        if len(got) == len(key):
            first = lines[got[0]]
            shift = len(first) - len(first.lstrip()) - (len(want[0]) - len(want[0].lstrip()))
            new = [_shift(ln, shift) for ln in b.replace.splitlines()]
            return "\n".join(lines[: got[0]] + new + lines[got[-1] + 1 :]) + "\n"
    near = difflib.get_close_matches(
        _squash(want[0]) if want else "", [_squash(x) for x in lines if x.strip()], n=3, cutoff=0.3
    )
    hint = "; nearest lines in the chunk: " + " | ".join(repr(x) for x in near) if near else ""
    raise MutationRejected(f"SEARCH block {n} does not match the chunk {want[0].strip()!r}{hint}")


def _shift(line: str, shift: int) -> str:
    if not line.strip() or shift == 0:
        return line
    if shift > 0:
        return " " * shift + line
    lead = len(line) - len(line.lstrip())
    return line[min(lead, -shift) :]
