"""The PR as the place to review: metrics with spread and p-values, trusted cost, curves.

What this module adds to an agent's PR body (``publisher.ForgePublisher._body``
calls :func:`review_section`):

- perplexity, MFU (reported: from the program's own token count, not ranked
  by default) and time to the seed's loss (trusted: ``core.time_to_loss`` on
  the harness's held-out curves) of the agent, its parent and the baseline as
  mean ± sd over the repeat runs, and one-sided p-values (Welch,
  ``core.fitness``) of "the agent's perplexity is lower" against the parent and
  the baseline;
- the trusted cost: training wall time as the harness measured it, and the
  cost ratio against the baseline's (read tolerantly from each result's
  ``extra``/metrics: the scoring side names them ``train_wall_s`` and
  ``cost_ratio``; absent keys show "—");
- one picture, committed by the bot under ``memory/plots/`` and linked by a
  commit-pinned URL: held-out perplexity over generations along the agent's
  lineage, the trusted held-out curves of the agent, its parent and the seed,
  and the training-loss curves of the same three.
  The loss curves are what the program printed (``iter N: loss X``): a claim,
  labelled "reported by the program", never a score.

Everything is read from the memory folder (generation summaries, the
evaluation cache ``memory/evals/<tree>/``), so rendering twice gives the same
bytes and a rerun of the step changes nothing.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darwin_bot.core import SEED_AGENT, Row, Status, champion_test
from darwin_bot.core import time_to_loss as ttl
from darwin_bot.publish import report
from darwin_bot.publish.review_plot import review_plot
from darwin_bot.store import EvalCache, GenerationSummary, History, OffspringRecord

__all__ = ["Reviewer", "Runs", "Spread", "cull_reason", "metrics_table", "review_plot"]

PLOTS_DIR = "plots"
FITNESS_PNG = "fitness.png"  # memory/plots/fitness.png: the whole run's plot
_ITER_LOSS = re.compile(r"^iter (\d+): loss ([0-9.eE+-]+|nan|inf)", re.MULTILINE)
WALL_KEYS = ("train_wall_s",)  # measured by the harness (train_seconds is the program's claim)
SCORE_KEYS = ("score_wall_s",)  # measured too: the model's load() runs there, so it is cost
COST_KEYS = ("cost_ratio",)


@dataclass(frozen=True)
class Spread:
    """Mean ± sample sd over ``n`` runs (sd None with one run)."""

    mean: float | None
    sd: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        vals = [v for v in values if v is not None and math.isfinite(v)]
        if not vals:
            return cls(None, None, 0)
        m = sum(vals) / len(vals)
        sd = math.sqrt(sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else None
        return cls(m, sd, len(vals))

    def text(self, spec: str) -> str:
        if self.mean is None:
            return "—"
        sd = f" ± {format(self.sd, spec)}" if self.sd is not None else ""
        return f"{format(self.mean, spec)}{sd} (n={self.n})"


@dataclass(frozen=True)
class Runs:
    """The cached evaluation results of one tree at the search budget (plain dicts)."""

    results: tuple[dict[str, Any], ...]

    def ok(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r.get("status") == Status.OK and r.get("metrics")]

    def metric(self, name: str) -> list[float]:
        return [float(r["metrics"][name]) for r in self.ok() if name in r["metrics"]]

    def trusted(self, keys: Sequence[str]) -> list[float]:
        """A measured number under any of ``keys`` in ``extra`` or ``metrics`` (tolerant read)."""
        out = []
        for r in self.ok():
            for where in (r.get("extra") or {}, r.get("metrics") or {}):
                # 0 means "not measured" (a result from before the harness measured it)
                hit = next(
                    (
                        where[k]
                        for k in keys
                        if isinstance(where.get(k), (int, float)) and where[k] > 0
                    ),
                    None,
                )
                if hit is not None:
                    out.append(float(hit))
                    break
        return out

    def held_out_curve(self) -> list[tuple[float, float]]:
        """The trusted curve of the first ok run that has one: (budget share, held-out loss)."""
        for r in self.ok():
            points = ttl.points_of(r.get("extra") or {})
            if points:
                return [(p.fraction, p.val_loss) for p in points]
        return []

    def time_to_loss(self, target: float | None) -> str:
        """Where the runs' trusted curves first reach ``target``, as a share of the budget."""
        curves = [c for c in (ttl.points_of(r.get("extra") or {}) for r in self.ok()) if c]
        if not curves or target is None:
            return "—"
        hits = [h.fraction for h in (ttl.time_to_loss(c, target) for c in curves) if h]
        if not hits:
            return f"not reached (n={len(curves)})"
        missed = len(curves) - len(hits)
        return Spread.of(hits).text(".2f") + (f"; not reached in {missed}" if missed else "")

    def loss_curve(self) -> list[tuple[int, float]]:
        """The training loss the program printed in its first ok run (a claim, not a score)."""
        for r in self.ok():
            curve = (r.get("extra") or {}).get("reported_loss_curve")
            if isinstance(curve, list) and curve:
                return [(int(i), float(v)) for i, v in curve]
            found = [(int(i), float(v)) for i, v in _ITER_LOSS.findall(r.get("log_tail") or "")]
            if found:
                return found
        return []


