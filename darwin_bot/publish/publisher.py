"""The engine's Publisher port over a Forge: PRs, fitness statuses, culling, requests, dashboard.

Every call is an upsert, so a rerun of a step (or of a whole generation)
changes nothing on the forge. The same code drives ``LocalForge`` (``darwin
run``) and ``GitHubForge`` (the CI steps).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path

from darwin_bot.config import Config
from darwin_bot.core import SEED_AGENT, HumanRequest, Row, Status
from darwin_bot.errors import ForgeAuthError, ForgeError, RunStopped
from darwin_bot.forge import (
    FITNESS_CONTEXT,
    WRITES_PER_HOUR,
    Forge,
    PullRequest,
    StatusState,
    agent_marker_key,
    open_forge,
    select_budget,
    with_marker,
)
from darwin_bot.git import GitRepo
from darwin_bot.publish import actions, dashboard, hitl, report
from darwin_bot.publish.review import Reviewer, cull_reason
from darwin_bot.spend import spend_report
from darwin_bot.store import GenerationSummary, MemoryStore, OffspringRecord, utc_now

AGENT_LABEL = "darwin:agent"
CHAMPION_LABEL = "darwin:champion"
TITLE_MAX = 110


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _pct(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "—"
    return f"{100.0 * (value - base) / base:+.2f}%"


def _measured(row: Row, base: float | None) -> str:
    """What was measured of a row that cannot rank (an over_budget run keeps its perplexity)."""
    ppl = row.metrics.perplexity if row.metrics else None
    return "" if ppl is None else f" (measured: ppl {ppl:.3f}, {_pct(ppl, base)})"


def _culled_line(why: str) -> str:
    """``**Culled in generation 2:** ranked 3 of 3 ...``: the verdict first, in bold."""
    head, _, rest = why.partition(": ")
    return f"**{head}:** {rest}." if rest else f"**{why}.**"


class ForgePublisher:
    """Shows the evolution on a forge and reads the humans' answers back."""

    def __init__(
        self,
        forge: Forge,
        repo: GitRepo,
        cfg: Config,
        memory: MemoryStore,
        *,
        memory_branch: bool = False,
    ) -> None:
        self.forge = forge
        self.repo = repo
        self.cfg = cfg
        self.memory = memory
        self._handled: list[str] = []
        # The open agent PRs by branch, listed once per batch of writes (one paged
        # request instead of a lookup per agent); ``_prs_of`` says for which step.
        self._prs: dict[str, PullRequest] = {}
        self._prs_of: object = None
        # the review section and plots of scored agents (darwin_bot/review.py)
        self.reviewer = Reviewer(repo, cfg, memory, memory_branch=memory_branch)
        self._plots: dict[str, str] = {}

    def _open_prs(self, step: object) -> dict[str, PullRequest]:
        """The open agent PRs, listed on the first call for ``step`` and kept current after."""
        if self._prs_of != step:
            self._prs = {pr.branch: pr for pr in self.forge.list_prs(label=AGENT_LABEL)}
            self._prs_of = step
        return self._prs

    # -- reading ---------------------------------------------------------------------
    def scored_by(self, version: str) -> None:
        self.reviewer.scored_by(version)

    def controls(self) -> dict[str, bool]:
        c = dashboard.read_controls(self.forge)
        return {"pause": c.pause, "promote_leader": c.promote_leader, "reevaluate": c.reevaluate}

    def request_context(self) -> tuple[str, tuple[str, ...]]:
        states = hitl.read_requests(self.forge, acknowledge=True)
        for st in states:
            self._record_request(st.request, st.status, st.number)
        return hitl.requests_context(states), hitl.approved_imports(states)

    def check_forge(self) -> None:
        """Before any branch is pushed: stop now if the forge will refuse the bot's PRs."""
        self.forge.check_pull_requests()

    def check_request_budget(self, generation: int) -> None:
        """Before select writes anything: stop (resume later) if GitHub's hourly limit is short.

        The need is counted for the agent PRs open now, each as if culled (the most
        writes); what is left is what GitHub's last answer said (the PR listing that
        select makes anyway, so the check costs no request).
        """
        open_prs = self._open_prs(("selected", generation))
        need = select_budget(0, len(open_prs))
        left = self.forge.requests_left()
        if need.writes > WRITES_PER_HOUR:
            actions.annotate_warning(
                f"selecting generation {generation} writes about {need.writes} times to "
                f"GitHub, over its {WRITES_PER_HOUR} per hour: the step stops at the limit "
                "(exit 3) and a rerun goes on from there; a smaller population avoids it",
                title="darwin-bot",
            )
        if left is not None and left[0] < need.requests:
            reset = time.strftime("%H:%M UTC", time.gmtime(left[1]))
            raise RunStopped(
                f"GitHub allows {left[0]} more API requests until {reset}; selecting "
                f"generation {generation} needs about {need.requests}: run the workflow "
                "again after then (nothing was changed)"
            )

    def handled(self, action: str) -> None:
        """The engine carried out a one-shot dashboard action; clear its box on the next write."""
        self._handled.append(action)

    # -- writing ---------------------------------------------------------------------
    def _record_request(
        self, req: HumanRequest, state: hitl.RequestStatus, issue: int | None
    ) -> None:
        self.memory.write_request(
            {
                "key": req.key,  # the record's file name; the forge marker is request_key()
                "kind": req.kind,
                "title": req.title,
                "agent": req.agent,
                "state": state,
                "issue": issue,
                "generation": req.generation,
                "rationale": req.rationale,
            }
        )

    def requests(self, requests: list[HumanRequest]) -> None:
        self._prs_of = None  # the engine's batch of offspring PRs ends here
        if not requests:
            return
        issues = {hitl.request_key(r): r for r in requests}
        for issue in hitl.open_requests(self.forge, requests):
            for key, req in issues.items():
                if f"darwin:{key}" in issue.body:
                    self._record_request(req, hitl.decide(issue), issue.number)

    def offspring(self, record: OffspringRecord) -> None:
        """Open (or update) the draft PR of a new offspring.

        No "pending" fitness status is set here: nothing reads it, the PR body
        already says the agent awaits evaluation, and on servers without commit
        statuses (check runs instead) it would cost two requests per agent.
        ``selected`` sets the one status an agent gets.
        """
        branch = self.repo.branch(record.agent)
        open_prs = self._open_prs(("offspring", record.generation))
        if branch not in open_prs and len(open_prs) >= self.cfg.forge.max_open_prs:
            print(
                f"darwin: {len(open_prs)} agent PRs open (forge.max_open_prs); "
                f"no PR for {record.agent} this time",
                file=sys.stderr,
            )
            return
        self._upsert_pr(record, None, open_prs=open_prs)

    def _upsert_pr(
        self,
        record: OffspringRecord,
        row: Row | None,
        *,
        open_prs: dict[str, PullRequest],
        culled: str | None = None,
    ) -> bool:
        """Write the PR unless its open PR already reads the same (a rerun sends nothing).

        True when it wrote: the PR did not read this before.
        """
        agent = record.agent
        branch = self.repo.branch(agent)
        summary = " ".join((record.summary or str(record.kind)).split())
        title = f"darwin: {agent} — {summary}"
        if len(title) > TITLE_MAX:
            title = title[: TITLE_MAX - 1] + "…"
        body = self._body(record, row, culled)
        # One label for every agent PR: the generation is in the body (a label per
        # generation would be one more write, and one more label, every generation).
        labels = (AGENT_LABEL,)
        have = open_prs.get(branch)
        if (
            have is not None
            and have.title == title
            and have.body == with_marker(body, agent_marker_key(branch))
            and set(labels) <= set(have.labels)
        ):
            return False
        open_prs[branch] = self.forge.upsert_pr(branch, title, body, labels=labels, draft=True)
        return True

    def _body(
        self,
        record: OffspringRecord,
        row: Row | None,
        culled: str | None = None,
    ) -> str:
        """The PR body of an offspring; ``row``: its ranking entry once scored (None: not yet)."""
        parent, head = record.parents[0], record.head or ""
        parent_head = self.repo.rev(self.repo.branch(parent)) or self.repo.archived(parent)
        commits = [m for m in self.repo.lineage(head, limit=20) if m.agent == record.agent]
        lines = [
            f"**Agent** `{record.agent}` (generation {record.generation}, {record.kind}) "
            f"from {', '.join(f'`{p}`' for p in record.parents)}",
            "",
            *([_culled_line(culled), ""] if culled else []),
            "### What changed and why",
            "",
        ]
        for m in reversed(commits):
            lines.append(f"**{m.summary}** ({m.kind}, `{m.sha[:8]}`)")
            body = self.repo.git("log", "-1", "--format=%b", m.sha)
            lines += [ln for ln in body.splitlines() if ln.strip() and not ln.startswith("Darwin-")]
            lines.append("")
        if not commits:
            lines.append("- (no commits)")
        if parent_head:
            stat = self.repo.diffstat(parent_head, head)
            lines += ["", "### Diff stat against the parent", "", "```", stat, "```"]
        lines += ["", "### Metrics", ""]
        if row is None:
            lines.append("Awaiting evaluation by the sandboxed evaluator.")
        else:  # mean ± sd, p-values, trusted cost, the plot
            lines += self.reviewer.section(record, row, self._plots.get(record.agent))
        lines += [
            "",
            self.reviewer.llm_line(record),  # an unpriced model costs "unknown"
            "",
            "_Opened by darwin-bot. Review the diff like any PR; the bot updates this body after "
            "each evaluation and closes it if the agent is culled._",
        ]
        return "\n".join(lines)

    def selected(self, summary: GenerationSummary, records: Mapping[str, OffspringRecord]) -> None:
        """After selection: statuses and bodies, close the culled, promote a champion, dashboard."""
        base_ppl = report.seed_perplexity(summary)
        total = len(summary.ranking)
        open_prs = self._open_prs(("selected", summary.generation))
        # plots of the generation's top agents, committed once, pinned URLs
        kept = {a: r.head for a, r in records.items() if r.head}
        self._plots = self.reviewer.plots(summary, kept)
        for row in summary.ranking:
            rec = records.get(row.agent)
            if rec is None or rec.head is None:
                continue
            ok = row.status is Status.OK
            ppl = row.metrics.perplexity if row.metrics else None
            mfu = row.metrics.mfu if row.metrics else None
            desc = (
                f"rank {row.rank}/{total}: ppl {_fmt(ppl, '.3f')} "
                f"({_pct(ppl, base_ppl)}), reported MFU {_fmt(mfu, '.4f')}"
                if ok
                else f"{row.status}: {row.reason}" + _measured(row, base_ppl)
            )
            branch = self.repo.branch(row.agent)
            if branch not in open_prs:
                # No PR (forge.max_open_prs, or closed before): no reviewer reads a status.
                continue
            # A kept agent's fitness status goes last: when this call is the one that moved the PR
            # from "awaiting evaluation" (closed it, or wrote its metrics), no earlier run
            # of this step set the status, so the forge need not look one up (``new``).
            # Branches are never deleted here: the step's atomic push deletes the
            # culled ones together with their archive refs (lineage is never lost).
            if row.agent in summary.culled:
                # The body keeps its final metrics and why it was culled. The status is set
                # before the close: a run killed between the two finds the PR still open and
                # does both again, where a closed PR would be skipped without its status.
                why = cull_reason(summary, row)
                self._upsert_pr(rec, row, open_prs=open_prs, culled=why)
                self._fitness_status(rec.head, ok, desc, new=False)
                open_prs.pop(branch)
                self.forge.close_pr(branch, f"{why}.")
                continue
            moved = self._upsert_pr(rec, row, open_prs=open_prs)
            self._fitness_status(rec.head, ok, desc, new=moved)
        promote = self._handled_promotion(summary)
        for agent in filter(None, {summary.new_champion, promote}):
            self._promote(agent, summary, open_prs)
        self._dashboard(summary)
        self._prs_of = None  # the next step lists again: humans may have acted meanwhile

    def _fitness_status(self, head: str, ok: bool, desc: str, *, new: bool) -> None:
        state = StatusState.SUCCESS if ok else StatusState.FAILURE
        self.forge.set_status(head, FITNESS_CONTEXT, state, desc[:140], new=new)

    def _handled_promotion(self, summary: GenerationSummary) -> str | None:
        """The dashboard's 'promote the leader' box: a human's override of the gate."""
        if not self.controls().get("promote_leader"):
            return None
        self._handled.append("promote_leader")
        leader = summary.leader
        return leader if leader and leader != SEED_AGENT else None

    def _promote(
        self, agent: str, summary: GenerationSummary, open_prs: dict[str, PullRequest]
    ) -> None:
        branch = self.repo.branch(agent)
        pr = open_prs.get(branch)
        if pr is None:
            return
        self.forge.mark_ready(branch)
        self.forge.set_labels(pr.number, add=(CHAMPION_LABEL,))
        gate = summary.gate
        reason = report.gate_reason(summary, "promoted from the dashboard")
        self.forge.upsert_comment(
            pr.number, "champion", f"Champion of generation {summary.generation}: {reason}."
        )
        if self.cfg.forge.automerge and gate is not None and gate.passed and gate.agent == agent:
            # The head this step fetched and ranked (its results are keyed by its tree);
            # a commit pushed to the branch since is not what the gate passed.
            evaluated = self.repo.rev(f"refs/heads/{branch}") or pr.head_sha
            self._automerge(pr.number, branch, agent, evaluated)

    def _automerge(self, number: int, branch: str, agent: str, head: str) -> None:
        """Merge the champion's PR through the API; a merge the repository refuses is a comment.

        The merge lands on the default branch on the server, which the CI steps never
        push to (the memory has its own branch), so nothing a step pushes later can
        conflict with it. A repository may refuse the merge (required checks that a
        GITHUB_TOKEN's PR never starts, required reviews, a merge queue): the champion
        stays promoted and ready for a human, the PR says why, and the generation goes on.
        A missing permission is still an error: the workflow, not the repository, is wrong.

        The champion's head is archived (here and on the remote) before the merge: a
        repository that deletes merged head branches removes ``branch`` at once, and
        the lineage must not depend on the step living to its push. The merge is
        pinned to ``head``, the commit that was evaluated.
        """
        self.repo.archive_head(agent, head)
        try:
            self.forge.merge_pr(branch, f"darwin: promote champion {agent}", sha=head)
        except ForgeAuthError:
            raise
        except ForgeError as exc:
            print(f"darwin: automerge of {agent} refused: {exc}", file=sys.stderr)
            self.forge.upsert_comment(
                number,
                "automerge",
                f"Automerge was refused by the repository: {exc}. "
                "Merge it yourself, or see docs/github.md, 'Run it on your repository'.",
            )

    def _dashboard(self, summary: GenerationSummary) -> None:
        table = report.leaderboard_markdown(summary.ranking, report.seed_perplexity(summary))
        champion = summary.champion
        champion_md = (
            f"`{champion}` ({report.gate_reason(summary)})"
            if champion
            else f"none yet; leader `{summary.leader}`"
        )
        promotion = report.promotion_text(summary)
        if promotion and summary.promotion is not None and not summary.promotion.promote:
            # budget.confirm_*: the leader was not promoted; say why (not as the champion's reason)
            kept = f"`{champion}` (unchanged)" if champion else "none yet"
            champion_md = f"{kept}; {promotion}"
        states = hitl.read_requests(self.forge, acknowledge=False)
        pending = hitl.pending_requests(states)
        spend = spend_report(self.cfg, self.memory)  # spend, per-model table
        ignored = hitl.ignored_comments(states)
        outsiders = (
            f"\n\n{ignored} comment(s) on request issues came from people without write "
            "access to this repository and were not passed to the agents."
            if ignored
            else ""
        )
        dashboard.write_dashboard(
            self.forge,
            f"Generation {summary.generation} ({utc_now()})\n\n{table}\n\n### LLM spend\n\n"
            f"{spend}{outsiders}",
            champion_md,
            pending,
            handled=tuple(dict.fromkeys(self._handled)),
        )
        self._handled.clear()


def make_publisher(
    root: Path, cfg: Config, *, memory_branch: bool = True, remote: str | None = None
) -> ForgePublisher:
    """The publisher for ``cfg.forge.kind``; a local forge deletes branches through git.

    ``memory_branch``: the memory is committed on the memory branch (the CI steps and
    ``darwin run`` alike), so the review plots go there too; False puts them on HEAD.
    ``remote``: where a champion's head is archived before it is merged (the CI steps' origin).
    """
    repo = GitRepo(root, prefix=cfg.evolution.branch_prefix, remote=remote)
    memory = MemoryStore(repo.root / cfg.memory.path)

    def delete_local(branch: str) -> bool:
        existed = repo.rev(f"refs/heads/{branch}") is not None
        repo.delete_branch(branch, archive_as=branch[len(repo.prefix) :])
        return existed

    forge = open_forge(
        cfg,
        repo.root,
        head_sha_hook=lambda branch: repo.rev(f"refs/heads/{branch}"),
        delete_branch_hook=delete_local,
        merge_hook=None,
    )
    return ForgePublisher(forge, repo, cfg, memory, memory_branch=memory_branch)
