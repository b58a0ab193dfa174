"""The JSON memory of an evolution, and its digest for prompts.

Layout under the memory root (``memory/`` by default), one file per record::

    g001/summary.json                one per generation
    g001/mutations/<id>.json         one per mutation event, id = <agent>-<n> (engine/offspring.py)
    requests/<key>.json              one per human request, key = HumanRequest.key

Other files under the root are not records and are left alone (the engine
keeps its plans and evaluation cache there).
A file's name comes from its record's id, so re-running a step rewrites the
same file (idempotent) and parallel writers never share a file. Writes are
atomic (temporary file + ``os.replace``) and skipped when the content is
unchanged. Every record is checked against its JSON Schema (``memory/schemas/``,
via :mod:`darwin_bot.store.schema`) on write and on read: a missing or mistyped field
raises ``StateError`` naming the file and the field. Unknown keys and unknown
values (an outcome, a state) are errors too, so a typo cannot silently drop data.

Floats are stored as strict JSON: a non-finite number (a failed candidate's
``-inf`` fitness, say) is written as ``null``.

A mutation record's ``outcome`` is a :class:`~darwin_bot.core.agent.Outcome`.
The digest treats ``pending`` as "not known yet" and any other outcome without
``metrics_after`` as a failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from darwin_bot.core import Metrics, Outcome
from darwin_bot.errors import BrokenState
from darwin_bot.store import schema
from darwin_bot.store.jsonio import write_json

CHARS_PER_TOKEN = 4
PENDING_OUTCOMES: frozenset[str] = frozenset({Outcome.PENDING})

_GEN_DIR = re.compile(r"^g(\d{3,})$")


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with seconds, for the ``timestamp`` fields."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- schema


def validate_mutation(record: Any, what: str = "mutation record") -> dict[str, Any]:
    """The record with defaults filled in; ``StateError`` naming the first bad field."""
    return schema.validate("mutation", record, what)


def validate_generation(record: Any, what: str = "generation summary") -> dict[str, Any]:
    return schema.validate("generation", record, what)


def validate_request(record: Any, what: str = "request record") -> dict[str, Any]:
    return schema.validate("request", record, what)


def _metrics_dict(metrics: Metrics | Mapping[str, float] | None) -> dict[str, float] | None:
    if metrics is None:
        return None
    if isinstance(metrics, Metrics):
        return metrics.to_dict()
    return dict(metrics)


def _natural(text: str) -> list[Any]:
    """Sort key that orders 'a-2' before 'a-10'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


# ---------------------------------------------------------------- the store


