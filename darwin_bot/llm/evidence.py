"""The memory as typed evidence for the mutators: trials, credit per edit, lineage.

Built once per generation from the memory store's public reading API
(``mutations()``, ``generations()``, ``requests()``, ``last_generation()``);
nothing here parses digest text. What it reads of a mutation record:
``agent``, ``generation``, ``parents``, ``outcome``, ``fitness_delta`` and
``edit`` (``{"tag", "explore", "change"}``, written by the engine's Breeder
from the reply's ``EDIT:`` line). Of a generation summary: each ranking row's
``metrics.val_loss``. Of a request record: ``key`` and ``state``.

Credit. Every evaluated edit adds its agent's measured fitness change against
its parent (a fraction: +0.018 is +1.8 %) to its *arm* (kind, and direction
for a hyperparameter). An offspring with several edits gives each the whole
change (shared credit: the memory cannot tell them apart). An edit whose
offspring failed (smoke test, or an evaluated generation with no measured
change) counts as :data:`FAILED_DELTA`.

The posterior of an arm (:meth:`Evidence.draw`) is a normal model with a
known variance per trial: the measurement noise of one fitness change (a
child's run against its parent's), taken from the seed's repeated baseline
runs (:func:`run_noise`), plus the prior variance of every other edit the same
offspring made (their effects are in its change too). Without a baseline the
spread of all measured changes stands in for the measurement noise.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from darwin_bot.core import Outcome, RequestStatus, Status
from darwin_bot.store import fit_lines

FAILED_DELTA = -0.05  # a failed offspring counts as a 5 % loss for its edits
PRIOR_STD = 0.02  # an untried arm's fitness change: N(0, 2 %^2)
NOISE_FLOOR = 0.005  # the per-trial measurement noise is never taken below 0.5 %
# outcomes of a mutation record, and the offspring statuses a failed evaluation leaves
_FAILED_OUTCOMES = frozenset({Outcome.SMOKE_FAILED, Status.FAILED, Status.TIMEOUT})
# "closed" is how request records written before RequestStatus existed say declined
_DECLINED = frozenset({RequestStatus.DECLINED, "closed"})


class MemoryReader(Protocol):
    """The part of ``darwin_bot.store.memory.MemoryStore`` this module reads."""

    def mutations(self, generation: int | None = None) -> list[dict[str, Any]]: ...

    def generations(self) -> list[dict[str, Any]]: ...

    def requests(self) -> list[dict[str, Any]]: ...

    def last_generation(self) -> int | None: ...


@dataclass(frozen=True)
class EditTag:
    """Which edit: ``kind``, and for a hyperparameter its ``direction`` and new ``value``."""

    kind: str
    direction: str = ""
    value: str = ""

    @property
    def arm(self) -> str:
        """What credit is kept for: ``rmsnorm``, ``hparam:learning_rate:up``."""
        return f"{self.kind}:{self.direction}" if self.direction else self.kind

    @property
    def effect(self) -> str:
        """What the tree gets: ``rmsnorm``, ``hparam:learning_rate=0.002``."""
        return f"{self.kind}={self.value}" if self.value else self.kind

    def text(self) -> str:
        """The one-line form used in replies and records: ``hparam:learning_rate:up=0.002``."""
        return self.arm + (f"={self.value}" if self.value else "")

    @classmethod
    def parse(cls, text: str) -> EditTag:
        head, _, value = text.strip().partition("=")
        kind, direction = head, ""
        if head.startswith("hparam:") and head.count(":") == 2:
            kind, direction = head.rsplit(":", 1)
        return cls(kind, direction, value)


@dataclass(frozen=True)
class Trial:
    """One edit an agent made, and what it did (``delta`` None: not measured yet)."""

    agent: str
    generation: int
    parent: str
    tag: EditTag
    delta: float | None
    explore: bool = False
    kept: bool = True  # in the agent's tree (False: the edit failed its smoke test)
    companions: int = 0  # the other edits of the same offspring, whose effects share its delta


@dataclass(frozen=True)
class Repeat:
    """An offspring's edit whose effect an ancestor (``ancestor``) already made."""

    agent: str
    effect: str
    ancestor: str
    explore: bool


@dataclass(frozen=True)
class Credit:
    """What the memory says about one arm."""

    arm: str
    deltas: tuple[float, ...]
    agents: tuple[str, ...]

    @property
    def n(self) -> int:
        return len(self.deltas)

    @property
    def mean(self) -> float:
        return sum(self.deltas) / self.n if self.deltas else 0.0

    def line(self) -> str:
        """``3 earlier rmsnorm edits: +1.8 % mean (g001-002, g002-001, g002-003)``."""
        if not self.deltas:
            return f"no earlier {self.arm} edits in memory (untried: drawn from the prior)"
        who = ", ".join(self.agents[-4:]) + (", ..." if self.n > 4 else "")
        many = "edit" if self.n == 1 else "edits"
        return f"{self.n} earlier {self.arm} {many}: {100 * self.mean:+.1f} % mean ({who})"


