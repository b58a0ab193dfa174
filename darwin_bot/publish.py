"""The engine's Publisher port over a Forge: PRs, fitness statuses, culling, requests, dashboard.

Every call is an upsert, so a rerun of a step (or of a whole generation)
changes nothing on the forge. The same code drives ``LocalForge`` (``darwin
run``) and ``GitHubForge`` (the CI steps).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from darwin_bot import dashboard, hitl, report
from darwin_bot.config import Config
from darwin_bot.core.agent import HumanRequest
from darwin_bot.forge import open_forge
from darwin_bot.forge.base import (
    FITNESS_CONTEXT,
    Forge,
    PullRequest,
    agent_marker_key,
    with_marker,
)
from darwin_bot.gitrepo import GitRepo
from darwin_bot.memory import MemoryStore, utc_now

AGENT_LABEL = "darwin:agent"
CHAMPION_LABEL = "darwin:champion"
TITLE_MAX = 110


def _gen_label(g: int) -> str:
    return f"darwin:gen-{g}"


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _pct(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "—"
    return f"{100.0 * (value - base) / base:+.2f}%"


class ForgePublisher:
    """Shows the evolution on a forge and reads the humans' answers back."""

    def __init__(self, forge: Forge, repo: GitRepo, cfg: Config, memory: MemoryStore) -> None:
        self.forge = forge
        self.repo = repo
        self.cfg = cfg
        self.memory = memory
        self._handled: list[str] = []
        # The open agent PRs by branch, listed once per batch of writes (one paged
        # request instead of a lookup per agent); ``_prs_of`` says for which step.
        self._prs: dict[str, PullRequest] = {}
        self._prs_of: object = None

    def _open_prs(self, step: object) -> dict[str, PullRequest]:
        """The open agent PRs, listed on the first call for ``step`` and kept current after."""
        if self._prs_of != step:
            self._prs = {pr.branch: pr for pr in self.forge.list_prs(label=AGENT_LABEL)}
            self._prs_of = step
        return self._prs

    # -- reading ---------------------------------------------------------------------
    def controls(self) -> dict[str, bool]:
        c = dashboard.read_controls(self.forge)
        return {"pause": c.pause, "promote_leader": c.promote_leader, "reevaluate": c.reevaluate}

    def request_context(self) -> tuple[str, tuple[str, ...]]:
        states = hitl.read_requests(self.forge, acknowledge=True)
        for st in states:
            self._record_request(st.request, st.status, st.number)
        return hitl.requests_context(states), hitl.approved_imports(states)

    def handled(self, action: str) -> None:
        """The engine carried out a one-shot dashboard action; clear its box on the next write."""
        self._handled.append(action)

    # -- writing ---------------------------------------------------------------------
    def _record_request(
        self, req: HumanRequest, state: hitl.RequestStatus, issue: int | None
    ) -> None:
        self.memory.write_request(
            {
                "key": hitl.request_key(req),
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
                if f"darwin:request={key}" in issue.body:
                    self._record_request(req, hitl.decide(issue), issue.number)

    def offspring(self, record: dict[str, Any]) -> None:
        """Open (or update) the draft PR of a new offspring.

        No "pending" fitness status is set here: nothing reads it, the PR body
        already says the agent awaits evaluation, and on servers without commit
        statuses (check runs instead) it would cost two requests per agent.
        ``selected`` sets the one status an agent gets.
        """
        branch = self.repo.branch(record["agent"])
        open_prs = self._open_prs(("offspring", record["generation"]))
        if branch not in open_prs and len(open_prs) >= self.cfg.forge.max_open_prs:
            print(
                f"darwin: {len(open_prs)} agent PRs open (forge.max_open_prs); "
                f"no PR for {record['agent']} this time",
                file=sys.stderr,
            )
            return
        self._upsert_pr(record, None, open_prs=open_prs)

    def _upsert_pr(
        self,
        record: dict[str, Any],
        row: dict[str, Any] | None,
        baseline: dict | None = None,
        *,
        open_prs: dict[str, PullRequest],
    ) -> None:
        """Write the PR unless its open PR already reads the same (a rerun sends nothing)."""
        agent = record["agent"]
        branch = self.repo.branch(agent)
        summary = " ".join((record.get("summary") or record["kind"]).split())
        title = f"darwin: {agent} — {summary}"
        if len(title) > TITLE_MAX:
            title = title[: TITLE_MAX - 1] + "…"
        body = self._body(record, row, baseline)
        labels = (AGENT_LABEL, _gen_label(record["generation"]))
        have = open_prs.get(branch)
        if (
            have is not None
            and have.title == title
            and have.body == with_marker(body, agent_marker_key(branch))
            and set(labels) <= set(have.labels)
        ):
            return
        open_prs[branch] = self.forge.upsert_pr(branch, title, body, labels=labels, draft=True)

    def _body(
        self, record: dict[str, Any], row: dict[str, Any] | None, baseline: dict | None
    ) -> str:
        parent = record["parents"][0]
        parent_head = self.repo.rev(self.repo.branch(parent)) or self.repo.archived(parent)
        commits = [
            m for m in self.repo.lineage(record["head"], limit=20) if m.agent == record["agent"]
        ]
        lines = [
            f"**Agent** `{record['agent']}` (generation {record['generation']}, {record['kind']}) "
            f"from {', '.join(f'`{p}`' for p in record['parents'])}",
            "",
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
            stat = self.repo.diffstat(parent_head, record["head"])
            lines += ["", "### Diff stat against the parent", "", "```", stat, "```"]
        lines += ["", "### Metrics", ""]
        if row is None or baseline is None:
            lines.append("Awaiting evaluation by the sandboxed evaluator.")
        else:
            base = baseline.get("mean", {})
            parent_row = self._row_of(parent)
            lines += [
                "| | perplexity | MFU | fitness |",
                "|---|---:|---:|---:|",
                f"| this agent (rank {row.get('rank', '?')}) | {_fmt(row.get('perplexity'), '.4f')} "
                f"| {_fmt(row.get('mfu'), '.4f')} | {_fmt(row.get('fitness'), '+.4f')} |",
            ]
            if parent_row:
                lines.append(
                    f"| parent `{parent}` | {_fmt(parent_row.get('perplexity'), '.4f')} "
                    f"| {_fmt(parent_row.get('mfu'), '.4f')} | {_fmt(parent_row.get('fitness'), '+.4f')} |"
                )
            lines.append(
                f"| baseline (seed, mean of {baseline.get('n', '?')}) | {_fmt(base.get('perplexity'), '.4f')} "
                f"| {_fmt(base.get('mfu'), '.4f')} | +0.0000 |"
            )
            lines.append("")
            lines.append(
                f"Perplexity vs baseline: {_pct(row.get('perplexity'), base.get('perplexity'))}; "
                f"status: {row.get('status')}"
                + (f" ({row['reason']})" if row.get("reason") else "")
            )
        tokens = record.get("prompt_tokens", 0) + record.get("completion_tokens", 0)
        lines += [
            "",
            f"LLM: {record.get('model') or 'n/a'}, {record.get('prompt_tokens', 0)} prompt + "
            f"{record.get('completion_tokens', 0)} completion tokens ({tokens}), "
            f"${record.get('cost_usd', 0.0):.4f}",
            "",
            "_Opened by darwin-bot. Review the diff like any PR; the bot updates this body after "
            "each evaluation and closes it if the agent is culled._",
        ]
        return "\n".join(lines)

    def _row_of(self, agent: str) -> dict[str, Any] | None:
        for rec in reversed(self.memory.generations()):
            for row in rec.get("ranking", []):
                if row["agent"] == agent and row.get("status") == "ok":
                    return row
        return None

    def selected(self, summary: dict[str, Any], records: dict[str, dict[str, Any]]) -> None:
        """After selection: statuses and bodies, close the culled, promote a champion, dashboard."""
        baseline = summary.get("baseline") or {}
        base_ppl = (baseline.get("mean") or {}).get("perplexity")
        total = len(summary["ranking"])
        open_prs = self._open_prs(("selected", summary["generation"]))
        for row in summary["ranking"]:
            rec = records.get(row["agent"])
            if rec is None or rec.get("head") is None:
                continue
            ok = row["status"] == "ok"
            desc = (
                f"rank {row.get('rank')}/{total}: ppl {_fmt(row.get('perplexity'), '.3f')} "
                f"({_pct(row.get('perplexity'), base_ppl)}), MFU {_fmt(row.get('mfu'), '.4f')}"
                if ok
                else f"{row['status']}: {row.get('reason', '')}"
            )
            self.forge.set_status(
                rec["head"], FITNESS_CONTEXT, "success" if ok else "failure", desc[:140]
            )
            branch = self.repo.branch(row["agent"])
            if row["agent"] in summary["culled"]:
                if open_prs.pop(branch, None) is not None:
                    self.forge.close_pr(
                        branch, f"Culled in generation {summary['generation']}: {desc}."
                    )
                self.forge.delete_branch(branch)
            elif branch in open_prs:
                self._upsert_pr(rec, row, baseline, open_prs=open_prs)
        champion = summary.get("new_champion")
        promote = self._handled_promotion(summary)
        for agent in filter(None, {champion, promote}):
            self._promote(agent, summary, open_prs)
        self._dashboard(summary)
        self._prs_of = None  # the next step lists again: humans may have acted meanwhile

    def _handled_promotion(self, summary: dict[str, Any]) -> str | None:
        """The dashboard's 'promote the leader' box: a human's override of the gate."""
        if not self.controls().get("promote_leader"):
            return None
        self._handled.append("promote_leader")
        leader = summary.get("leader")
        return leader if leader and leader != "seed" else None

    def _promote(
        self, agent: str, summary: dict[str, Any], open_prs: dict[str, PullRequest]
    ) -> None:
        branch = self.repo.branch(agent)
        pr = open_prs.get(branch)
        if pr is None:
            return
        self.forge.mark_ready(branch)
        self.forge.set_labels(pr.number, add=(CHAMPION_LABEL,))
        gate = summary.get("gate") or {}
        self.forge.upsert_comment(
            pr.number,
            "champion",
            f"Champion of generation {summary['generation']}: {gate.get('reason', 'promoted from the dashboard')}.",
        )
        if self.cfg.forge.automerge and gate.get("passed") and gate.get("agent") == agent:
            self.forge.merge_pr(branch, f"darwin: promote champion {agent}")

    def _dashboard(self, summary: dict[str, Any]) -> None:
        table = report.leaderboard_markdown(report.rows_from_summary(summary))
        champion = summary.get("champion")
        gate = summary.get("gate") or {}
        champion_md = (
            f"`{champion}` ({gate.get('reason', '')})"
            if champion
            else f"none yet; leader `{summary.get('leader')}`"
        )
        pending = hitl.pending(hitl.read_requests(self.forge, acknowledge=False))
        dashboard.write_dashboard(
            self.forge,
            f"Generation {summary['generation']} ({utc_now()})\n\n{table}",
            champion_md,
            pending,
            handled=tuple(dict.fromkeys(self._handled)),
        )
        self._handled.clear()


def make_publisher(root: Path, cfg: Config) -> ForgePublisher:
    """The publisher for ``cfg.forge.kind``; a local forge deletes branches through git."""
    repo = GitRepo(root, prefix=cfg.evolution.branch_prefix)
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
    return ForgePublisher(forge, repo, cfg, memory)