class MemoryStore:
    """Read and write the memory records under ``root``; see the module docstring."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # paths ---------------------------------------------------------

    def _gen_dir(self, generation: int) -> Path:
        return self.root / f"g{generation:03d}"

    def mutation_path(self, generation: int, record_id: str) -> Path:
        return self._gen_dir(generation) / "mutations" / f"{record_id}.json"

    def generation_path(self, generation: int) -> Path:
        return self._gen_dir(generation) / "summary.json"

    def request_path(self, key: str) -> Path:
        return self.root / "requests" / f"{key}.json"

    # writing -------------------------------------------------------

    def _write(self, path: Path, record: dict[str, Any]) -> Path:
        return write_json(path, record, allow_nan=False)

    def write_mutation(self, rec: Mapping[str, Any]) -> Path:
        """Validate and write one mutation event to ``g<gen>/mutations/<id>.json``."""
        record = validate_mutation(dict(rec))
        return self._write(self.mutation_path(record["generation"], record["id"]), record)

    def write_generation(self, rec: Mapping[str, Any]) -> Path:
        """Validate and write one generation summary to ``g<gen>/summary.json``."""
        record = validate_generation(dict(rec))
        return self._write(self.generation_path(record["generation"]), record)

    def write_request(self, rec: Mapping[str, Any]) -> Path:
        """Validate and write one human request to ``requests/<key>.json``."""
        record = validate_request(dict(rec))
        return self._write(self.request_path(record["key"]), record)

    def update_generation_metrics(
        self,
        generation: int,
        updates: Mapping[str, tuple[Metrics | Mapping[str, float] | None, float | None]],
    ) -> list[Path]:
        """Record each agent's evaluation on every mutation record it has in ``generation``.

        ``updates``: agent -> (metrics after, fitness delta); the records are read
        once. Returns the paths rewritten (none for an agent without records there).
        """
        paths = []
        for record in self.mutations(generation):
            if record["agent"] not in updates:
                continue
            metrics_after, fitness_delta = updates[record["agent"]]
            record["metrics_after"] = _metrics_dict(metrics_after)
            record["fitness_delta"] = fitness_delta
            paths.append(self.write_mutation(record))
        return paths

    # reading -------------------------------------------------------

    def _scan(self) -> Iterator[tuple[str, Path, int | None]]:
        """Every record file as (type, path, generation), in path order.

        Only the record locations are read (``gNNN/summary.json``,
        ``gNNN/mutations/``, ``requests/``); other files under the root belong
        to whoever wrote them (the engine keeps plans and an evaluation cache
        there). Inside a record folder, anything but a ``*.json`` record file
        is an error, so a stray or misnamed record is never silently skipped.
        """
        if not self.root.exists():
            return
        if not self.root.is_dir():
            raise BrokenState(
                f"memory path {self.root} is not a folder; move it or set memory.path"
            )
        folders: list[tuple[str, Path, int | None]] = [("request", self.root / "requests", None)]
        for child in sorted(self.root.iterdir()):
            gen = _GEN_DIR.match(child.name)
            if gen and child.is_dir():
                number = int(gen.group(1))
                summary = child / "summary.json"
                if summary.exists():
                    yield "generation", summary, number
                folders.append(("mutation", child / "mutations", number))
        for kind, folder, number in folders:
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if path.name.startswith("."):
                    continue  # a temporary file of an interrupted write
                if path.suffix != ".json" or not path.is_file():
                    raise BrokenState(
                        f"{path}: unexpected entry in the memory record folder {folder}; "
                        "records are <id>.json files: move it out of the memory folder"
                    )
                yield kind, path, number

    def _load(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BrokenState(
                f"{path}: not a readable JSON record ({exc}); restore it from git "
                "(git checkout -- <file>) or delete it and rerun the step"
            ) from exc

    def mutations(self, generation: int | None = None) -> list[dict[str, Any]]:
        """Mutation records, sorted by generation, then id; only ``generation``'s when given."""
        out = []
        for kind, path, gen in self._scan():
            if kind != "mutation" or (generation is not None and gen != generation):
                continue
            record = validate_mutation(self._load(path), what=str(path))
            if record["id"] != path.stem or record["generation"] != gen:
                raise BrokenState(
                    f"{path}: record id {record['id']!r} / generation {record['generation']} "
                    "does not match its file name; restore it from git or delete it"
                )
            out.append(record)
        return sorted(out, key=lambda r: (r["generation"], _natural(r["id"])))

    def generations(self) -> list[dict[str, Any]]:
        """Generation summaries, oldest first."""
        out = []
        for kind, path, gen in self._scan():
            if kind != "generation":
                continue
            record = validate_generation(self._load(path), what=str(path))
            if record["generation"] != gen:
                raise BrokenState(
                    f"{path}: holds generation {record['generation']}, not {gen}; "
                    "restore it from git or delete it"
                )
            out.append(record)
        return sorted(out, key=lambda r: r["generation"])

    def requests(self) -> list[dict[str, Any]]:
        """Human request records, sorted by key."""
        out = []
        for kind, path, _ in self._scan():
            if kind != "request":
                continue
            record = validate_request(self._load(path), what=str(path))
            if record["key"] != path.stem:
                raise BrokenState(
                    f"{path}: request key {record['key']!r} does not match its file name; "
                    "restore it from git or delete it"
                )
            out.append(record)
        return sorted(out, key=lambda r: r["key"])

    def record_files(self) -> list[Path]:
        """Every record file, each read and validated first (a broken one is a StateError)."""
        self.generations()
        self.mutations()
        self.requests()
        return [path for _, path, _ in self._scan()]

    def last_generation(self) -> int | None:
        """The newest generation with a summary (a generation without one is incomplete)."""
        gens = [gen for kind, _, gen in self._scan() if kind == "generation"]
        return max(gens) if gens else None  # type: ignore[type-var]

    # the digest ----------------------------------------------------

    def digest(self, max_tokens: int, *, max_chars: int | None = None) -> str:
        """What helped and what hurt, for prompts, at most ``max_tokens * 4`` characters.

        One line per (generation, agent): evaluated mutations first, by the size
        of their fitness change (the most informative first), then failures,
        newest first. Pending ones are left out. Empty string when there is
        nothing to say or no room. ``max_chars``: the room in characters instead.
        """
        budget = max(0, max_tokens) * CHARS_PER_TOKEN if max_chars is None else max_chars
        header = "Past mutations (fitness change vs parent, + is better), most informative first:"
        return fit_lines(header, _digest_lines(self.mutations()), budget, more=True)


