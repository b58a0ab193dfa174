"""The evolution loop over one repository: baseline, plan, propose, evaluate, select.

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
``budget.repeats`` times. In CI the steps that hold secrets never evaluate:
``matrix`` and ``confirm_jobs`` list the runs the sandboxed evaluate jobs must
make, and ``ingest_files`` takes their results back.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from darwin_bot.config import Config
from darwin_bot.core import fitness as fit
from darwin_bot.core import selection as sel
from darwin_bot.core.agent import HumanRequest, agent_id
from darwin_bot.core.results import Budget, EvalResult, Metrics, apply_cost_limit
from darwin_bot.engine import rows
from darwin_bot.engine.offspring import Breeder
from darwin_bot.engine.ports import SEED_AGENT, Evaluator, Progress, Publisher, derive_seed
from darwin_bot.errors import StateError
from darwin_bot.gitrepo import GitRepo
from darwin_bot.jsonio import read_json, write_json
from darwin_bot.memory import MemoryStore
from darwin_bot.program import contract_for


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
        self.publisher = publisher
        self.workers = max(1, workers)
        self.say = progress or Progress(enabled=False)
        self.memory = MemoryStore(repo.root / cfg.memory.path)
        self.state = repo.root / cfg.memory.path
        # darwin:contract seam: what an evaluation exports (and its cache key): the evolvable
        # paths and the files the program reads but never changes (nanogpt: configurator.py)
        self.evolvable = contract_for(cfg.program).copy_paths(cfg.evolution.evolvable)
        self.llm_factory = llm_factory
        self.breeder = Breeder(repo, cfg, self.memory, evaluator, llm_factory)
        self._gens: list[dict[str, Any]] | None = None  # summaries, read once per write

    def generations(self) -> list[dict[str, Any]]:
        """The generation summaries, oldest first (read from disk once, until the next write)."""
        if self._gens is None:
            self._gens = self.memory.generations()
        return self._gens

    def _write_generation(self, summary: dict[str, Any]) -> None:
        self.memory.write_generation(summary)
        self._gens = None

    # -- state files ---------------------------------------------------------------
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
        return next((rec for rec in self.generations() if rec["generation"] == g), None)

    def completed(self) -> int | None:
        """The last generation whose summary was written (None: not even the baseline)."""
        return self.memory.last_generation()

    def next_generation(self) -> int:
        """The generation a CI step works on: the one after the last recorded summary."""
        last = self.completed()
        return 0 if last is None else last + 1

    def proposed(self, g: int) -> bool:
        """Whether generation ``g`` was planned (``g`` > 0) or its seed branch made (``g`` = 0)."""
        if g == 0:
            return self.repo.rev(self.repo.branch(SEED_AGENT)) is not None
        return (self._gdir(g) / "plan.json").exists()

    def commit_memory(self, message: str) -> str | None:
        """Commit the memory folder on the checked-out branch (None when nothing changed)."""
        if not self.state.exists():
            return None
        return self.repo.commit_paths_on_current([self.cfg.memory.path], message)

    # -- evaluation cache -----------------------------------------------------------
    @property
    def budget(self) -> Budget:
        return Budget(iters=self.cfg.budget.iters, seconds=self.cfg.budget.seconds)

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

    def known_runs(self, head: str) -> list[EvalResult]:
        """The cached runs of ``head`` among the repeat seeds; never trains."""
        tree = self.repo.tree_id(head, self.evolvable)
        found = (self.cached(tree, s) for s in self._seeds(self.cfg.budget.repeats))
        return [r for r in found if r is not None]

    def _parallel(self, jobs: list[tuple[str, int]]) -> None:
        """Evaluate (ref, seed) pairs, ``workers`` at a time; results land in the cache."""
        todo = [
            (r, s) for r, s in jobs if self.cached(self.repo.tree_id(r, self.evolvable), s) is None
        ]
        if self.workers == 1 or len(todo) < 2:
            for ref, seed in todo:
                self.evaluate_ref(ref, seed)
            return
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(lambda job: self.evaluate_ref(*job), todo))

    def _seeds(self, n: int) -> range:
        s0 = self.cfg.evolution.seed
        return range(s0, s0 + n)

    # -- agents -----------------------------------------------------------------------
    def _head(self, agent: str) -> str:
        sha = self.repo.rev(self.repo.branch(agent)) or self.repo.archived(agent)
        if sha is None:
            raise StateError(f"agent {agent!r} has no branch and no archived head")
        return sha

    def seed_head(self) -> str:
        """The seed's commit, whether its branch survived or was culled (archived)."""
        return self._head(SEED_AGENT)

    def _ranked_rows(self, agent: str) -> list[dict[str, Any]]:
        """Every recorded row of ``agent``, oldest generation first."""
        return [
            row for rec in self.generations() for row in rec["ranking"] if row["agent"] == agent
        ]

    def _metrics_of(self, agent: str) -> Metrics | None:
        found = [r for r in self._ranked_rows(agent) if r.get("metrics")]
        return Metrics.from_dict(found[-1]["metrics"]) if found else None

    def _fitness_of(self, agent: str) -> float | None:
        found = [r for r in self._ranked_rows(agent) if r["status"] == "ok"]
        return float(found[-1]["fitness"]) if found else None

    def _children(self, agent: str) -> int:
        return sum(
            1
            for rec in self.generations()
            for row in rec["ranking"]
            if row["generation"] == rec["generation"] and agent in row.get("parents", [])
        )

    # -- generation 0 -------------------------------------------------------------------
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

    def baseline(self, base_ref: str | None = None) -> dict[str, Any]:
        """Evaluate the seed ``repeats`` times and record generation 0 (idempotent)."""
        done = self.summary(0)
        if done is not None:
            return done
        seed_ref = self.ensure_seed(base_ref)
        seeds = self._seeds(self.cfg.budget.repeats)
        self.say(f"generation 0: evaluating the seed {len(seeds)}x to measure the noise floor")
        self._parallel([(seed_ref, s) for s in seeds])
        runs = self.runs(seed_ref, seeds)
        base = fit.summarize(runs)
        mean = base.mean_metrics()
        if mean is None:
            reasons = "; ".join(f"{r.status}: {r.reason}" for r in runs if not r.ok)
            raise StateError(f"the seed itself does not train: {reasons}")
        summary = {
            "generation": 0,
            "ranking": rows.rank(
                [rows.row(SEED_AGENT, 0, [], fitness=0.0, mean=mean, n_runs=len(runs))]
            ),
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
        self._write_generation(summary)
        return summary

    def baseline_runs(self) -> list[EvalResult]:
        return self.runs(self.seed_head(), self._seeds(self.cfg.budget.repeats))

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
                agent=r["agent"],
                fitness=rows.scored(r).fitness,
                ok=r["status"] == "ok",
                generation=r["generation"],
                children=self._children(r["agent"]),
            )
            for r in prev["ranking"]
            if r["agent"] in prev["survivors"]
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

    def propose(self, g: int) -> list[dict[str, Any]]:
        """Mutate every planned offspring of ``g`` that has no outcome yet; return all outcomes."""
        context, extra_imports = ("", ())
        if self.publisher is not None:
            context, extra_imports = self.publisher.request_context()
        digest = self.memory.digest(self.cfg.memory.digest_tokens)
        baseline = self.baseline_metrics()
        for item in self.plan(g):
            path = self._offspring_path(g, item["agent"])
            if path.exists():
                continue
            self.say(
                f"generation {g}: {item['kind']} {item['agent']} <- {', '.join(item['parents'])}"
            )
            record = self.breeder.make(
                g,
                item,
                digest=digest,
                context=context,
                extra_imports=extra_imports,
                baseline=baseline,
                parent_metrics=self._metrics_of(item["parents"][0]),
            )
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

    # -- evaluate -----------------------------------------------------------------------
    def evaluate(self, g: int) -> dict[str, EvalResult]:
        """Score every offspring of ``g`` that passed its smoke test (cached by tree)."""
        ok = [r for r in self.offspring_records(g).values() if r["status"] == "ok"]
        seed = self.cfg.evolution.seed
        self.say(f"generation {g}: evaluating {len(ok)} offspring ({self.workers} at a time)")
        self._parallel([(r["head"], seed) for r in ok])
        return {r["agent"]: self.evaluate_ref(r["head"], seed) for r in ok}

    def repair(self, g: int, failures: dict[str, EvalResult]) -> list[str]:
        """Ask the LLM to fix offspring whose full evaluation failed; return the repaired agents."""
        records = self.offspring_records(g)
        repaired = []
        for agent, result in sorted(failures.items()):
            rec = records.get(agent)
            if rec is None or rec["status"] != "ok" or rec.get("repaired_from"):
                continue  # one repair per offspring per generation
            head = self.breeder.repair(g, rec, result, self._metrics_of(rec["parents"][0]))
            if head is not None:
                new = {
                    **rec,
                    "head": head,
                    "commits": rec["commits"] + [head],
                    "repaired_from": rec["head"],
                }
                write_json(self._offspring_path(g, agent), new)
                repaired.append(agent)
        return repaired

    # -- select -------------------------------------------------------------------------
    def _candidates(self, g: int, baseline: Metrics, *, train: bool) -> list[dict[str, Any]]:
        """Rows of the previous survivors and this generation's offspring, ranked.

        ``train``: evaluate (seed 0) a candidate that has no run yet; otherwise
        it ranks as "not evaluated". Offspring rejected at mutation rank last.
        """
        prev = self.summary(g - 1)
        if prev is None:
            raise StateError(f"generation {g - 1} has no summary")
        records = self.offspring_records(g)
        out = []
        alive = list(prev["survivors"]) + [a for a, r in records.items() if r["status"] == "ok"]
        if train:
            self._parallel([(self._head(a), self.cfg.evolution.seed) for a in alive])
        for agent in alive:
            rec = records.get(agent)
            born = rec["generation"] if rec else self._ranked_rows(agent)[0]["generation"]
            parents = rec["parents"] if rec else self._ranked_rows(agent)[0]["parents"]
            runs = [  # the harness measured each run's wall time; the budget is held here
                apply_cost_limit(
                    r,
                    baseline.train_wall_s,
                    self.cfg.budget.max_cost_ratio,
                    self.cfg.budget.seconds_cost_ratio,
                )  # fmt: skip
                for r in self.known_runs(self._head(agent))
            ]
            out.append(rows.scored_row(agent, born, parents, runs, baseline, self.cfg.fitness))
        for agent, rec in records.items():
            if rec["status"] != "ok":
                out.append(
                    rows.row(agent, g, rec["parents"], status="rejected", reason=rec["reason"])
                )
        return rows.rank(out)

    def provisional_leader(self, g: int) -> str | None:
        """The agent that would lead ``g`` on the runs known now (None: the seed or nobody)."""
        ranked = self._candidates(g, self.baseline_metrics(), train=False)
        lead = next((r for r in ranked if r["status"] == "ok"), None)
        return lead["agent"] if lead and lead["agent"] != SEED_AGENT else None

    def confirm_jobs(self, g: int) -> list[dict[str, Any]]:
        """CI: the repeat runs the provisional leader still needs for the statistical gate."""
        if g == 0:
            return []
        lead = self.provisional_leader(g)
        return (
            self._jobs(lead, self._head(lead), self._seeds(self.cfg.budget.repeats)) if lead else []
        )

    def select(self, g: int, *, confirm: bool = True) -> dict[str, Any]:
        """Rank, gate, cull and record generation ``g`` (idempotent).

        ``confirm``: run what is missing here (``darwin run``); without it (the
        CI select step) only results already ingested are used.
        """
        done = self.summary(g)
        if done is not None:
            return done
        started = time.monotonic()
        prev = self.summary(g - 1)
        if prev is None:
            raise StateError(f"generation {g - 1} has no summary")
        baseline = self.baseline_metrics()
        if confirm and self.publisher is not None and self.publisher.controls().get("reevaluate"):
            # The dashboard asked to re-evaluate the top agents: give every survivor full repeats.
            reps = self._seeds(self.cfg.budget.repeats)
            self._parallel([(self._head(a), s) for a in prev["survivors"] for s in reps])
            self.publisher.handled("reevaluate")
        ranked = self._candidates(g, baseline, train=confirm)
        lead = next((r for r in ranked if r["status"] == "ok"), None)
        if confirm and lead is not None and lead["agent"] != SEED_AGENT:
            self.say(f"generation {g}: confirming leader {lead['agent']} with repeated runs")
            head = self._head(lead["agent"])
            self._parallel([(head, s) for s in self._seeds(self.cfg.budget.repeats)])
            ranked = self._candidates(g, baseline, train=False)
            lead = next((r for r in ranked if r["status"] == "ok"), None)
        gate = self._gate(lead) if lead is not None and lead["agent"] != SEED_AGENT else None
        champion = lead["agent"] if gate and gate["passed"] else None

        keep = [
            s.agent
            for s in sel.survivors([rows.scored(r) for r in ranked], self.cfg.evolution.survivors)
        ]
        if champion is None and prev.get("champion") and prev["champion"] not in keep:
            keep.append(prev["champion"])  # a confirmed champion stays until something beats it
        keep = keep or list(prev["survivors"])
        # Everything not kept that still has a branch goes: the outranked and the failed.
        culled = [
            r["agent"]
            for r in ranked
            if r["agent"] not in keep and self.repo.rev(self.repo.branch(r["agent"])) is not None
        ]
        for agent in culled:
            self.repo.delete_branch(self.repo.branch(agent), archive_as=agent)
        records = self.offspring_records(g)
        updates = {}
        for r in ranked:
            rec = records.get(r["agent"])
            if rec is not None and rec["status"] == "ok":
                parent_fit = self._fitness_of(rec["parents"][0])
                ok = parent_fit is not None and r["status"] == "ok"
                updates[r["agent"]] = (r["metrics"], r["fitness"] - parent_fit if ok else None)
        self.memory.update_generation_metrics(g, updates)
        summary = {
            "generation": g,
            "ranking": ranked,
            "survivors": keep,
            "culled": culled,
            "champion": champion or prev.get("champion"),
            "new_champion": champion,
            "leader": lead["agent"] if lead else None,
            "gate": gate,
            "baseline": prev.get("baseline"),
            "timings": {"select_s": round(time.monotonic() - started, 3)},
            "tokens": {
                "prompt": sum(r.get("prompt_tokens", 0) for r in records.values()),
                "completion": sum(r.get("completion_tokens", 0) for r in records.values()),
            },
            "cost_usd": round(sum(r.get("cost_usd", 0.0) for r in records.values()), 6),
        }
        self._write_generation(summary)
        if self.publisher is not None:
            self.publisher.selected(summary, records)
        return summary

    def _gate(self, lead: dict[str, Any]) -> dict[str, Any]:
        """The statistical gate for the leader; writes its p-value into its row."""
        lead_runs = [r for r in self.known_runs(self._head(lead["agent"])) if r.ok and r.metrics]
        base_runs = [r for r in self.baseline_runs() if r.ok and r.metrics]
        result = fit.champion_test(
            [r.metrics.perplexity for r in lead_runs if r.metrics],
            [r.metrics.perplexity for r in base_runs if r.metrics],
            self.cfg.budget.significance,
        )
        lead["p_value"] = result.p_value
        return {"agent": lead["agent"], **result.to_dict()}

    # -- the loop -----------------------------------------------------------------------
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
        for g in range(last + 1, target + 1):
            if self.publisher is not None and self.publisher.controls().get("pause"):
                self.say("paused from the dashboard; nothing to do")
                break
            # seam (issue 13, darwin_bot/spend): past llm.max_usd no generation starts;
            # the factory has said why (once) and recorded it in the ledger.
            spend_stop = getattr(self.llm_factory, "stop_reason", None)
            if spend_stop is not None and spend_stop():
                break
            out.append(self.generation(g))
            self.commit_memory(f"darwin: record generation {g}")
        return out

    # -- CI support -----------------------------------------------------------------------
    def _jobs(self, agent: str, head: str, seeds: range) -> list[dict[str, Any]]:
        tree = self.repo.tree_id(head, self.evolvable)
        return [
            {"agent": agent, "branch": self.repo.branch(agent), "head": head, "seed": s}
            for s in seeds
            if self.cached(tree, s) is None
        ]

    def matrix(self, g: int) -> list[dict[str, Any]]:
        """Evaluation jobs for generation ``g`` that have no cached result yet.

        Generation 0: the seed, ``repeats`` seeds. Later: each proposed
        offspring once (the leader's repeats come from ``confirm_jobs``).
        """
        if g == 0:
            return self._jobs(SEED_AGENT, self.seed_head(), self._seeds(self.cfg.budget.repeats))
        jobs: list[dict[str, Any]] = []
        for rec in self.offspring_records(g).values():
            if rec["status"] == "ok":
                jobs += self._jobs(rec["agent"], rec["head"], self._seeds(1))
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