def _tag(record: Mapping[str, Any]) -> tuple[EditTag, bool] | None:
    edit = record.get("edit")
    if not isinstance(edit, Mapping) or not edit.get("tag"):
        return None
    return EditTag.parse(str(edit["tag"])), bool(edit.get("explore", False))


@dataclass(frozen=True)
class Evidence:
    """Everything the memory says that a mutator can act on."""

    trials: tuple[Trial, ...] = ()
    parents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    changes: Mapping[str, str] = field(default_factory=dict)  # change signature -> agent
    best_val_loss: tuple[tuple[int, float], ...] = ()  # (generation, best so far), measured
    declined: frozenset[str] = frozenset()  # request keys the humans declined
    asked: frozenset[str] = frozenset()  # request keys already on the forge
    measured_noise: float | None = None  # sd of one fitness change, from the baseline's runs

    # -- credit ----------------------------------------------------------------------
    def credit(self, arm: str) -> Credit:
        got = [t for t in self.trials if t.tag.arm == arm and t.delta is not None]
        return Credit(arm, tuple(t.delta for t in got), tuple(t.agent for t in got))  # type: ignore[misc]

    def noise(self) -> float:
        """The measurement noise of one trial: the baseline's, else the spread of all changes."""
        if self.measured_noise is not None:
            return max(NOISE_FLOOR, self.measured_noise)
        ds = [t.delta for t in self.trials if t.delta is not None and t.delta != FAILED_DELTA]
        if len(ds) < 3:
            return max(NOISE_FLOOR, PRIOR_STD)
        m = sum(ds) / len(ds)
        return max(NOISE_FLOOR, math.sqrt(sum((d - m) ** 2 for d in ds) / (len(ds) - 1)))

    def draw(self, arm: str, rng: random.Random) -> float:
        """A Thompson draw of ``arm``'s fitness change (the module docstring's model)."""
        noise2, prior2 = self.noise() ** 2, PRIOR_STD**2
        precision, weighted = 1 / prior2, 0.0
        for t in self.trials:
            if t.tag.arm == arm and t.delta is not None:
                var = noise2 + t.companions * prior2
                precision += 1 / var
                weighted += t.delta / var
        return rng.gauss(weighted / precision, 1 / math.sqrt(precision))

    # -- lineage -----------------------------------------------------------------------
    def lineage(self, agent: str) -> list[str]:
        """``agent`` and all its ancestors (both parents of a crossover)."""
        seen: list[str] = []
        todo = [agent]
        while todo:
            a = todo.pop()
            if a in seen:
                continue
            seen.append(a)
            todo.extend(self.parents.get(a, ()))
        return seen

    def lineage_effects(self, *agents: str) -> dict[str, str]:
        """Effect -> the ancestor that made it, for every edit the lineage of ``agents`` has."""
        line = {a for agent in agents for a in self.lineage(agent)}
        return {t.tag.effect: t.agent for t in self.trials if t.agent in line and t.kept}

    def repeats(self) -> tuple[Repeat, ...]:
        """Every edit an offspring made whose effect its lineage already had.

        The audit of the rule the policy follows (``policy`` rule 2), read back from
        the records alone: an edit made while exploring (``explore`` in its record)
        is listed too, with ``explore`` set, so a caller can tell a deliberate
        repeat from a broken rule.
        """
        out: list[Repeat] = []
        for t in self.trials:
            if not t.kept:
                continue
            has = self.lineage_effects(*self.parents.get(t.agent, ()))
            if t.tag.effect in has:
                out.append(Repeat(t.agent, t.tag.effect, has[t.tag.effect], t.explore))
        return tuple(out)

    def hurt_under(self, parent: str) -> dict[str, float]:
        """Effect -> measured change, for edits that failed or hurt as children of ``parent``."""
        return {
            t.tag.effect: t.delta
            for t in self.trials
            if t.parent == parent and t.delta is not None and t.delta < 0
        }


def _best_losses(generations: Iterable[Mapping[str, Any]]) -> tuple[tuple[int, float], ...]:
    out: list[tuple[int, float]] = []
    best = math.inf
    for summary in generations:
        losses = [
            float(row["metrics"]["val_loss"])
            for row in summary.get("ranking", [])
            if row.get("metrics") and row["metrics"].get("val_loss") is not None
        ]
        if losses:
            best = min(best, min(losses))
        if math.isfinite(best):
            out.append((int(summary["generation"]), best))
    return tuple(out)


def run_noise(
    generations: Iterable[Mapping[str, Any]],
    perplexity_weight: float = 1.0,
    mfu_weight: float = 0.0,
) -> float | None:
    """The sd of one fitness change (one child run against one parent run), from the baseline.

    The latest summary's baseline gives each metric's spread over the seed's
    repeats; a fitness change is the difference of two runs, so its variance
    is twice one run's. None when no baseline has a spread (one run, or none).
    """
    for summary in reversed(list(generations)):
        base = summary.get("baseline")
        if not base or int(base.get("n", 0)) < 2:
            continue
        mean, std = base["mean"], base["std"]
        var = 0.0
        for name, weight in (("perplexity", perplexity_weight), ("mfu", mfu_weight)):
            m, sd = mean.get(name), std.get(name)
            if weight and m and sd is not None and math.isfinite(m) and math.isfinite(sd):
                var += (weight * sd / abs(m)) ** 2
        return math.sqrt(2 * var)
    return None


