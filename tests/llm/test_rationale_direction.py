"""The offline mutator's rationale argues for the direction its edit actually moves."""

from __future__ import annotations

import random

import pytest

from darwin_bot.llm.offline.hparams import HPARAMS, hparam_edits, loosening

# Words that say which way a rationale argues; each text must use one side only.
UP = ("higher", "longer", "more ", "larger", "wider", "looser")
DOWN = ("lower", "shorter", "less ", "smaller", "narrower", "fewer", "tighter")

# A block the seed's config could hold: each name with a value every rule can move both ways.
VALUES = {
    "learning_rate": 1e-3,
    "warmup_iters": 20,
    "weight_decay": 0.05,
    "beta1": 0.85,
    "beta2": 0.98,
    "dropout": 0.05,
    "batch_size": 16,
    "n_embd": 128,
    "n_head": 4,
    "n_layer": 3,
    "grad_clip": 1.0,
    "min_lr": 10.0,
}


def _side(text: str) -> str:
    """The direction of the rationale's subject: its first direction word."""
    low = text.lower()
    hits = [(low.find(w), side) for side, words in (("up", UP), ("down", DOWN)) for w in words]
    found = sorted((at, side) for at, side in hits if at >= 0)
    assert found, f"rationale does not say a direction: {text!r}"
    return found[0][1]


@pytest.mark.parametrize("name", sorted(HPARAMS))
def test_each_direction_has_its_own_text(name: str) -> None:
    why = HPARAMS[name][1]
    assert _side(why.up) == "up" and _side(why.down) == "down"


@pytest.mark.parametrize("name", sorted(HPARAMS))
def test_every_edit_explains_the_way_it_moves(name: str) -> None:
    assert set(VALUES) == set(HPARAMS)  # a new rule needs a value here
    block = "\n".join(f"{k} = {v!r}" for k, v in VALUES.items()) + "\n"
    seen = set()
    for seed in range(40):
        for edit in hparam_edits(block, random.Random(seed)):
            if edit.tag.kind != f"hparam:{name}":
                continue
            old = float(VALUES[name])
            new = float(edit.tag.value)
            assert edit.rationale.rstrip(".") == HPARAMS[name][1].of(loosening(name, old, new))
            seen.add(_side(edit.rationale))
    assert seen == {"up", "down"}, f"{name}: only {seen} drawn in 40 seeds"


def test_narrowing_the_residual_stream_does_not_claim_more_capacity() -> None:
    block = "n_head = 4\nn_embd = 128\n"
    narrowed = [
        e
        for s in range(40)
        for e in hparam_edits(block, random.Random(s))
        if e.tag.kind == "hparam:n_embd" and float(e.tag.value) < 128
    ]
    assert narrowed and all("96" in e.summary for e in narrowed)
    assert all("wider" not in e.rationale and "narrower" in e.rationale for e in narrowed)


def test_a_clip_of_zero_is_the_loosest() -> None:
    assert loosening("grad_clip", 1.0, 0.0) == "up"
    assert loosening("grad_clip", 0.0, 0.5) == "down"
    assert loosening("grad_clip", 1.0, 2.0) == "up"
