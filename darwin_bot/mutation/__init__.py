"""Chunking, prompts, reply parsing, validation and the mutate/repair pipeline."""

from darwin_bot.mutation.chunks import Chunk, chunk_source
from darwin_bot.mutation.events import (
    Attempt,
    ChunkChange,
    MutationContext,
    MutationEvent,
    MutationOutcome,
)
from darwin_bot.mutation.pipeline import mutate_tree, repair_tree

__all__ = [
    "Attempt",
    "Chunk",
    "ChunkChange",
    "MutationContext",
    "MutationEvent",
    "MutationOutcome",
    "chunk_source",
    "mutate_tree",
    "repair_tree",
]
