"""The JSON memory of an evolution, and its digest for prompts.

Layout under the memory root (``memory/`` by default), one file per record::

    g001/summary.json                one per generation
    g001/mutations/<id>.json         one per mutation event, id = mutation_id(agent, n)
    requests/<key>.json              one per human request, key = HumanRequest.key

Other files under the root are not records and are left alone (the engine
keeps its plans and evaluation cache there).
A file's name comes from its record's id, so re-running a step rewrites the
same file (idempotent) and parallel writers never share a file. Writes are
atomic (temporary file + ``os.replace``) and skipped when the content is
unchanged. Every record is checked against a hand-written schema on write and
on read: a missing or mistyped field raises ``StateError`` naming the field.
Unknown keys are errors too, so a typo cannot silently drop data.

Floats are stored as strict JSON: a non-finite number (a failed candidate's
``-inf`` fitness, say) is written as ``null``.

Suggested ``outcome`` words for mutation records: ``pending`` (committed, not
yet evaluated), ``evaluated``, ``survived``, ``culled``, ``rejected``
(validation failed), ``smoke_failed``, ``failed``, ``timeout``. The digest
treats ``pending`` as "not known yet" and any other outcome without
``metrics_after`` as a failure.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, get_args

from darwin_bot.core.agent import REQUEST_KINDS, MutationKind
from darwin_bot.core.results import Metrics
from darwin_bot.errors import StateError
from darwin_bot.jsonio import write_json

CHARS_PER_TOKEN = 4
MUTATION_KINDS: tuple[str, ...] = get_args(MutationKind)
PENDING_OUTCOMES: frozenset[str] = frozenset({"pending"})

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_GEN_DIR = re.compile(r"^g(\d{3,})$")


def mutation_id(agent: str, n: int) -> str:
    """Id of the ``n``-th mutation event (1-based) of ``agent``: ``<agent>-<n>``."""
    return f"{agent}-{n}"


def utc_now() -> str:
    """An ISO-8601 UTC timestamp with seconds, for the ``timestamp`` fields."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- schema

_REQUIRED = object()


