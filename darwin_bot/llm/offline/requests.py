"""Requests to the humans that the measured data calls for, offline.

Each reason has a fixed title (so the same reason is one issue, and a declined
one is never asked again: its key is in ``Evidence.declined``) and a body with
the measured numbers:

* ``dependency``: the edit the mutator ranked first needs an import outside
  the allowed list;
* ``data``: the best held-out loss has improved less than
  :data:`STALL_FRACTION` over the last :data:`STALL_GENERATIONS` generations;
* ``restructure``: an evolvable file is over :data:`FILE_FRACTION` of
  ``evolution.max_file_lines``.
"""

from __future__ import annotations

from darwin_bot.core import HumanRequest
from darwin_bot.llm.evidence import Guidance
from darwin_bot.llm.offline.policy import Ranked

STALL_GENERATIONS = 2
STALL_FRACTION = 0.005
FILE_FRACTION = 0.8

_OPTIMIZER_ARMS = ("hparam:learning_rate", "hparam:beta1", "hparam:beta2", "hparam:weight_decay")


def dependency(g: Guidance, chunk: str, blocked: Ranked, n_options: int) -> HumanRequest:
    module = blocked.edit.needs[0]
    tuned = [g.evidence.credit(f"{arm}:{d}") for arm in _OPTIMIZER_ARMS for d in ("up", "down")]
    tuned = [c for c in tuned if c.n]
    measured = "; ".join(c.line() for c in tuned) or "no optimizer hyperparameter edit measured yet"
    why = (
        f"The offline mutator ranked '{blocked.edit.tag.kind}' first of {n_options} edits for "
        f"{chunk} (Thompson draw {100 * blocked.draw:+.2f} %; {blocked.evidence}), but it needs "
        f"`import {module}`, which is not in llm.allowed_imports "
        f"({', '.join(g.allowed_imports) or 'none'}). {blocked.edit.rationale} "
        f"Measured so far: {measured}. Approve to allow the import (and install {module} where "
        "the evaluator runs); the next generations may then make this edit."
    )
    return HumanRequest("dependency", f"Add dependency: {module}", why, g.agent, g.generation)


def data(g: Guidance) -> HumanRequest | None:
    hist = g.evidence.best_val_loss
    if len(hist) <= STALL_GENERATIONS:
        return None
    (g0, before), (g1, now) = hist[-1 - STALL_GENERATIONS], hist[-1]
    gain = (before - now) / before if before > 0 else 0.0
    if gain >= STALL_FRACTION:
        return None
    why = (
        f"The best held-out loss went from {before:.4f} (generation {g0}) to {now:.4f} "
        f"(generation {g1}): {100 * gain:.2f} % in {g1 - g0} generations, under the "
        f"{100 * STALL_FRACTION:.1f} % that counts as progress. The models bred so far have "
        "stopped learning more from this corpus; a larger or cleaner corpus would show whether "
        "data is the limit. To approve: prepare the corpus in a folder of its own (train.bin, "
        "val.bin, meta.json: `darwin data prepare --input FILE --out DIR`), set budget.data to "
        "that folder, and approve. From the next generation the seed and the survivors are "
        "measured again on it, and nothing measured on the old corpus is compared with it."
    )
    return HumanRequest(
        "data", "More training data: the held-out loss has stalled", why, g.agent, g.generation
    )


def restructure(g: Guidance) -> HumanRequest | None:
    limit = g.max_file_lines
    big = sorted((n, f) for f, n in g.file_lines.items() if n > FILE_FRACTION * limit)
    if not big:
        return None
    n, f = big[-1]
    why = (
        f"{f} has {n} lines, {100 * n / limit:.0f} % of evolution.max_file_lines ({limit}); "
        "an edit that adds code will soon be rejected. Split it into modules (the evolvable "
        "paths stay the same) or raise the limit."
    )
    return HumanRequest(
        "restructure", f"Split {f}: near max_file_lines", why, g.agent, g.generation
    )


def wanted(requests: list[HumanRequest | None], g: Guidance, said: set[str]) -> list[HumanRequest]:
    """The requests worth making: not on the forge already (declined ones included), not said yet."""
    out = []
    for r in requests:
        if r is None or r.key in g.evidence.asked or r.key in g.evidence.declined or r.key in said:
            continue
        said.add(r.key)
        out.append(r)
    return out
