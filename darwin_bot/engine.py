"""The evolution loop wired to real parts: git, the mutation pipeline, the evaluator, memory.

One generation is three idempotent steps, each of which the CI workflow runs
as its own job and ``darwin run`` runs in a row:

``propose(g)``
    plan the offspring (persisted as ``memory/gNNN/plan.json`` so a rerun plans
    the same), then for each offspring without a recorded outcome: mutate a
    worktree of its parent, commit with trailers, smoke-test, repair, and point
    ``<prefix><agent>`` at the result. The outcome is written last, so a crash
    mid-offspring redoes only that offspring.
``evaluate(g)``
    score every proposed offspring that has no cached result for its tree
    (results are cached by git tree id, budget and evaluator version under
    ``memory/evals/``, so a tree already scored is never trained again).
``select(g)``
    rank survivors and offspring against the baseline, confirm the leader with
    repeated runs and the statistical gate, cull (archive + delete branches),
    write the generation summary and the mutation records' metrics.

Generation 0 is the baseline: the seed (the default branch's tree) evaluated
``budget.repeats`` times. The pure decisions live in ``core``; this module only
moves data between the ports.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from darwin_bot.config import Config
from darwin_bot.core import fitness as fit
from darwin_bot.core import selection as sel
from darwin_bot.core.agent import HumanRequest, Mutation, agent_id
from darwin_bot.core.results import Budget, EvalResult, Metrics
from darwin_bot.errors import StateError
from darwin_bot.gitrepo import GitRepo, format_message
from darwin_bot.jsonio import read_json, write_json
from darwin_bot.memory import MemoryStore

SEED_AGENT = "seed"


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (Python's hash() is salted per process)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class Evaluator(Protocol):
    """Scores one tree (a folder holding the evolvable paths) under one seed."""

    version: str

    def __call__(self, tree: Path, *, seed: int, smoke: bool = False) -> EvalResult: ...


class Publisher(Protocol):
    """Where the evolution is shown and steered (the forge); every call is an upsert."""

    def controls(self) -> dict[str, bool]: ...

    def request_context(self) -> tuple[str, tuple[str, ...]]: ...

    def offspring(self, record: dict[str, Any]) -> None: ...

    def requests(self, requests: list[HumanRequest]) -> None: ...

    def selected(self, summary: dict[str, Any], records: dict[str, dict[str, Any]]) -> None: ...

    def handled(self, action: str) -> None: ...


@dataclass
class Progress:
    """Terse progress lines on stderr (a bar would garble CI logs)."""

    enabled: bool = True
    started: float = field(default_factory=time.monotonic)

    def __call__(self, msg: str) -> None:
        if self.enabled:
            print(f"[{time.monotonic() - self.started:7.1f}s] {msg}", file=sys.stderr, flush=True)


class Engine:
    """The evolution over one repository."""

    def __init__(
        self,
        repo: GitRepo,
        cfg: Config,
        *,
        evaluator: Evaluator,
        llm_factory: Callable[[int], Any],
        publisher: Publisher | None = None,
        workers: int = 1,
        progress: Progress | None = None,
    ) -> None:
        self.repo = repo
        self.cfg = cfg
        self.evaluator = evaluator
        self.llm_factory = llm_factory
        self.publisher = publisher
        self.workers = max(1, workers)
        self.say = progress or Progress(enabled=False)
        self.memory = MemoryStore(repo.root / cfg.memory.path)
        self.state = repo.root / cfg.memory.path
        self.evolvable = cfg.evolution.evolvable

    # -- small state files -------------------------------------------------------
    def _gdir(self, g: int) -> Path:
        return self.state / f"g{g:03d}"

    def _offspring_path(self, g: int, agent: str) -> Path:
        return self._gdir(g) / "offspring" / f"{agent}.json"

    def offspring_records(self, g: int) -> dict[str, dict[str, Any]]:
        folder = self._gdir(g) / "offspring"
        if not folder.is_dir():
            return {}
        return {p.stem: read_json(p) for p in sorted(folder.glob("*.json"))}

    def summary(self, g: int) -> dict[str, Any] | None:
        for rec in self.memory.generations():
            if rec.get("generation") == g:
                return rec
        return None

    def completed(self) -> int | None:
        """The last generation whose summary was written (None: not even the baseline)."""
        done = [rec["generation"] for rec in self.memory.generations()]
        return max(done) if done else None

    @property
    def budget(self) -> Budget:
        b = self.cfg.budget
        return Budget(iters=b.iters, seconds=b.seconds)

    # -- evaluation cache ---------------------------------------------------------
    def _cache_path(self, tree: str, seed: int) -> Path:
        key = f"{self.cfg.budget.preset}-{self.budget.key()}-v{self.evaluator.version}-s{seed}"
        return self.state / "evals" / tree.replace("+", "_") / f"{key}.json"

    def cached(self, tree: str, seed: int) -> EvalResult | None:
        path = self._cache_path(tree, seed)
        return EvalResult.from_dict(read_json(path)) if path.exists() else None

    def store_result(self, tree: str, seed: int, result: EvalResult) -> None:
        write_json(self._cache_path(tree, seed), result.to_dict())

    def evaluate_ref(self, ref: str, seed: int) -> EvalResult:
        """Evaluate the evolvable tree at ``ref`` (cached by tree id)."""
        tree = self.repo.tree_id(ref, self.evolvable)
        hit = self.cached(tree, seed)
        if hit is not None:
            return hit
        with tempfile.TemporaryDirectory(prefix="darwin-eval-") as tmp:
            self.repo.export(ref, self.evolvable, Path(tmp))
            result = self.evaluator(Path(tmp), seed=seed)
        self.store_result(tree, seed, result)
        return result

    def runs(self, ref: str, seeds: range) -> list[EvalResult]:
        return [self.evaluate_ref(ref, s) for s in seeds]

    def _parallel(self, jobs: list[tuple[str, int]]) -> None:
        """Evaluate (ref, seed) pairs, ``workers`` at a time; results land in the cache."""
        todo = [
            (r, s) for r, s in jobs if self.cached(self.repo.tree_id(r, self.evolvable), s) is None
        ]
        if not todo:
            return
        if self.workers == 1:
            for ref, seed in todo:
                self.evaluate_ref(ref, seed)
            return
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(lambda job: self.evaluate_ref(*job), todo))

    # -- generation 0 --------------------------------------------------------------
    def baseline(self, base_ref: str | None = None) -> dict[str, Any]:
        """Evaluate the seed ``repeats`` times and record generation 0 (idempotent)."""
        done = self.summary(0)
        if done is not None:
            return done
        seed_ref = self.ensure_seed(base_ref)
        repeats = self.cfg.budget.repeats
        self.say(f"generation 0: evaluating the seed {repeats}x to measure the noise floor")
        self._parallel([(seed_ref, self.cfg.evolution.seed + i) for i in range(repeats)])
        runs = self.runs(seed_ref, self._seeds(repeats))
        base = fit.summarize(runs)
        if not base.ok:
            reasons = "; ".join(f"{r.status}: {r.reason}" for r in runs if not r.ok)
            raise StateError(f"the seed itself does not train: {reasons}")
        mean = base.mean_metrics()
        assert mean is not None
        row = self._row(SEED_AGENT, 0, runs, mean, 0.0)
        summary = {
            "generation": 0,
            "ranking": [row],
            "survivors": [SEED_AGENT],
            "culled": [],
            "champion": None,
            "leader": SEED_AGENT,
            "gate": None,
            "baseline": {
                "mean": mean.to_dict(),
                "std": {k: v.std for k, v in base.metrics.items()},
                "n": base.n,
            },
            "timings": {"wall_s": round(time.monotonic() - self.say.started, 3)},
            "tokens": {"prompt": 0, "completion": 0},
            "cost_usd": 0.0,
        }
        self.memory.write_generation(summary)
        return summary

    def ensure_seed(self, base_ref: str | None = None) -> str:
        """The seed agent's branch, created at the default branch's head if missing."""
        name = self.repo.branch(SEED_AGENT)
        if self.repo.rev(name) is None:
            ref = base_ref or self.repo.default_branch()
            head = self.repo.rev(ref)
            if head is None:
                raise StateError(f"cannot find {ref!r} to take the seed from")
            self.repo.set_branch(SEED_AGENT, head)
        return name

    def seed_head(self) -> str:
        """The seed's commit, whether its branch survived or was culled (archived)."""
        return self._head(SEED_AGENT)

    def _seeds(self, n: int) -> range:
        s0 = self.cfg.evolution.seed
        return range(s0, s0 + n)

    def baseline_runs(self) -> list[EvalResult]:
        return self.runs(self._head(SEED_AGENT), self._seeds(self.cfg.budget.repeats))

    def baseline_metrics(self) -> Metrics:
        mean = fit.summarize(self.baseline_runs()).mean_metrics()
        if mean is None:
            raise StateError("the baseline has failed runs; delete memory/evals and rerun")
        return mean

    # -- propose ------------------------------------------------------------------------
    def plan(self, g: int) -> list[dict[str, Any]]:
        """The offspring of generation ``g``: persisted on first call, read back after."""
        path = self._gdir(g) / "plan.json"
        if path.exists():
            return read_json(path)["offspring"]
        prev = self.summary(g - 1)
        if prev is None:
            raise StateError(f"generation {g - 1} has no summary; run it (or 'darwin run') first")
        pool = [
            sel.Scored(
                agent=row["agent"],
                fitness=fit.FAILED if row["fitness"] is None else row["fitness"],
                ok=row["status"] == "ok",
                generation=row.get("generation", 0),
                children=self._children(row["agent"]),
            )
            for row in prev["ranking"]
            if row["agent"] in prev["survivors"]
        ]
        ev = self.cfg.evolution
        rng = random.Random(derive_seed(ev.seed, "plan", g))
        plans = sel.plan_offspring(
            pool, ev.population, ev.crossover_rate, rng, ev.selection, ev.tournament_size
        )
        offspring = [
            {
                "agent": agent_id(g, p.index),
                "index": p.index,
                "kind": p.kind,
                "parents": list(p.parents),
                "parent_heads": [self._head(a) for a in p.parents],
            }
            for p in plans
        ]
        write_json(path, {"generation": g, "offspring": offspring})
        return offspring

    def _children(self, agent: str) -> int:
        return sum(
            1
            for g_rec in self.memory.generations()
            for row in g_rec.get("ranking", [])
            if agent in row.get("parents", [])
        )

    def _head(self, agent: str) -> str:
        sha = self.repo.rev(self.repo.branch(agent)) or self.repo.archived(agent)
        if sha is None:
            raise StateError(f"agent {agent!r} has no branch and no archived head")
        return sha

    def propose(self, g: int) -> list[dict[str, Any]]:
        """Mutate every planned offspring of ``g`` that has no outcome yet; return all outcomes."""
        context, extra_imports = ("", ())
        if self.publisher is not None:
            context, extra_imports = self.publisher.request_context()
        digest = self.memory.digest(self.cfg.memory.digest_tokens)
        base_metrics = self.baseline_metrics()
        for item in self.plan(g):
            path = self._offspring_path(g, item["agent"])
            if path.exists():
                continue
            self.say(
                f"generation {g}: {item['kind']} {item['agent']} <- {', '.join(item['parents'])}"
            )
            record = self._make_offspring(g, item, digest, context, extra_imports, base_metrics)
            write_json(path, record)
        records = self.offspring_records(g)
        return [records[a["agent"]] for a in self.plan(g)]

    def publish(self, g: int) -> None:
        """Open or update the offspring's PRs and the agents' requests (after the push in CI)."""
        if self.publisher is None:
            return
        records = self.offspring_records(g)
        for rec in records.values():
            if rec["status"] == "ok":
                self.publisher.offspring(rec)
        self.publisher.requests(
            [HumanRequest(**r) for rec in records.values() for r in rec.get("requests", [])]
        )

    def _make_offspring(
        self,
        g: int,
        item: dict[str, Any],
        digest: str,
        context: str,
        extra_imports: tuple[str, ...],
        base_metrics: Metrics,
    ) -> dict[str, Any]:
        from darwin_bot.mutation import MutationContext, mutate_tree

        agent = item["agent"]
        # A rerun after a crash mid-offspring starts this offspring over.
        self.repo.delete_branch(self.repo.branch(agent))
        parent_metrics = self._metrics_of(item["parents"][0])
        ctx = MutationContext(
            agent=agent,
            generation=g,
            parents=tuple(item["parents"]),
            parent_metrics=parent_metrics,
            baseline_metrics=base_metrics,
            memory_digest=digest,
            requests_context=context,
            extra_imports=extra_imports,
            seed=derive_seed(self.cfg.evolution.seed, "mutate", agent),
        )
        llm = self.llm_factory(ctx.seed)
        heads: list[str] = []
        with self._offspring_tree(item) as wt:
            if item["kind"] == "crossover":
                heads.append(self._crossover(wt, item, g))

            def commit(attempt: Any) -> str:
                trailers = Mutation(
                    sha="",
                    agent=agent,
                    generation=g,
                    parents=tuple(item["parents"]),
                    kind=attempt.kind,
                    summary=attempt.summary,
                    model=attempt.model,
                    prompt_tokens=attempt.prompt_tokens,
                    completion_tokens=attempt.completion_tokens,
                ).trailers()
                body = "\n".join(f"- {c.file}::{c.chunk}: {c.summary}" for c in attempt.changes)
                sha = self.repo.commit_worktree(
                    wt, format_message(attempt.summary, body, trailers), allowed=self.evolvable
                )
                heads.append(sha)
                return sha

            def smoke(tree: Path) -> EvalResult:
                return self.evaluator(tree, seed=ctx.seed, smoke=True)

            outcome = mutate_tree(wt, ctx, llm, self.cfg, commit=commit, smoke=smoke)
        head = heads[-1] if heads and outcome.status == "ok" else None
        if head is not None:
            self.repo.set_branch(agent, head)
        tokens = [
            sum(a.prompt_tokens for a in outcome.attempts),
            sum(a.completion_tokens for a in outcome.attempts),
        ]
        for n, ev in enumerate(outcome.events):
            self.memory.write_mutation(
                {
                    "id": f"{agent}-{n:02d}",
                    "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "agent": agent,
                    "generation": g,
                    "parents": list(item["parents"]),
                    "file": ev.file,
                    "chunk": ev.chunk,
                    "summary": ev.summary,
                    "model": ev.model,
                    "prompt_tokens": ev.prompt_tokens,
                    "completion_tokens": ev.completion_tokens,
                    "cost_usd": ev.cost_usd,
                    "commit": head or "",
                    "kind": ev.kind,
                    "outcome": ev.outcome,
                    "reason": ev.reason,
                    "metrics_before": parent_metrics.to_dict() if parent_metrics else None,
                    "metrics_after": None,
                    "fitness_delta": None,
                }
            )
        return {
            "agent": agent,
            "generation": g,
            "kind": item["kind"],
            "parents": list(item["parents"]),
            "status": outcome.status,
            "reason": outcome.reason,
            "head": head,
            "commits": heads if head else [],
            "summary": outcome.attempts[0].summary if outcome.attempts else "",
            "model": outcome.attempts[-1].model if outcome.attempts else "",
            "prompt_tokens": tokens[0],
            "completion_tokens": tokens[1],
            "cost_usd": round(sum(a.cost_usd for a in outcome.attempts), 6),
            "requests": [
                {
                    "kind": r.kind,
                    "title": r.title,
                    "rationale": r.rationale,
                    "agent": agent,
                    "generation": g,
                }
                for a in outcome.attempts
                for r in a.requests
            ],
        }

    @contextlib.contextmanager
    def _offspring_tree(self, item: dict[str, Any]) -> Iterator[Path]:
        with self.repo.worktree(item["parent_heads"][0]) as wt:
            yield wt

    def _crossover(self, wt: Path, item: dict[str, Any], g: int) -> str:
        """Chunk-wise recombination of two parents as a two-parent merge commit."""
        from darwin_bot.mutation.crossover import recombine

        rng = random.Random(derive_seed(self.cfg.evolution.seed, "crossover", item["agent"]))
        other = item["parent_heads"][1]
        with tempfile.TemporaryDirectory(prefix="darwin-xo-") as tmp:
            self.repo.export(other, self.evolvable, Path(tmp))
            summary = recombine(wt, Path(tmp), self.evolvable, rng)
        trailers = Mutation(
            sha="",
            agent=item["agent"],
            generation=g,
            parents=tuple(item["parents"]),
            kind="crossover",
            summary=summary,
        ).trailers()
        sha = self.repo.merge_commit(
            item["parent_heads"], wt, format_message(f"crossover: {summary}", "", trailers)
        )
        self.repo.git("-C", str(wt), "reset", "-q", "--soft", sha)
        return sha

    def _metrics_of(self, agent: str) -> Metrics | None:
        for rec in reversed(self.memory.generations()):
            for row in rec.get("ranking", []):
                if row["agent"] == agent and row.get("metrics"):
                    return Metrics.from_dict(row["metrics"])
        return None

    # -- evaluate --------------------------------------------------------------------------
    def evaluate(self, g: int) -> dict[str, EvalResult]:
        """Score every offspring of ``g`` that passed its smoke test (cached by tree)."""
        records = self.offspring_records(g)
        seed = self.cfg.evolution.seed
        ok = [r for r in records.values() if r["status"] == "ok"]
        self.say(f"generation {g}: evaluating {len(ok)} offspring ({self.workers} at a time)")
        self._parallel([(r["head"], seed) for r in ok])
        return {r["agent"]: self.evaluate_ref(r["head"], seed) for r in ok}

    def ingest(self, results: dict[str, EvalResult], g: int) -> None:
        """Store results computed elsewhere (the CI evaluate jobs) into the cache."""
        records = self.offspring_records(g)
        for agent, result in results.items():
            rec = records.get(agent)
            head = rec["head"] if rec else self._head(agent)
            self.store_result(self.repo.tree_id(head, self.evolvable), result.seed, result)

    # -- select ------------------------------------------------------------------------------
    def select(self, g: int, *, confirm: bool = True) -> dict[str, Any]:
        """Rank, gate, cull and record generation ``g`` (idempotent)."""
        done = self.summary(g)
        if done is not None:
            return done
        started = time.monotonic()
        prev = self.summary(g - 1)
        if prev is None:
            raise StateError(f"generation {g - 1} has no summary")
        base_runs = self.baseline_runs()
        base = self.baseline_metrics()
        seed0 = self.cfg.evolution.seed
        records = self.offspring_records(g)
        if confirm and self.publisher is not None and self.publisher.controls().get("reevaluate"):
            # The dashboard asked to re-evaluate the top agents: give every survivor full repeats.
            reps = self._seeds(self.cfg.budget.repeats)
            self._parallel([(self._head(a), s) for a in prev["survivors"] for s in reps])
            self.publisher.handled("reevaluate")
        rows: list[dict[str, Any]] = []
        candidates = list(prev["survivors"]) + [a for a in records if records[a]["status"] == "ok"]
        for agent in candidates:
            head = self._head(agent)
            runs = self._known_runs(head)
            if not runs:
                runs = [self.evaluate_ref(head, seed0)] if confirm else []
            rows.append(self._scored_row(agent, g, runs, base, records.get(agent)))
        for agent, rec in records.items():
            if rec["status"] != "ok":
                rows.append(self._failed_row(agent, g, rec))

        ranked = self._rank(rows)
        leader = next((r for r in ranked if r["status"] == "ok"), None)
        gate = None
        champion = None
        if leader is not None and leader["agent"] != SEED_AGENT:
            head = self._head(leader["agent"])
            runs = self._known_runs(head)
            if confirm and len(runs) < self.cfg.budget.repeats:
                self.say(
                    f"generation {g}: confirming leader {leader['agent']} with {self.cfg.budget.repeats} runs"
                )
                self._parallel([(head, s) for s in self._seeds(self.cfg.budget.repeats)])
                runs = self.runs(head, self._seeds(self.cfg.budget.repeats))
                leader.update(
                    self._scored_row(leader["agent"], g, runs, base, records.get(leader["agent"]))
                )
                ranked = self._rank(rows)
                leader = next((r for r in ranked if r["status"] == "ok"), None)
            if leader is not None and leader["agent"] != SEED_AGENT:
                lead_runs = [r for r in self._known_runs(self._head(leader["agent"])) if r.ok]
                result = fit.champion_test(
                    [r.metrics.perplexity for r in lead_runs if r.metrics],
                    [r.metrics.perplexity for r in base_runs if r.ok and r.metrics],
                    self.cfg.budget.significance,
                )
                gate = {
                    "agent": leader["agent"],
                    "passed": result.passed,
                    "p_value": result.p_value,
                    "effect_size": result.effect_size,
                    "cohens_d": result.cohens_d,
                    "method": result.method,
                    "reason": result.reason,
                    "n_candidate": result.n_candidate,
                    "n_baseline": result.n_baseline,
                }
                leader["p_value"] = result.p_value
                if result.passed:
                    champion = leader["agent"]

        scored = [
            sel.Scored(
                agent=r["agent"],
                fitness=r["fitness"],
                ok=r["status"] == "ok",
                generation=r["generation"],
            )
            for r in ranked
        ]
        keep = [s.agent for s in sel.survivors(sel.rank(scored), self.cfg.evolution.survivors)]
        if champion is None and prev.get("champion") and prev["champion"] not in keep:
            # A confirmed champion stays in the population until something beats it.
            keep.append(prev["champion"])
        if not keep:
            keep = list(prev["survivors"])
        # Everything not kept that still has a branch goes: the outranked and the failed.
        culled = [
            r["agent"]
            for r in ranked
            if r["agent"] not in keep and self.repo.rev(self.repo.branch(r["agent"])) is not None
        ]
        for agent in culled:
            self.repo.delete_branch(self.repo.branch(agent), archive_as=agent)
        for rec in records.values():
            if rec["agent"] in culled or rec["status"] != "ok":
                continue
            row = next(r for r in ranked if r["agent"] == rec["agent"])
            self._update_mutation_metrics(rec, row)
        summary = {
            "generation": g,
            "ranking": ranked,
            "survivors": keep,
            "culled": culled,
            "champion": champion or prev.get("champion"),
            "new_champion": champion,
            "leader": leader["agent"] if leader else None,
            "gate": gate,
            "baseline": prev.get("baseline"),
            "timings": {"select_s": round(time.monotonic() - started, 3)},
            "tokens": {
                "prompt": sum(r.get("prompt_tokens", 0) for r in records.values()),
                "completion": sum(r.get("completion_tokens", 0) for r in records.values()),
            },
            "cost_usd": round(sum(r.get("cost_usd", 0.0) for r in records.values()), 6),
        }
        for rec in records.values():
            if rec["agent"] in culled:
                self._update_mutation_metrics(
                    rec, next(r for r in ranked if r["agent"] == rec["agent"])
                )
        self.memory.write_generation(summary)
        if self.publisher is not None:
            self.publisher.selected(summary, records)
        return summary

    def _update_mutation_metrics(self, rec: dict[str, Any], row: dict[str, Any]) -> None:
        parent_fit = self._fitness_of(rec["parents"][0])
        delta = None if parent_fit is None or row["status"] != "ok" else row["fitness"] - parent_fit
        self.memory.update_mutation_metrics(
            rec["agent"], rec["generation"], row.get("metrics"), delta
        )

    def _fitness_of(self, agent: str) -> float | None:
        for rec in reversed(self.memory.generations()):
            for row in rec.get("ranking", []):
                if row["agent"] == agent and row["status"] == "ok":
                    return float(row["fitness"])
        return None

    def _known_runs(self, head: str) -> list[EvalResult]:
        tree = self.repo.tree_id(head, self.evolvable)
        found = []
        for s in self._seeds(self.cfg.budget.repeats):
            hit = self.cached(tree, s)
            if hit is not None:
                found.append(hit)
        return found

    def _rank(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        order = sel.rank(
            [
                sel.Scored(
                    agent=r["agent"],
                    fitness=r["fitness"],
                    ok=r["status"] == "ok",
                    generation=r["generation"],
                )
                for r in rows
            ]
        )
        by_agent = {r["agent"]: r for r in rows}
        ranked = [by_agent[s.agent] for s in order]
        for i, r in enumerate(ranked, 1):
            r["rank"] = i
        return ranked

    def _row(
        self, agent: str, g: int, runs: list[EvalResult], mean: Metrics, fitness: float
    ) -> dict[str, Any]:
        return {
            "agent": agent,
            "generation": g,
            "status": "ok",
            "fitness": fitness,
            "metrics": mean.to_dict(),
            "n_runs": len(runs),
            "perplexity": mean.perplexity,
            "mfu": mean.mfu,
            "parents": [],
            "reason": "",
            "p_value": None,
        }

    def _scored_row(
        self, agent: str, g: int, runs: list[EvalResult], base: Metrics, rec: dict[str, Any] | None
    ) -> dict[str, Any]:
        born = rec["generation"] if rec else self._born(agent)
        parents = rec["parents"] if rec else self._parents(agent)
        summ = fit.summarize(runs) if runs else None
        if summ is None or not summ.ok:
            failed = next((r for r in runs if not r.ok), None)
            return {
                "agent": agent,
                "generation": born,
                "status": failed.status if failed else "failed",
                "fitness": fit.FAILED,
                "metrics": None,
                "n_runs": len(runs),
                "perplexity": None,
                "mfu": None,
                "parents": parents,
                "reason": failed.reason if failed else "not evaluated",
                "p_value": None,
            }
        mean = summ.mean_metrics()
        assert mean is not None
        row = self._row(agent, born, runs, mean, fit.fitness(mean, base, self.cfg.fitness))
        row["parents"] = parents
        return row

    def _failed_row(self, agent: str, g: int, rec: dict[str, Any]) -> dict[str, Any]:
        return {
            "agent": agent,
            "generation": g,
            "status": "rejected",
            "fitness": fit.FAILED,
            "metrics": None,
            "n_runs": 0,
            "perplexity": None,
            "mfu": None,
            "parents": rec["parents"],
            "reason": rec["reason"],
            "p_value": None,
        }

    def _born(self, agent: str) -> int:
        for rec in self.memory.generations():
            for row in rec.get("ranking", []):
                if row["agent"] == agent:
                    return int(row["generation"])
        return 0

    def _parents(self, agent: str) -> list[str]:
        for rec in self.memory.generations():
            for row in rec.get("ranking", []):
                if row["agent"] == agent:
                    return list(row.get("parents", []))
        return []

    # -- the loop ------------------------------------------------------------------------------
    def generation(self, g: int) -> dict[str, Any]:
        self.propose(g)
        self.publish(g)
        self.evaluate(g)
        return self.select(g)

    def run(self, generations: int) -> list[dict[str, Any]]:
        """Baseline if needed, then ``generations`` more generations.

        The target is written to ``memory/run.json`` first: a run killed part-way
        and started again with the same command finishes the interrupted run
        instead of adding ``generations`` more.
        """
        self.repo.cleanup_worktrees()
        self.baseline()
        self.commit_memory("darwin: record the baseline (generation 0)")
        last = self.completed() or 0
        run_file = self.state / "run.json"
        target = read_json(run_file).get("target", 0) if run_file.exists() else 0
        if target <= last:
            target = last + generations
            write_json(run_file, {"target": target})
        out = []
        start = last + 1
        for g in range(start, target + 1):
            if self.publisher is not None and self.publisher.controls().get("pause"):
                self.say("paused from the dashboard; nothing to do")
                break
            out.append(self.generation(g))
            self.commit_memory(f"darwin: record generation {g}")
        return out

    # -- CI support ------------------------------------------------------------------------------
    def commit_memory(self, message: str) -> str | None:
        """Commit the memory folder on the checked-out branch (None when nothing changed)."""
        return self.repo.commit_paths_on_current([self.cfg.memory.path], message)

    def next_generation(self) -> int:
        """The generation a CI step works on: the one after the last recorded summary."""
        last = self.completed()
        return 0 if last is None else last + 1

    def proposed(self, g: int) -> bool:
        """Whether generation ``g`` was planned (``g`` > 0) or its seed branch made (``g`` = 0)."""
        if g == 0:
            return self.repo.rev(self.repo.branch(SEED_AGENT)) is not None
        return (self._gdir(g) / "plan.json").exists()

    def matrix(self, g: int) -> list[dict[str, Any]]:
        """Evaluation jobs for generation ``g``: what has no cached result yet.

        Generation 0: the seed, ``repeats`` seeds. Later: each proposed
        offspring once, plus the missing repeats of the previous leader so the
        statistical gate can confirm it in this generation's select.
        """
        jobs: list[dict[str, Any]] = []

        def want(agent: str, head: str, seeds: range) -> None:
            tree = self.repo.tree_id(head, self.evolvable)
            for s in seeds:
                if self.cached(tree, s) is None:
                    jobs.append(
                        {"agent": agent, "branch": self.repo.branch(agent), "head": head, "seed": s}
                    )

        repeats = self._seeds(self.cfg.budget.repeats)
        if g == 0:
            want(SEED_AGENT, self._head(SEED_AGENT), repeats)
            return jobs
        for rec in self.offspring_records(g).values():
            if rec["status"] == "ok":
                want(rec["agent"], rec["head"], self._seeds(1))
        prev = self.summary(g - 1)
        lead = prev.get("leader") if prev else None
        if lead and lead != SEED_AGENT and lead in prev.get("survivors", []):
            want(lead, self._head(lead), repeats)
        return jobs

    def ingest_files(self, results: list[dict[str, Any]]) -> None:
        """Store CI evaluation results (``EvalResult`` dicts with ``extra.head``) in the cache."""
        for data in results:
            result = EvalResult.from_dict(data)
            head = result.extra.get("head")
            if not head:
                raise StateError(
                    "an evaluation result has no extra.head; was it made by 'darwin evaluate --branch'?"
                )
            self.store_result(self.repo.tree_id(head, self.evolvable), result.seed, result)

    def repair(self, g: int, failures: dict[str, EvalResult]) -> list[str]:
        """Ask the LLM to fix offspring whose full evaluation failed; return the repaired agents."""
        records = self.offspring_records(g)
        repaired = []
        for agent, result in sorted(failures.items()):
            rec = records.get(agent)
            if rec is None or rec["status"] != "ok" or rec.get("repaired_from"):
                continue  # one repair per offspring per generation
            if self._repair_one(g, rec, result):
                repaired.append(agent)
        return repaired

    def _repair_one(self, g: int, rec: dict[str, Any], result: EvalResult) -> bool:
        from darwin_bot.mutation import MutationContext, repair_tree

        agent, head = rec["agent"], rec["head"]
        ctx = MutationContext(
            agent=agent,
            generation=g,
            parents=tuple(rec["parents"]),
            parent_metrics=self._metrics_of(rec["parents"][0]),
            baseline_metrics=None,
            seed=derive_seed(self.cfg.evolution.seed, "repair", agent),
        )
        heads: list[str] = []
        with self.repo.worktree(head) as wt:

            def commit(attempt: Any) -> str:
                trailers = Mutation(
                    sha="",
                    agent=agent,
                    generation=g,
                    parents=tuple(rec["parents"]),
                    kind="repair",
                    summary=attempt.summary,
                    model=attempt.model,
                    prompt_tokens=attempt.prompt_tokens,
                    completion_tokens=attempt.completion_tokens,
                ).trailers()
                message = format_message(attempt.summary, result.reason, trailers)
                sha = self.repo.commit_worktree(wt, message, allowed=self.evolvable)
                heads.append(sha)
                return sha

            error = f"{result.status}: {result.reason}\n{result.log_tail[-3000:]}"
            outcome = repair_tree(
                wt,
                ctx,
                self.llm_factory(ctx.seed),
                self.cfg,
                error,
                commit=commit,
                smoke=lambda tree: self.evaluator(tree, seed=ctx.seed, smoke=True),
            )
        if outcome.status != "ok" or not heads:
            return False
        self.repo.set_branch(agent, heads[-1])
        new = {**rec, "head": heads[-1], "commits": rec["commits"] + heads, "repaired_from": head}
        write_json(self._offspring_path(g, agent), new)
        return True


class DeferredEvaluator:
    """The evaluator of the CI jobs that hold secrets: it never runs agent code.

    Smoke tests are deferred to the evaluate job on the sandboxed runner (a
    failure there goes to the repair job); a full evaluation that is not in
    the results is a StateError, never a local run.
    """

    def __init__(self, version: str) -> None:
        self.version = version

    def __call__(self, tree: Path, *, seed: int, smoke: bool = False) -> EvalResult:
        if smoke:
            return EvalResult(
                status="ok",
                reason="smoke test deferred to the sandboxed evaluate job",
                metrics=None,
                device="",
                seed=seed,
                budget=Budget(iters=0),
                evaluator_version=self.version,
                tree_hash="",
            )
        raise StateError(
            "this step holds secrets and never runs agent code, but a result is missing; "
            "run the evaluate job for it (see the 'agents' output of propose)"
        )
