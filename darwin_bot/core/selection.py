"""Ranking, survivors, parent sampling and the offspring plan.

Pure functions. Every random choice comes from the ``random.Random`` passed
in, and every input is put in rank order first, so the same seed and the same
scores give the same plan whatever order the caller listed the agents in.

Rules:

* A failed candidate (``ok`` false or a non-finite fitness) ranks after every
  working one, and **never survives**: :func:`survivors` returns fewer than
  ``k`` rather than keep broken code, and an empty list when nothing works
  (the caller then keeps the previous survivors, or the seed).
* Only working candidates are ever sampled as parents.
* ``"tournament"``: draw ``tournament_size`` distinct candidates uniformly,
  the best-ranked one wins.
* ``"dgm"`` (Darwin Gödel Machine): weight = sigmoid-scaled score x
  1 / (1 + children), so strong parents are favoured but one that already has
  many children gives way to less explored ones. Within one plan each draw
  counts as a child, so the novelty term acts inside a generation too.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from darwin_bot.core.agent import MutationKind
from darwin_bot.core.fitness import rank_key
from darwin_bot.core.row import Row
from darwin_bot.errors import StateError

Method = Literal["tournament", "dgm"]
METHODS: tuple[str, ...] = ("tournament", "dgm")

# Sharpness of the DGM sigmoid over fitness normalised to the pool's range:
# the best gets sigmoid(+2) ~ 0.88, the worst sigmoid(-2) ~ 0.12 when the
# median sits midway, so weak parents keep a real chance.
DGM_SHARPNESS = 4.0


@dataclass(frozen=True)
class OffspringPlan:
    """One offspring to make: ``index`` is 0-based within the generation's offspring."""

    index: int
    kind: MutationKind  # mutate or crossover
    parents: tuple[str, ...]


def _key(r: Row) -> tuple[int, float, str]:
    return rank_key(r.fitness if r.ok else -math.inf, r.agent)


def rank(rows: Sequence[Row]) -> list[Row]:
    """Best first: fitness descending, failures last, ties broken by agent id."""
    agents = [r.agent for r in rows]
    if len(set(agents)) != len(agents):
        dupes = sorted({a for a in agents if agents.count(a) > 1})
        raise StateError(f"agent scored twice: {', '.join(dupes)}; each agent must be scored once")
    return sorted(rows, key=_key)


def survivors(ranked: Sequence[Row], k: int) -> list[Row]:
    """The top ``k`` working candidates (fewer if fewer work; none if none work)."""
    if k < 1:
        raise ValueError(f"the number of survivors must be at least 1, got {k}")
    return [r for r in rank(ranked) if r.ok][:k]


def _working(pool: Sequence[Row], need: int = 1) -> list[Row]:
    working = [r for r in rank(pool) if r.ok]
    if len(working) < need:
        raise StateError(
            f"need at least {need} working parent(s), the pool has {len(working)}; "
            "re-evaluate the survivors or restart from the seed"
        )
    return working


def _check_method(method: str, tournament_size: int) -> None:
    if method not in METHODS:
        raise ValueError(f"selection method must be one of {', '.join(METHODS)}, got {method!r}")
    if tournament_size < 1:
        raise ValueError(f"tournament_size must be at least 1, got {tournament_size}")


def dgm_weights(pool: Sequence[Row], children: Mapping[str, int] | None = None) -> list[float]:
    """DGM sampling weights of working, rank-ordered ``pool`` (same order).

    ``children``: how many children each agent has (absent: none).
    """
    children = children or {}
    fits = [r.fitness for r in pool]
    mid = statistics.median(fits)
    spread = max(fits) - min(fits)
    weights = []
    for r in pool:
        z = (r.fitness - mid) / spread if spread > 0 else 0.0
        score = 1.0 / (1.0 + math.exp(-DGM_SHARPNESS * z))
        weights.append(score / (1.0 + max(0, children.get(r.agent, 0))))
    return weights


