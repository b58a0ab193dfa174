"""Human-in-the-loop: agents' requests become issues; humans' answers become prompt context.

An agent asks for something only a human can give (a dataset, a dependency, a
script run, a restructuring) with a :class:`~darwin_bot.core.agent.HumanRequest`.
It becomes one issue labelled ``darwin:request``, found again by the marker
``request=<HumanRequest.key>`` (kind + normalised title), so the same request
from many agents or many reruns is one issue.

A human answers on the forge:

* approve: add the label ``darwin:approved`` (and comment what was done);
* decline: close the issue as "not planned", or add the label ``darwin:declined``.

Anything closed without the approval label counts as declined: nothing is
granted without an explicit approval. Approved ``dependency`` requests extend
the imports a mutation may use (:func:`approved_imports`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from darwin_bot.core import REQUEST_KINDS, HumanRequest, RequestStatus
from darwin_bot.forge import ANY_STATE, CloseReason, Forge, Issue, IssueState, has_marker

REQUEST_LABEL = "darwin:request"
APPROVED_LABEL = "darwin:approved"
DECLINED_LABEL = "darwin:declined"
ACK_KEY = "ack"


# The request as the bot wrote it, kept in the body so it can be read back.
_DATA = re.compile(r"<!-- darwin-request: (\{.*?\}) -->")
_ANY_MARKER = "<!-- darwin:"
_IMPORT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def request_key(req: HumanRequest) -> str:
    """The marker key of the issue for ``req``."""
    return f"request={req.key}"


@dataclass(frozen=True)
class RequestState:
    """A request as the forge shows it now, with what the humans said."""

    number: int
    url: str
    request: HumanRequest
    status: RequestStatus
    human_comments: tuple[str, ...] = ()
    # Comments by people without rights on the repository: never passed to the agents.
    ignored_comments: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RequestStatus(self.status))  # rejects unknown states


def issue_title(req: HumanRequest) -> str:
    return f"darwin request ({req.kind}): {req.title}"


def issue_body(req: HumanRequest) -> str:
    """What the agent wants, why, who asked, and how to answer."""
    who = f"agent `{req.agent}`" if req.agent else "an agent"
    data = json.dumps(
        {
            "kind": req.kind,
            "title": req.title,
            "rationale": req.rationale[:2000],
            "agent": req.agent,
            "generation": req.generation,
        },
        sort_keys=True,
    ).replace("-->", "--\\u003e")
    return "\n".join(
        [
            f"**{who}** (generation {req.generation}) asks for a **{req.kind}** change:",
            "",
            f"> {req.title}",
            "",
            "**Why:**",
            "",
            req.rationale.strip() or "(no reason given)",
            "",
            "**How to answer:**",
            "",
            f"- approve: add the label `{APPROVED_LABEL}` and comment what you did "
            "(your comment is passed to the agents);",
            f"- decline: close this issue as *not planned*, or add the label `{DECLINED_LABEL}`.",
            "",
            f"<!-- darwin-request: {data} -->",
        ]
    )


def open_requests(forge: Forge, requests: Iterable[HumanRequest]) -> list[Issue]:
    """Open one issue per distinct request; a request already on the forge is left as is.

    The first agent to ask is the one the issue names; later askers, and reruns,
    change nothing (and never reopen a declined request).
    """
    issues: dict[str, Issue] = {}
    requests = list(requests)
    if requests:  # humans answer by picking these labels: make sure they exist
        forge.ensure_label(APPROVED_LABEL, "0e8a16", "darwin-bot: the request is approved")
        forge.ensure_label(DECLINED_LABEL, "b60205", "darwin-bot: the request is declined")
    for req in requests:
        if req.kind not in REQUEST_KINDS:
            raise ValueError(
                f"unknown request kind {req.kind!r}; one of {', '.join(REQUEST_KINDS)}"
            )
        key = request_key(req)
        if key in issues:
            continue
        found = forge.find_issue(key, label=REQUEST_LABEL)
        if found is None:
            found = forge.upsert_issue(key, issue_title(req), issue_body(req), (REQUEST_LABEL,))
        issues[key] = found
    return list(issues.values())


def _decode(issue: Issue) -> HumanRequest | None:
    match = _DATA.search(issue.body)
    if not match:
        return None
    try:
        data = json.loads(match.group(1))
        return HumanRequest(
            kind=data["kind"],
            title=data["title"],
            rationale=data.get("rationale", ""),
            agent=data.get("agent", ""),
            generation=int(data.get("generation", 0)),
        )
    except (ValueError, KeyError, TypeError):  # a human edited the hidden data: skip it
        return None


def decide(issue: Issue) -> RequestStatus:
    """Declined wins over approved: a grant needs an explicit, uncontested approval."""
    declined_by_close = (
        issue.state is IssueState.CLOSED and issue.state_reason == CloseReason.NOT_PLANNED
    )
    if DECLINED_LABEL in issue.labels or declined_by_close:
        return RequestStatus.DECLINED
    if APPROVED_LABEL in issue.labels:
        return RequestStatus.APPROVED
    return RequestStatus.DECLINED if issue.state is IssueState.CLOSED else RequestStatus.PENDING


def _ack_text(status: RequestStatus) -> str:
    if status is RequestStatus.APPROVED:
        return "darwin-bot saw the approval; the next generations are told about it."
    return "darwin-bot saw that this request was declined; the agents are told not to rely on it."


def read_requests(forge: Forge, acknowledge: bool = True) -> list[RequestState]:
    """Every request issue with its decision and the humans' comments, by number.

    With ``acknowledge``, a decision seen for the first time gets one comment
    (marker ``ack``) saying so; later reads find it and post nothing.
    """
    states = []
    for issue in forge.list_issues(label=REQUEST_LABEL, state=ANY_STATE):
        req = _decode(issue)
        if req is None:
            continue
        status = decide(issue)
        # Only people with rights on the repository steer the agents: on a public
        # repository anyone may comment, and these words go into the LLM's prompt.
        said = [c for c in issue.comments if not forge.is_own(c)]
        humans = tuple(c.body.strip() for c in said if c.has_rights and _ANY_MARKER not in c.body)
        ignored = sum(1 for c in said if not c.has_rights)
        if acknowledge and status is not RequestStatus.PENDING:
            # The bot's own acknowledgement: a marker in someone else's comment is not one.
            acked = any(has_marker(c.body, ACK_KEY) and forge.is_own(c) for c in issue.comments)
            if not acked:
                forge.upsert_comment(issue.number, ACK_KEY, _ack_text(status))
        states.append(RequestState(issue.number, issue.url, req, status, humans, ignored))
    return states


def ignored_comments(states: Sequence[RequestState]) -> int:
    """Comments on request issues left out of the prompts (their authors have no rights)."""
    return sum(s.ignored_comments for s in states)


def pending_requests(states: Sequence[RequestState]) -> list[RequestState]:
    return [s for s in states if s.status is RequestStatus.PENDING]


def requests_context(states: Sequence[RequestState], max_chars: int = 2000) -> str:
    """The humans' answers, as text for the next prompts ('' when there are none)."""
    if not states:
        return ""
    advice = {
        RequestStatus.APPROVED: "approved; you may rely on it",
        RequestStatus.DECLINED: "declined; do not rely on it or ask again",
        RequestStatus.PENDING: "waiting for a human; do not rely on it yet",
    }
    lines = ["Requests to humans and their answers:"]
    for s in states:
        granted = dependency_name(s.request.title) if s.request.kind == "dependency" else None
        said = advice[s.status]
        if s.status is RequestStatus.APPROVED and granted:
            said += f"; `{granted}` is now an allowed import"
        lines.append(f"- [{s.status}] {s.request.kind}: {s.request.title} ({said})")
        for said in s.human_comments:
            lines.append(f"  human: {' '.join(said.split())[:300]}")
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[: max_chars - 4].rstrip() + "\n..."


