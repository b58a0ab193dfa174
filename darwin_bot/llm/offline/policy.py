"""Which known edit to make: Thompson sampling over the memory's credit, lineage-aware.

Why Thompson sampling and not UCB: the offspring of one generation are all
planned from the same memory. UCB is deterministic given the memory, so every
sibling would pick the same top arm (duplicate work); a Thompson draw is
random, so siblings spread over the arms in proportion to how likely each is
to be best. Every arm keeps a normal posterior with non-zero spread, so no
kind of edit is ever dropped, and an untried one is drawn from a prior centred
on "no change" that is as wide as a typical measured effect.

Rules, in order:

1. An edit whose ``needs`` are not allowed imports is never made; if it would
   have ranked first, the mutator says so (a dependency request).
2. An edit whose effect the lineage already has (a transform applied, a value
   set by an ancestor), or that hurt or failed as a child of the same parent,
   is excluded.
3. When no applicable option has been measured (and none is excluded), the
   choice is uniform, with the same random draw the withheld-memory arm makes:
   every draw would come from the one prior, so each option is as likely to be
   best, and the memory has nothing to add. Coupling the two arms this way
   (common random numbers) keeps the ablation's paired difference to what the
   memory changed. The Thompson ranking is still taken, after the choice, for
   rule 1's dependency request.
4. Among the rest, the highest Thompson draw wins, unless the memory has
   measured its arm and the draw says it would hurt (below 0, the change of
   leaving the chunk as it is): then the chunk is left alone, except with
   probability :data:`EXPLORE_RATE`, when it is made on purpose (rule 5's
   wording). An untried arm is always made: its draw is the prior's, not a
   measurement, and exploring it is how the memory learns.
5. When everything left is excluded, the best excluded edit is made with
   probability :data:`EXPLORE_RATE`, and its rationale says it is exploring on
   purpose (the reply's ``EDIT:`` line carries ``explore``, and so does the
   memory record); otherwise no change.

Without memory (``Guidance.use_memory`` False) the edit is drawn uniformly.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from darwin_bot.llm.evidence import Guidance
from darwin_bot.llm.offline.registry import Edit

EXPLORE_RATE = 0.25


@dataclass(frozen=True)
class Ranked:
    edit: Edit
    draw: float
    evidence: str  # the credit line the draw came from
    excluded: str  # why rule 2 excludes it ('' if it does not)


@dataclass(frozen=True)
class Choice:
    """The edit to make (None: none), why, and what was wanted but not allowed."""

    edit: Edit | None
    rationale: str
    explore: bool = False
    ranking: tuple[Ranked, ...] = ()
    blocked: Ranked | None = None  # ranked first but needs an import that is not allowed
    # the Thompson draw the chunk is worth (its best fresh option's; -inf: nothing to make):
    # ranking chunks by it picks each with the chance that it holds the tree's best edit
    score: float = -math.inf


def _allowed(edit: Edit, imports: tuple[str, ...]) -> bool:
    return all(n in imports for n in edit.needs)


def _excluded(edit: Edit, g: Guidance) -> str:
    has = g.evidence.lineage_effects(g.parent, *g.other_parents)
    if edit.tag.effect in has:
        return f"the lineage already has it ({has[edit.tag.effect]})"
    hurt = g.evidence.hurt_under(g.parent)
    if edit.tag.effect in hurt:
        return f"it hurt as a child of {g.parent} ({100 * hurt[edit.tag.effect]:+.1f} %)"
    return ""


def rank(options: list[Edit], g: Guidance, rng: random.Random) -> list[Ranked]:
    """Every option with its Thompson draw, best first."""
    out = []
    for e in options:
        credit = g.evidence.credit(e.tag.arm)
        out.append(Ranked(e, g.evidence.draw(e.tag.arm, rng), credit.line(), _excluded(e, g)))
    return sorted(out, key=lambda r: -r.draw)


def _untried(options: list[Edit], allowed: list[Edit], g: Guidance, rng: random.Random) -> Choice:
    """Rule 3: nothing here is measured, so the draw is the withheld arm's (then the ranking)."""
    e = rng.choice(allowed)  # first, so that both arms of the ablation draw the same edit
    ranking = rank(options, g, rng)
    blocked = ranking[0] if ranking[0].edit not in allowed else None
    why = (
        f"{e.rationale} Evidence: no applicable edit measured yet "
        f"({len(allowed)} untried, drawn uniformly: the prior is the same for each)."
    )
    best = max(r.draw for r in ranking if r.edit in allowed)
    return Choice(e, why, False, tuple(ranking), blocked, best)


def choose(options: list[Edit], g: Guidance | None, rng: random.Random) -> Choice:
    """Pick one of ``options`` (see the module docstring)."""
    imports = g.allowed_imports if g is not None else ()
    allowed = [e for e in options if _allowed(e, imports)]
    if g is None or not g.use_memory:
        if not allowed:
            return Choice(None, "no known edit applies")
        e = rng.choice(allowed)
        return Choice(e, e.rationale)
    if not options:
        return Choice(None, "no known edit applies")
    if allowed and not any(g.evidence.credit(e.tag.arm).n or _excluded(e, g) for e in allowed):
        return _untried(options, allowed, g, rng)
    ranking = rank(options, g, rng)
    blocked = ranking[0] if ranking and not _allowed(ranking[0].edit, imports) else None
    usable = [r for r in ranking if _allowed(r.edit, imports)]
    fresh = [r for r in usable if not r.excluded]
    if fresh:
        r = fresh[0]
        draw = f"Thompson draw {100 * r.draw:+.2f} % (best of {len(usable)})"
        if r.draw >= 0 or not g.evidence.credit(r.edit.tag.arm).n:
            why = f"{r.edit.rationale} Evidence: {r.evidence}; {draw}."
            return Choice(r.edit, why, False, tuple(ranking), blocked, r.draw)
        if rng.random() < EXPLORE_RATE:
            why = (
                f"{r.edit.rationale} Exploring on purpose: the memory expects it to hurt "
                f"({r.evidence}; {draw}), and this tests that again."
            )
            return Choice(r.edit, why, True, tuple(ranking), blocked, r.draw)
        why = f"left alone: the best edit here, {r.edit.tag.kind}, is expected to hurt ({r.evidence}; {draw})"
        return Choice(None, why, False, tuple(ranking), blocked)
    if usable and rng.random() < EXPLORE_RATE:
        r = usable[0]
        why = (
            f"{r.edit.rationale} Exploring on purpose: every applicable edit is excluded "
            f"and this one drew best, although {r.excluded}. Evidence: {r.evidence}."
        )
        return Choice(r.edit, why, True, tuple(ranking), blocked, r.draw)
    if not usable:
        needs = "; ".join(f"{r.edit.tag.kind} needs {', '.join(r.edit.needs)}" for r in ranking)
        why = f"every applicable edit needs an import that is not allowed ({needs})"
        return Choice(None, why, False, tuple(ranking), blocked)
    reasons = "; ".join(f"{r.edit.tag.effect}: {r.excluded}" for r in usable)
    return Choice(
        None, f"every applicable edit is excluded ({reasons})", False, tuple(ranking), blocked
    )