def load_runs(cache: EvalCache, tree: str | None) -> Runs:
    """The tree's results in the eval cache: this budget, evaluator version and corpus only."""
    if not tree:
        return Runs(())
    return Runs(tuple(result.to_dict() for result in cache.results(tree)))


def p_lower(candidate: Sequence[float], reference: Sequence[float]) -> float | None:
    """One-sided p-value that the candidate's perplexity is lower (None: too few runs)."""
    if len(candidate) < 2 or len(reference) < 2:
        return None
    return champion_test(candidate, reference, 0.5).p_value


def _p(value: float | None) -> str:
    return "— (needs 2+ runs each)" if value is None else f"{value:.3g}"


def _delta(runs: Runs, baseline: Runs) -> str:
    """The mean perplexity's change against the seed's, in percent (negative is better)."""
    mean, base = Spread.of(runs.metric("perplexity")).mean, Spread.of(baseline.metric("perplexity"))
    if mean is None or not base.mean:
        return "—"
    return f"{100.0 * (mean - base.mean) / base.mean:+.2f}%"


def metrics_table(
    agent: Runs, parent: Runs | None, baseline: Runs, *, parent_is_seed: bool = False
) -> list[str]:
    """Markdown lines: the rows (mean ± sd, Δ against the seed), and the p-values.

    ``parent_is_seed``: the parent is the baseline itself, one row for both, and
    the "vs parent" p-value is the one against the seed's runs.
    """
    lines = [
        "| | perplexity (held-out) | Δ vs seed | reaches the seed's loss at (share of budget, "
        "trusted) | MFU (reported) | training wall time (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    target = Spread.of(baseline.metric("val_loss")).mean
    if parent_is_seed:
        named = [("this agent", agent), ("parent = baseline (seed)", baseline)]
        parent = baseline
    else:
        named = [("this agent", agent), ("parent", parent), ("baseline (seed)", baseline)]
    for name, runs in named:
        if runs is None:
            continue
        lines.append(
            f"| {name} | {Spread.of(runs.metric('perplexity')).text('.4f')} "
            f"| {_delta(runs, baseline)} "
            f"| {runs.time_to_loss(target)} "
            f"| {Spread.of(runs.metric('mfu')).text('.4f')} "
            f"| {Spread.of(runs.trusted(WALL_KEYS)).text('.1f')} |"
        )
    ppl = agent.metric("perplexity")
    lines.append("")
    vs_parent = p_lower(ppl, parent.metric("perplexity")) if parent is not None else None
    lines.append(
        f"p-value (perplexity lower, one-sided Welch): vs parent {_p(vs_parent)}; "
        f"vs baseline {_p(p_lower(ppl, baseline.metric('perplexity')))}"
    )
    return lines


def cull_reason(summary: GenerationSummary, row: Row) -> str:
    """Why ``row``'s agent was culled in ``summary``'s generation, with its measured result."""
    head = f"Culled in generation {summary.generation}"
    if row.status is not Status.OK:
        why = " ".join(row.reason.split())[:300]
        return f"{head}: its training run ended {row.status}" + (f" ({why})" if why else "")
    base = report.seed_perplexity(summary)
    ppl = row.metrics.perplexity if row.metrics else None
    measured = f"perplexity {ppl:.4f}" if ppl is not None else "no perplexity"
    if ppl is not None and base:
        measured += f" ({100.0 * (ppl - base) / base:+.2f}% vs the seed's {base:.4f})"
    keep = len(summary.survivors)
    return (
        f"{head}: ranked {row.rank} of {len(summary.ranking)} with {measured}; "
        f"only {keep} survive{'s' if keep == 1 else ''} (evolution.survivors)"
    )


def cost_line(agent: Runs, baseline: Runs) -> str:
    """The trusted cost: measured training wall time and its ratio to the baseline's."""
    wall = Spread.of(agent.trusted(WALL_KEYS))
    ratio = Spread.of(agent.trusted(COST_KEYS))
    if ratio.mean is None:
        base = Spread.of(baseline.trusted(WALL_KEYS))
        if wall.mean is not None and base.mean:
            ratio = Spread(wall.mean / base.mean, None, wall.n)
    score = Spread.of(agent.trusted(SCORE_KEYS))
    scoring = f"scoring {score.text('.1f')} s, " if score.mean is not None else ""
    return (
        f"**Trusted cost** (measured by the harness): training wall time {wall.text('.1f')} s, "
        f"{scoring}cost ratio vs baseline {ratio.text('.3f') if ratio.mean is not None else '—'}"
    )


def lineage_points(
    generations: Sequence[GenerationSummary], agent: str, limit: int = 50
) -> list[tuple[str, int, float]]:
    """(agent, generation scored, mean perplexity) along ``agent``'s first-parent lineage."""
    latest: dict[str, Row] = {}
    for summary in generations:
        for row in summary.ranking:
            if row.status is Status.OK and row.metrics is not None:
                latest[row.agent] = row
    chain: list[tuple[str, int, float]] = []
    seen: set[str] = set()
    current: str | None = agent
    while current and current not in seen and len(chain) < limit:
        seen.add(current)
        row = latest.get(current)
        if row is None or row.metrics is None:
            break
        chain.append((current, row.generation, row.metrics.perplexity))
        current = row.parents[0] if row.parents else None
    return list(reversed(chain))


def image_url(repository: str, sha: str, rel_path: str, server: str | None = None) -> str:
    """A commit-pinned URL GitHub renders in a PR body (a relative link without a repository)."""
    if not repository:
        return f"{rel_path}@{sha[:12]}"
    base = (server or os.environ.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    return f"{base}/{repository}/raw/{sha}/{rel_path}"


class Reviewer:
    """The review section of agents' PR bodies, and their plots, for one repository.

    ``repo`` is a ``GitRepo``; ``cfg`` the ``Config``. Plots are made for the
    ``top`` agents of a generation (and its champion) only: a picture per
    agent of a population of 100 would cost more bot time than it saves
    reviewers, and a reviewer looks at the leaders.
    """

    def __init__(
        self,
        repo: Any,
        cfg: Any,
        memory: Any,
        top: int = 5,
        *,
        memory_branch: bool = False,
    ) -> None:
        from darwin_bot.core import Budget
        from darwin_bot.evaluate import EVALUATOR_VERSION

        self.repo = repo
        self.memory_branch = memory_branch  # commit the plots there (the CI steps), not on HEAD
        self.cfg = cfg
        self.memory = memory
        self.root = Path(memory.root)
        self.top = top
        budget = Budget(iters=cfg.budget.iters, seconds=cfg.budget.seconds)
        self._budget = budget
        self._runs: dict[tuple[str, str | None], Runs] = {}
        self.scored_by(EVALUATOR_VERSION)

    def scored_by(self, version: str) -> None:
        """Read the results of evaluator ``version`` on this corpus: the PR compares like with like."""
        bu = self.cfg.budget
        self.cache = EvalCache(self.root, bu.preset, self._budget, version, bu.data)
        self._runs.clear()

    def _head(self, agent: str) -> str | None:
        return self.repo.rev(self.repo.branch(agent)) or self.repo.archived(agent)

    def runs(self, agent: str, head: str | None = None) -> Runs:
        """The agent's cached results, looked up once per publishing step (``plots`` resets)."""
        key = (agent, head)
        if key not in self._runs:
            head = head or self._head(agent)
            tree = self.repo.tree_id(head, self.cfg.evolution.evolvable) if head else None
            self._runs[key] = load_runs(self.cache, tree)
        return self._runs[key]

    def _curves(self, agent: str, head: str, parent: str | None) -> tuple[dict, dict]:
        """(reported training-loss curves, trusted held-out curves) of the agent, its parent
        (unless the seed) and the seed, by label."""
        runs = {f"{agent} (this agent)": self.runs(agent, head)}
        if parent and parent != SEED_AGENT:
            runs[f"{parent} (parent)"] = self.runs(parent)
        runs[SEED_AGENT] = self.runs(SEED_AGENT)
        reported = {label: r.loss_curve() for label, r in runs.items()}
        return reported, {label: r.held_out_curve() for label, r in runs.items()}

    def plots(self, summary: GenerationSummary, heads: Mapping[str, str]) -> dict[str, str]:
        """Draw and commit the plots of the generation's top agents; agent -> image URL."""
        self._runs.clear()  # a new step: results may have been added since the last
        ranked = [r for r in summary.ranking if r.status is Status.OK]
        chosen = [r.agent for r in ranked[: self.top] if r.agent in heads]
        champion = summary.new_champion
        if champion is not None and champion in heads and champion not in chosen:
            chosen.append(champion)
        gens = History(self.memory).summaries()
        # the run's fitness plot, named by agent, goes with the memory (committed with it)
        report.fitness_plot(gens, self.root / PLOTS_DIR / FITNESS_PNG)
        if not chosen:
            return {}
        base = report.seed_perplexity(summary)
        base_sd = summary.baseline.std.get("perplexity") if summary.baseline else None
        seed = self.runs(SEED_AGENT)
        paths = {}
        for agent in chosen:
            parent = next((r.parents[0] for r in ranked if r.agent == agent and r.parents), None)
            curves, held_out = self._curves(agent, heads[agent], parent)
            target = Spread.of(seed.metric("val_loss")).mean
            rel = f"{self.cfg.memory.path}/{PLOTS_DIR}/{agent}.png"
            lineage = lineage_points(gens, agent)
            errors = {
                a: Spread.of(self.runs(a).metric("perplexity")).sd or 0.0 for a, _, _ in lineage
            }
            review_plot(
                self.repo.root / rel,
                lineage,
                curves,
                base,
                errors=errors,
                baseline_sd=base_sd,
                target=target,
                held_out=held_out if any(held_out.values()) else None,
            )
            paths[agent] = rel
        message = f"darwin: review plots of generation {summary.generation}"
        if self.memory_branch:
            # CI: the memory lives on its own branch, which the step pushes; a commit on the
            # checkout would never reach GitHub and the pinned image link would be dead.
            self.repo.commit_memory(
                self.cfg.memory.path, message, sorted(paths.values()), keep_others=True
            )
            ref = f"refs/heads/{self.repo.memory_branch}"
        else:
            self.repo.commit_paths_on_current(sorted(paths.values()), message)
            ref = "HEAD"
        repository = self.cfg.forge.repository or os.environ.get("GITHUB_REPOSITORY", "")
        if self.cfg.forge.kind != "github":
            repository = ""
        out = {}
        for agent, rel in paths.items():
            sha = self.repo.git("log", "-1", "--format=%H", ref, "--", rel).strip()
            out[agent] = image_url(repository, sha, rel) if sha else rel
        return out

    def section(self, record: OffspringRecord, row: Row, plot_url: str | None) -> list[str]:
        """Markdown lines for the PR body of a scored agent."""
        parent = record.parents[0] if record.parents else None
        agent_runs = self.runs(record.agent, record.head)
        base_runs = self.runs(SEED_AGENT)
        parent_runs = self.runs(parent) if parent and parent != SEED_AGENT else None
        fit_text = f"{row.fitness:+.4f}" if math.isfinite(row.fitness) else "—"
        lines = [f"Leaderboard rank {row.rank}, fitness {fit_text}; status {row.status}", ""]
        if row.status is not Status.OK and row.reason:
            lines += [f"Why: {' '.join(row.reason.split())[:500]}", ""]
        lines += metrics_table(
            agent_runs, parent_runs, base_runs, parent_is_seed=parent == SEED_AGENT
        )
        lines += ["", cost_line(agent_runs, base_runs), ""]
        if plot_url:
            lines.append(
                f"![held-out perplexity along the lineage; trusted held-out curves of this agent "
                f"and the seed; training loss reported by the program]({plot_url})"
            )
        else:
            lines.append(f"_Plots are drawn for the top {self.top} agents of each generation._")
        return lines

    def llm_line(self, record: OffspringRecord) -> str:
        """Model, tokens and cost of the agent's mutation; a model without a price costs 'unknown'."""
        from darwin_bot.spend import PriceTable, format_usd

        model = record.model
        pt, ct = record.prompt_tokens, record.completion_tokens
        cost = record.cost_usd
        unpriced = PriceTable.load(self.cfg.llm.prices).price(model) is None
        if not cost and (pt or ct) and unpriced:  # no tokens (the offline mutator) costs nothing
            shown = "cost unknown (no price for this model: set llm.prices)"
        else:
            shown = format_usd(cost)
        return f"LLM: {model or 'n/a'}, {pt} prompt + {ct} completion tokens ({pt + ct}), {shown}"