def fit_lines(header: str, lines: Sequence[str], max_chars: int, *, more: bool = False) -> str:
    """``header`` and the first of ``lines`` that fit in ``max_chars`` ('' when none fits).

    The one budget rule of every digest the prompts get. ``more``: end with a
    line counting the lines left out, where it fits.
    """
    text, shown = header, 0
    for line in lines:
        if len(text) + 1 + len(line) > max_chars:
            break
        text += "\n" + line
        shown += 1
    if not shown:
        return ""
    left = f"- ... {len(lines) - shown} more not shown"
    if more and shown < len(lines) and len(text) + 1 + len(left) <= max_chars:
        text += "\n" + left
    return text


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _digest_lines(records: list[dict[str, Any]]) -> list[str]:
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault((rec["generation"], rec["agent"]), []).append(rec)
    scored: list[tuple[float, int, str, str]] = []
    failed: list[tuple[int, str, str]] = []
    for (gen, agent), recs in groups.items():
        summaries = list(dict.fromkeys(r["summary"] for r in recs if r["summary"]))
        files = list(dict.fromkeys(r["file"] for r in recs if r["file"]))
        what = _clip("; ".join(summaries) or "(no summary)", 240)
        where = f"g{gen} {agent} [{recs[-1]['kind']}{': ' + ', '.join(files) if files else ''}]"
        delta = next((r["fitness_delta"] for r in recs if r["fitness_delta"] is not None), None)
        outcome = recs[-1]["outcome"]
        if delta is not None:
            verdict = "helped" if delta > 0 else "hurt" if delta < 0 else "no change"
            ppl = _ppl_change(recs)
            scored.append(
                (abs(delta), gen, agent, f"- {delta:+.4f} {verdict}: {where} {what}{ppl}")
            )
        elif outcome not in PENDING_OUTCOMES and all(r["metrics_after"] is None for r in recs):
            reason = next((r["reason"] for r in reversed(recs) if r["reason"]), "")
            why = f" ({_clip(reason, 160)})" if reason else ""
            failed.append((gen, agent, f"- failed [{outcome}]: {where} {what}{why}"))
    scored.sort(key=lambda e: (-e[0], -e[1], _natural(e[2])))
    failed.sort(key=lambda e: (-e[0], _natural(e[1])))
    return [e[3] for e in scored] + [e[2] for e in failed]


def _ppl_change(recs: list[dict[str, Any]]) -> str:
    for rec in recs:
        before, after = rec["metrics_before"] or {}, rec["metrics_after"] or {}
        b, a = before.get("perplexity"), after.get("perplexity")
        if b is not None and a is not None:
            return f" (perplexity {b:.3f} -> {a:.3f})"
    return ""
