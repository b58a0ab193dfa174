"""A training program that crashes with a recognisable message."""


def step():
    raise RuntimeError("boom-4f1c: the optimizer exploded")


step()
