"""The JSON Schemas under memory/schemas: valid, and in step with the enums the code uses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from darwin_bot.core import Outcome, RequestStatus
from darwin_bot.core.results import STATUSES
from darwin_bot.errors import BrokenState
from darwin_bot.store import JournalState, schema


@pytest.mark.parametrize("kind", schema.KINDS)
def test_every_schema_file_is_a_valid_draft_2020_12_schema(kind: str) -> None:
    path = schema.schema_dir() / f"{kind}.schema.json"
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text("utf-8")))


def test_the_enums_in_the_schemas_are_the_code_enums() -> None:
    gen = schema.schema("generation")
    assert gen["$defs"]["row"]["properties"]["status"]["enum"] == list(STATUSES)
    assert schema.schema("eval")["properties"]["status"]["enum"] == list(STATUSES)
    outcomes = schema.schema("mutation")["properties"]["outcome"]["enum"]
    assert outcomes == [o.value for o in Outcome]
    states = schema.schema("request")["properties"]["state"]["enum"]
    assert states == [s.value for s in RequestStatus]
    journal = schema.schema("selection")["properties"]["state"]["enum"]
    assert journal == [s.value for s in JournalState]


def test_an_unknown_status_in_a_row_names_the_field() -> None:
    summary = {
        "generation": 1,
        "ranking": [{"agent": "a", "fitness": None, "status": "great"}],
        "survivors": [],
        "culled": [],
    }
    with pytest.raises(BrokenState, match=r"x.json: ranking\[0\]: field 'status'"):
        schema.validate("generation", summary, "x.json")


def test_defaults_are_filled_in_nested_rows() -> None:
    summary = {
        "generation": 1,
        "ranking": [{"agent": "a", "fitness": 0.1, "status": "ok"}],
        "survivors": ["a"],
        "culled": [],
    }
    out = schema.validate("generation", summary, "x")
    assert out["ranking"][0]["n_runs"] == 0 and out["champion"] is None


MEMORY = Path(__file__).resolve().parents[2] / "memory"  # the repository's top-level memory/
_KIND_OF = [  # path pattern under memory/ -> the schema of the file
    (r"(.*/)?g\d{3}/summary\.json", "generation"),
    (r"(.*/)?g\d{3}/mutations/[^/]+\.json", "mutation"),
    (r"(.*/)?requests/[^/]+\.json", "request"),
    (r"(.*/)?g\d{3}/plan\.json", "plan"),
    (r"(.*/)?g\d{3}/offspring/[^/]+\.json", "offspring"),
    (r"(.*/)?g\d{3}/selection\.json", "selection"),
    (r"(.*/)?evals/[0-9a-f]{40}/[^/]+\.json", "eval"),
    (r"(.*/)?run\.json", "run"),
]


def _kind(rel: str) -> str | None:
    import re

    return next((k for pattern, k in _KIND_OF if re.fullmatch(pattern, rel)), None)


def _records() -> list[str]:
    return sorted(
        str(p.relative_to(MEMORY))
        for p in MEMORY.rglob("*.json")
        if p.relative_to(MEMORY).parts[0] != "schemas"
    )


def test_the_reference_run_is_in_memory() -> None:
    kinds = {_kind(rel) for rel in _records()}
    assert {"generation", "mutation", "request", "plan", "offspring", "eval"} <= kinds


@pytest.mark.parametrize("rel", _records())
def test_every_record_under_memory_validates_against_its_schema(rel: str) -> None:
    kind = _kind(rel)
    assert kind is not None, f"memory/{rel} has no schema: every JSON file here must have one"
    from referencing import Registry, Resource

    data = json.loads((MEMORY / rel).read_text("utf-8"))
    registry: Registry = Registry().with_resources(
        (f"{k}.schema.json", Resource.from_contents(schema.schema(k))) for k in schema.KINDS
    )
    jsonschema.Draft202012Validator(schema.schema(kind), registry=registry).validate(data)
    schema.validate(kind, data, rel)  # the code's own check agrees
