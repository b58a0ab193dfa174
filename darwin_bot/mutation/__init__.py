"""Chunking, prompts, reply parsing, validation and the mutate/repair pipeline."""

from typing import TYPE_CHECKING

from darwin_bot import lazy_surface

if TYPE_CHECKING:
    from darwin_bot.mutation.chunks import Chunk, chunk_source
    from darwin_bot.mutation.crossover import recombine
    from darwin_bot.mutation.events import (
        Attempt,
        ChunkChange,
        MutationContext,
        MutationEvent,
        MutationOutcome,
    )
    from darwin_bot.mutation.pipeline import mutate_tree, repair_tree
    from darwin_bot.mutation.replies import parse_reply
    from darwin_bot.mutation.testing import ForkSmoke, write_tiny_data
    from darwin_bot.mutation.validate import validate_files


# The package's surface: code outside the package imports these names from here, never
# from a module of the package (tests/test_house.py holds the rule and the listing in
# tests/surface.txt). Each name is imported from its module on first use (PEP 562), so
# importing one module of the package (a sandbox worker) does not import the rest.
__all__ = [
    "Attempt",
    "Chunk",
    "ChunkChange",
    "ForkSmoke",
    "MutationContext",
    "MutationEvent",
    "MutationOutcome",
    "chunk_source",
    "mutate_tree",
    "parse_reply",
    "recombine",
    "repair_tree",
    "validate_files",
    "write_tiny_data",
]
_HOMES = {
    "Attempt": ".events",
    "Chunk": ".chunks",
    "ChunkChange": ".events",
    "ForkSmoke": ".testing",
    "MutationContext": ".events",
    "MutationEvent": ".events",
    "MutationOutcome": ".events",
    "chunk_source": ".chunks",
    "mutate_tree": ".pipeline",
    "parse_reply": ".replies",
    "recombine": ".crossover",
    "repair_tree": ".pipeline",
    "validate_files": ".validate",
    "write_tiny_data": ".testing",
}


__getattr__ = lazy_surface(__name__, _HOMES, globals())