def dependency_name(title: str) -> str | None:
    """The import name in a dependency request's title ("Add dependency: einops>=0.7")."""
    tail = title.split(":", 1)[1] if ":" in title else title.split()[-1] if title.split() else ""
    words = tail.strip().split()
    if not words:
        return None
    name = re.split(r"[<>=!~\[;, ]", words[0], maxsplit=1)[0].strip("`'\"")
    name = name.lower().replace("-", "_")
    return name if _IMPORT_NAME.match(name) else None


def approved_imports(states: Sequence[RequestState]) -> tuple[str, ...]:
    """Import names granted by approved ``dependency`` requests, sorted."""
    names = {
        dependency_name(s.request.title)
        for s in states
        if s.status is RequestStatus.APPROVED and s.request.kind == "dependency"
    }
    return tuple(sorted(n for n in names if n))


def pending_lines(
    states: Sequence[RequestState], width: int = 300, command: str = "darwin requests"
) -> list[str]:
    """The pending requests as lines for a terminal: number, kind, title, the reason, how to answer.

    ``command`` is how the user reaches this forge from where they are (with its ``--config``).
    """
    out = []
    for s in pending_requests(states):
        why = " ".join(s.request.rationale.split())
        why = why if len(why) <= width else why[: width - 3] + "..."
        out.append(f"#{s.number} {s.request.kind}: {s.request.title} (asked by {s.request.agent})")
        out.append(f"    why: {why}")
        out.append(f"    answer: {command} approve {s.number}  (or: decline {s.number})")
    return out