@dataclass(frozen=True)
class _Field:
    check: Callable[[Any], bool]
    expect: str
    default: Any = _REQUIRED


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_id(v: Any) -> bool:
    return isinstance(v, str) and bool(_ID.match(v))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_count(v: Any) -> bool:
    return _is_int(v) and v >= 0


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _opt(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _list_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _dict_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: (
        isinstance(v, dict) and all(isinstance(k, str) and check(x) for k, x in v.items())
    )


def _one_of(options: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: v in options


_metrics = _opt(_dict_of(_opt(_is_num)))

MUTATION_SCHEMA: dict[str, _Field] = {
    "id": _Field(_is_id, "an id of letters, digits, '.', '_' or '-'"),
    "timestamp": _Field(_is_str, "an ISO-8601 string"),
    "agent": _Field(_is_id, "an agent id"),
    "generation": _Field(_is_count, "an integer >= 0"),
    "parents": _Field(_list_of(_is_str), "a list of agent ids"),
    "kind": _Field(_one_of(MUTATION_KINDS), f"one of {', '.join(MUTATION_KINDS)}"),
    "outcome": _Field(lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "summary": _Field(_is_str, "a string"),
    "file": _Field(_is_str, "a path string", ""),
    "chunk": _Field(_opt(lambda v: _is_int(v) or _is_str(v)), "a chunk index, label or null", None),
    "model": _Field(_is_str, "a string", ""),
    "prompt_tokens": _Field(_is_count, "an integer >= 0", 0),
    "completion_tokens": _Field(_is_count, "an integer >= 0", 0),
    "cost_usd": _Field(_is_num, "a number", 0.0),
    "commit": _Field(_is_str, "a commit sha or ''", ""),
    "reason": _Field(_is_str, "a string", ""),
    "metrics_before": _Field(_metrics, "a table of metric -> number, or null", None),
    "metrics_after": _Field(_metrics, "a table of metric -> number, or null", None),
    "fitness_delta": _Field(_opt(_is_num), "a number or null", None),
    # the edit's tag, whether it explored on purpose, the offspring's change signature
    "edit": _Field(
        _opt(
            lambda v: (
                isinstance(v, dict)
                and set(v) <= {"tag", "explore", "change"}
                and _is_str(v.get("tag", ""))
                and isinstance(v.get("explore", False), bool)
                and _is_str(v.get("change", ""))
            )
        ),
        "null or {tag: string, explore: bool, change: string}",
        None,
    ),
}

RANKING_SCHEMA: dict[str, _Field] = {
    "agent": _Field(_is_id, "an agent id"),
    "fitness": _Field(_opt(_is_num), "a number, or null for a failed agent"),
    "status": _Field(_is_str, "a status string"),
    "perplexity": _Field(_opt(_is_num), "a number or null", None),
    "mfu": _Field(_opt(_is_num), "a number or null", None),
    "p_value": _Field(_opt(_is_num), "a number or null", None),
    "parents": _Field(_list_of(_is_str), "a list of agent ids", []),
    "summary": _Field(_is_str, "a string", ""),
    "rank": _Field(_opt(_is_count), "a rank (1 is best) or null", None),
    "generation": _Field(_is_count, "the generation the agent was born in", 0),
    "metrics": _Field(_metrics, "a table of metric -> mean value, or null", None),
    "n_runs": _Field(_is_count, "an integer >= 0", 0),
    "reason": _Field(_is_str, "a string", ""),
}

BASELINE_SCHEMA: dict[str, _Field] = {
    "mean": _Field(_dict_of(_opt(_is_num)), "a table of metric -> mean value"),
    "std": _Field(_dict_of(_opt(_is_num)), "a table of metric -> standard deviation", {}),
    "n": _Field(_is_count, "the number of baseline runs", 0),
}

GATE_SCHEMA: dict[str, _Field] = {
    "p_value": _Field(_opt(_is_num), "a number or null"),
    "effect_size": _Field(_opt(_is_num), "a number or null"),
    "passed": _Field(lambda v: isinstance(v, bool), "true or false", False),
    "cohens_d": _Field(_opt(_is_num), "a number or null", None),
    "method": _Field(_is_str, "a string", ""),
    "n_candidate": _Field(_is_count, "an integer >= 0", 0),
    "n_baseline": _Field(_is_count, "an integer >= 0", 0),
    "reason": _Field(_is_str, "a string", ""),
    "agent": _Field(_is_str, "an agent id or ''", ""),
}

GENERATION_SCHEMA: dict[str, _Field] = {
    "generation": _Field(_is_count, "an integer >= 0"),
    "ranking": _Field(lambda v: isinstance(v, list), "a list of ranking entries"),
    "survivors": _Field(_list_of(_is_str), "a list of agent ids"),
    "culled": _Field(_list_of(_is_str), "a list of agent ids"),
    "champion": _Field(_opt(_is_str), "an agent id or null (the current champion)", None),
    "new_champion": _Field(_opt(_is_str), "an agent id or null (promoted this generation)", None),
    "leader": _Field(_opt(_is_str), "an agent id or null", None),
    "gate": _Field(lambda v: v is None or isinstance(v, dict), "a gate table or null", None),
    "baseline": _Field(
        lambda v: v is None or isinstance(v, dict), "a baseline table or null", None
    ),
    "timings": _Field(_dict_of(_is_num), "a table of step -> seconds", {}),
    "tokens": _Field(_dict_of(_is_count), "a table of name -> token count", {}),
    "cost_usd": _Field(_is_num, "a number", 0.0),
    "timestamp": _Field(_is_str, "an ISO-8601 string", ""),
}

REQUEST_SCHEMA: dict[str, _Field] = {
    "key": _Field(_is_id, "a request key"),
    "kind": _Field(_one_of(REQUEST_KINDS), f"one of {', '.join(REQUEST_KINDS)}"),
    "title": _Field(lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "agent": _Field(_is_str, "an agent id or ''"),
    "state": _Field(lambda v: isinstance(v, str) and bool(v), "a non-empty string"),
    "issue": _Field(_opt(lambda v: _is_int(v) or _is_str(v)), "an issue number, URL or null", None),
    "generation": _Field(_is_count, "an integer >= 0", 0),
    "rationale": _Field(_is_str, "a string", ""),
    "timestamp": _Field(_is_str, "an ISO-8601 string", ""),
}


def _finite_or_none(value: Any) -> Any:
    """Replace non-finite floats by None, recursively (strict JSON has no inf/NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _validate(what: str, record: Any, schema: Mapping[str, _Field]) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise StateError(f"{what}: expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(schema))
    if unknown:
        raise StateError(
            f"{what}: unknown field {unknown[0]!r}; allowed fields: {', '.join(schema)}"
        )
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        if name not in record:
            if spec.default is _REQUIRED:
                raise StateError(f"{what}: missing required field {name!r} ({spec.expect})")
            out[name] = json.loads(json.dumps(spec.default))  # a fresh copy of mutable defaults
            continue
        value = record[name]
        if not spec.check(value):
            raise StateError(f"{what}: field {name!r} must be {spec.expect}, got {value!r}")
        out[name] = value
    return out


def validate_mutation(record: Any, what: str = "mutation record") -> dict[str, Any]:
    """The record with defaults filled in; ``StateError`` naming the first bad field."""
    return _validate(what, _finite_or_none(record), MUTATION_SCHEMA)


def validate_generation(record: Any, what: str = "generation summary") -> dict[str, Any]:
    rec = _validate(what, _finite_or_none(record), GENERATION_SCHEMA)
    rec["ranking"] = [
        _validate(f"{what}: ranking[{i}]", entry, RANKING_SCHEMA)
        for i, entry in enumerate(rec["ranking"])
    ]
    if rec["gate"] is not None:
        rec["gate"] = _validate(f"{what}: gate", rec["gate"], GATE_SCHEMA)
    if rec["baseline"] is not None:
        rec["baseline"] = _validate(f"{what}: baseline", rec["baseline"], BASELINE_SCHEMA)
    return rec


def validate_request(record: Any, what: str = "request record") -> dict[str, Any]:
    return _validate(what, _finite_or_none(record), REQUEST_SCHEMA)


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

    def update_mutation_metrics(
        self,
        agent: str,
        generation: int,
        metrics_after: Metrics | Mapping[str, float] | None,
        fitness_delta: float | None,
    ) -> list[Path]:
        """Record the evaluation of ``agent`` on every mutation record it has in ``generation``.

        Returns the paths rewritten; an empty list when the agent has no records
        there (a survivor or the seed), which the caller may treat as it likes.
        """
        return self.update_generation_metrics(generation, {agent: (metrics_after, fitness_delta)})

    def update_generation_metrics(
        self,
        generation: int,
        updates: Mapping[str, tuple[Metrics | Mapping[str, float] | None, float | None]],
    ) -> list[Path]:
        """The same for many agents at once: the generation's records are read once."""
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
            raise StateError(f"memory path {self.root} is not a folder; move it or set memory.path")
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
                    raise StateError(
                        f"{path}: unexpected entry in the memory record folder {folder}; "
                        "records are <id>.json files: move it out of the memory folder"
                    )
                yield kind, path, number

    def _load(self, path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(
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
                raise StateError(
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
                raise StateError(
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
                raise StateError(
                    f"{path}: request key {record['key']!r} does not match its file name; "
                    "restore it from git or delete it"
                )
            out.append(record)
        return sorted(out, key=lambda r: r["key"])

    def last_generation(self) -> int | None:
        """The newest generation with a summary (a generation without one is incomplete)."""
        gens = [gen for kind, _, gen in self._scan() if kind == "generation"]
        return max(gens) if gens else None  # type: ignore[type-var]

    # the digest ----------------------------------------------------

    def digest(self, max_tokens: int) -> str:
        """What helped and what hurt, for prompts, at most ``max_tokens * 4`` characters.

        One line per (generation, agent): evaluated mutations first, by the size
        of their fitness change (the most informative first), then failures,
        newest first. Pending ones are left out. Empty string when there is
        nothing to say or no room.
        """
        budget = max(0, max_tokens) * CHARS_PER_TOKEN
        lines = _digest_lines(self.mutations())
        if not lines or budget <= 0:
            return ""
        header = "Past mutations (fitness change vs parent, + is better), most informative first:"
        text = header
        if len(text) > budget:
            return ""
        shown = 0
        for line in lines:
            if len(text) + 1 + len(line) > budget:
                break
            text += "\n" + line
            shown += 1
        if shown < len(lines):
            more = f"- ... {len(lines) - shown} more not shown"
            if len(text) + 1 + len(more) <= budget:
                text += "\n" + more
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