def _draw_one(
    working: list[Row], children: Counter[str], rng: random.Random, method: str, size: int
) -> Row:
    if method == "tournament":
        contenders = rng.sample(range(len(working)), min(size, len(working)))
        return working[min(contenders)]  # working is rank-ordered: lowest index wins
    return rng.choices(working, weights=dgm_weights(working, children), k=1)[0]


def sample_parents(
    pool: Sequence[Row],
    n: int,
    rng: random.Random,
    method: Method = "tournament",
    tournament_size: int = 3,
    *,
    children: Mapping[str, int] | None = None,
) -> list[str]:
    """``n`` parent ids drawn with replacement from the working members of ``pool``.

    Each draw counts as a child of the parent drawn, for the draws after it.
    """
    _check_method(method, tournament_size)
    if n < 0:
        raise ValueError(f"cannot sample {n} parents")
    if n == 0:
        return []
    working, count = _working(pool), Counter(children or {})
    chosen: list[str] = []
    for _ in range(n):
        pick = _draw_one(working, count, rng, method, tournament_size)
        chosen.append(pick.agent)
        count[pick.agent] += 1
    return chosen


def _pair(
    working: list[Row], children: Counter[str], rng: random.Random, method: str, size: int
) -> tuple[str, str]:
    """Two distinct parents; each counts one more child in ``children``."""
    first = _draw_one(working, children, rng, method, size)
    rest = [r for r in working if r.agent != first.agent]
    second = _draw_one(rest, children, rng, method, size)
    children[first.agent] += 1
    children[second.agent] += 1
    return first.agent, second.agent


def pair_parents(
    pool: Sequence[Row],
    n_pairs: int,
    rng: random.Random,
    method: Method = "tournament",
    tournament_size: int = 3,
    *,
    children: Mapping[str, int] | None = None,
) -> list[tuple[str, str]]:
    """``n_pairs`` pairs of two distinct working parents (needs at least two working)."""
    _check_method(method, tournament_size)
    if n_pairs < 0:
        raise ValueError(f"cannot make {n_pairs} pairs")
    if n_pairs == 0:
        return []
    working, count = _working(pool, need=2), Counter(children or {})
    return [_pair(working, count, rng, method, tournament_size) for _ in range(n_pairs)]


def plan_offspring(
    pool: Sequence[Row],
    population: int,
    crossover_rate: float,
    rng: random.Random,
    method: Method = "tournament",
    tournament_size: int = 3,
    *,
    children: Mapping[str, int] | None = None,
) -> list[OffspringPlan]:
    """Fill the population: ``population - len(pool)`` offspring, each a mutation or a crossover.

    Each offspring is a crossover with probability ``crossover_rate`` when at
    least two parents work, else a mutation of one sampled parent. The draws
    happen in index order, so the plan is a pure function of the seed.
    ``children``: how many children each agent already has (the ``dgm`` method's
    novelty term; each draw of this plan adds one).
    """
    _check_method(method, tournament_size)
    if not 0.0 <= crossover_rate <= 1.0:
        raise ValueError(f"crossover_rate must be in [0, 1], got {crossover_rate}")
    count = population - len(pool)
    if count <= 0:
        return []
    working, born = _working(pool), Counter(children or {})
    plans = []
    for index in range(count):
        # The coin is tossed even when only one parent works, so the random stream
        # (and so every later draw) does not depend on how many parents work.
        crossover = rng.random() < crossover_rate and len(working) >= 2
        if crossover:
            pair = _pair(working, born, rng, method, tournament_size)
            plans.append(OffspringPlan(index, MutationKind.CROSSOVER, pair))
        else:
            pick = _draw_one(working, born, rng, method, tournament_size)
            born[pick.agent] += 1
            plans.append(OffspringPlan(index, MutationKind.MUTATE, (pick.agent,)))
    return plans
