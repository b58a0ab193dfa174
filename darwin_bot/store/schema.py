"""The JSON Schema of every record darwin writes under ``memory/``, and the one check against it.

The schema files are data, in the repository's top-level ``memory/schemas/``
(shipped inside the wheel as ``darwin_bot/_schemas``), one per record kind:
``mutation``, ``generation``, ``request`` (the memory), and ``plan``,
``offspring``, ``eval``, ``run``, ``selection`` (the engine's own state).
:func:`validate` checks a record with the ``jsonschema`` library, fills in
the defaults the schema declares, and turns the first error into one
``StateError`` line that names the file (``what``) and the field.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from darwin_bot.errors import BrokenState
from darwin_bot.paths import schema_source

KINDS: tuple[str, ...] = (
    "eval",
    "generation",
    "mutation",
    "offspring",
    "plan",
    "request",
    "run",
    "selection",
)


def schema_dir() -> Path:
    """Where the schema files are: inside the installed package, else the source checkout's."""
    return schema_source()


@functools.cache
def _schemas() -> dict[str, dict[str, Any]]:
    folder = schema_dir()
    return {k: json.loads((folder / f"{k}.schema.json").read_text("utf-8")) for k in KINDS}


@functools.cache
def _validator(kind: str) -> jsonschema.Draft202012Validator:
    schemas = _schemas()
    registry: Registry = Registry().with_resources(
        (f"{k}.schema.json", Resource.from_contents(s)) for k, s in schemas.items()
    )
    return jsonschema.Draft202012Validator(schemas[kind], registry=registry)


def schema(kind: str) -> dict[str, Any]:
    """The schema of one record kind (a copy: callers may not change the shared one)."""
    return copy.deepcopy(_schemas()[kind])


def finite_or_none(value: Any) -> Any:
    """Replace non-finite floats by None, recursively (strict JSON has no inf/NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def _fill(node: dict[str, Any], value: Any, root: dict[str, Any]) -> Any:
    """``value`` with every missing property that ``node`` gives a default for, recursively."""
    ref = node.get("$ref", "")
    if ref.startswith("#/$defs/"):
        node = root["$defs"][ref.rsplit("/", 1)[1]]
    if isinstance(value, dict) and "properties" in node:
        out = dict(value)
        for name, sub in node["properties"].items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            elif name in out:
                out[name] = _fill(sub, out[name], root)
        return out
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_fill(node["items"], v, root) for v in value]
    return value


def _path(path: list[Any]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _message(what: str, err: jsonschema.ValidationError) -> str:
    path = list(err.absolute_path)
    if err.validator in ("required", "additionalProperties") and "'" in err.message:
        prefix = f"{_path(path)}: " if path else ""
        name = err.message.split("'")[1]
        if err.validator == "required":
            return f"{what}: {prefix}missing required field {name!r}"
        allowed = ", ".join(err.schema.get("properties", {}))
        return f"{what}: {prefix}unknown field {name!r}; allowed fields: {allowed}"
    if not path:
        return f"{what}: expected a JSON {err.validator_value}, got {type(err.instance).__name__}"
    # Name the field after the last list index: ['ranking', 0, 'fitness'] -> ranking[0]: 'fitness'.
    cut = max((i for i, p in enumerate(path) if isinstance(p, int)), default=-1) + 1
    cut = min(cut, len(path) - 1)
    prefix = f"{_path(path[:cut])}: " if cut else ""
    return f"{what}: {prefix}field {path[cut]!r} is invalid: {err.message}"


def validate(kind: str, record: Any, what: str) -> dict[str, Any]:
    """``record`` checked against the ``kind`` schema, with its defaults filled in.

    Non-finite floats become null first. Raises ``StateError`` naming ``what``
    (a file, or the record's kind) and the first bad field.
    """
    value = finite_or_none(record)
    error = jsonschema.exceptions.best_match(_validator(kind).iter_errors(value))
    if error is not None:
        raise BrokenState(_message(what, error))
    return _fill(_schemas()[kind], value, _schemas()[kind])
