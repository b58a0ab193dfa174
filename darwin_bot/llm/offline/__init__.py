"""The offline mutator (backend ``heuristic``): known edits chosen with the memory's evidence.

Modules, one job each:

* ``ast_tools``: source surgery on a chunk (parse, locate, splice, indent);
* ``registry``: :class:`EditTag`, :class:`Edit` and the transform registry;
* ``blocks``, ``training``: the code transforms, each registered once with its kind;
* ``hparams``: the hyperparameter rules;
* ``catalogue``: every known edit (:data:`KINDS` is built from the registry);
* ``evidence``: the memory as typed trials, credit and lineage (:class:`Guidance`);
* ``policy``: Thompson sampling over that credit, lineage-aware;
* ``requests``: requests to the humans for measured reasons;
* ``backend``: :class:`HeuristicLLM`, the ``LLM`` adapter.
"""

from darwin_bot.llm.evidence import EditTag, Evidence, Guidance, from_memory
from darwin_bot.llm.offline.ast_tools import imported_names
from darwin_bot.llm.offline.backend import HeuristicCall, HeuristicLLM
from darwin_bot.llm.offline.catalogue import KINDS, proposals
from darwin_bot.llm.offline.registry import Edit

__all__ = [
    "KINDS",
    "Edit",
    "EditTag",
    "Evidence",
    "Guidance",
    "HeuristicCall",
    "HeuristicLLM",
    "from_memory",
    "imported_names",
    "proposals",
]