def _trial(rec: Mapping[str, Any], selected: int | None) -> Trial | None:
    got = _tag(rec)
    if got is None or rec.get("outcome") in (Outcome.REJECTED, Outcome.DUPLICATE):
        return None
    delta = rec.get("fitness_delta")
    done = selected is not None and rec["generation"] <= selected
    if rec.get("outcome") in _FAILED_OUTCOMES or (delta is None and done):
        delta = FAILED_DELTA
    parents = rec.get("parents") or [""]
    kept = rec.get("outcome") in (Outcome.APPLIED, Outcome.REPAIRED)
    return Trial(rec["agent"], rec["generation"], parents[0], got[0], delta, got[1], kept)


def from_memory(memory: MemoryReader, weights: tuple[float, float] = (1.0, 0.0)) -> Evidence:
    """The evidence in ``memory`` (see the module docstring for what is read).

    ``weights``: ``fitness.perplexity_weight`` and ``fitness.mfu_weight``, to
    turn the baseline's spread into the noise of a fitness change.
    """
    selected = memory.last_generation()
    trials: list[Trial] = []
    parents: dict[str, tuple[str, ...]] = {}
    changes: dict[str, str] = {}
    for rec in memory.mutations():
        parents.setdefault(rec["agent"], tuple(rec.get("parents") or ()))
        t = _trial(rec, selected)
        if t is not None:
            trials.append(t)
        edit = rec.get("edit")
        if (
            isinstance(edit, Mapping)
            and edit.get("change")
            and rec.get("outcome") != Outcome.DUPLICATE
        ):
            changes.setdefault(str(edit["change"]), rec["agent"])
    per_offspring = Counter((t.agent, t.generation) for t in trials)
    trials = [
        dataclasses.replace(t, companions=per_offspring[(t.agent, t.generation)] - 1)
        for t in trials
    ]
    requests = memory.requests()
    summaries = memory.generations()
    return Evidence(
        trials=tuple(trials),
        parents=parents,
        changes=changes,
        best_val_loss=_best_losses(summaries),
        declined=frozenset(r["key"] for r in requests if r.get("state") in _DECLINED),
        asked=frozenset(r["key"] for r in requests),
        measured_noise=run_noise(summaries, *weights),
    )


@dataclass(frozen=True)
class Audit:
    """What a finished search did against its own rules, counted from its records."""

    duplicate_draws: int  # offspring draws dropped as known changes before any training
    exploring_edits: int  # edits whose record says the mutator explored on purpose
    lineage_repeats: tuple[Repeat, ...]  # repeats of a lineage's effect, not exploring
    exploring_repeats: tuple[Repeat, ...]  # the same, made while exploring

    def as_json(self) -> dict[str, Any]:
        def listed(rs: tuple[Repeat, ...]) -> list[dict[str, str]]:
            return [{"agent": r.agent, "effect": r.effect, "ancestor": r.ancestor} for r in rs]

        return {
            "duplicates": self.duplicate_draws,
            "exploring_edits": self.exploring_edits,
            "lineage_repeats": listed(self.lineage_repeats),
            "exploring_repeats": listed(self.exploring_repeats),
        }


def audit_memory(memory: MemoryReader) -> Audit:
    """Duplicate draws, exploring edits and lineage repeats in ``memory``'s records."""
    records = memory.mutations()
    # a dropped draw's records are <agent>-d<draw><n>: one draw, however many chunks it changed
    draws = {
        (r["agent"], r["id"][len(r["agent"]) + 1 : -2])
        for r in records
        if r["outcome"] == Outcome.DUPLICATE
    }
    explore = sum(1 for r in records if (r.get("edit") or {}).get("explore"))
    repeats = from_memory(memory).repeats()
    return Audit(
        duplicate_draws=len(draws),
        exploring_edits=explore,
        lineage_repeats=tuple(r for r in repeats if not r.explore),
        exploring_repeats=tuple(r for r in repeats if r.explore),
    )


@dataclass(frozen=True)
class Guidance:
    """What the offline mutator is told about one offspring besides the prompt."""

    agent: str
    parent: str
    generation: int
    evidence: Evidence
    allowed_imports: tuple[str, ...] = ()
    max_file_lines: int = 800
    file_lines: Mapping[str, int] = field(default_factory=dict)
    use_memory: bool = True  # False: the memory is withheld (the ablation's control arm)
    other_parents: tuple[str, ...] = ()  # a crossover's second parent: its lineage counts too


def evidence_digest(evidence: Evidence, max_chars: int) -> str:
    """Credit per arm for an LLM: kind, effect, count and agent ids, best first, within ``max_chars``."""
    arms = sorted({t.tag.arm for t in evidence.trials})
    credits = [c for c in (evidence.credit(a) for a in arms) if c.n]
    credits.sort(key=lambda c: -c.mean)
    header = "Measured effect per kind of edit (fitness vs parent, + is better):"
    return fit_lines(header, [f"- {c.line()}" for c in credits], max_chars)
