"""JSONL records with a schema: every error names the file, the line and the field."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class SourceError(ValueError):
    """A source file is malformed. The message reads ``FILE:LINE: field 'F': problem``."""


Check = Callable[[Any], str | None]  # returns a problem description, or None if fine


def text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"expected a non-empty string, got {value!r}"
    return None


def optional_text(value: Any) -> str | None:
    return None if value is None else text(value)


def text_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return f"expected a list of non-empty strings, got {value!r}"
    return None


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {value!r}"


def one_of(*allowed: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"expected one of {', '.join(allowed)}, got {value!r}"

    return check


def choices(value: Any) -> str | None:
    if not isinstance(value, dict) or sorted(value) != ["A", "B", "C", "D"]:
        return f"expected an object with keys A, B, C, D, got {value!r}"
    if any(text(v) for v in value.values()):
        return "every choice must be a non-empty string"
    if len({v.strip().lower() for v in value.values()}) != 4:
        return "the four choices must differ"
    return None


@dataclass(frozen=True)
class RecordSpec:
    """The fields a record must have, each with its check; extra fields are an error too."""

    name: str
    fields: dict[str, Check]
    id_field: str = "id"
    # Cross-field rule over a valid record: returns (field, problem) or None.
    rule: Callable[[dict], tuple[str, str] | None] | None = None
    # Rule over the whole file, given (line, record) pairs: returns (line, field, problem) or None.
    file_rule: Callable[[list[tuple[int, dict]]], tuple[int, str, str] | None] | None = None


def parse_records(lines: Iterable[str], spec: RecordSpec, source: str) -> list[dict]:
    """Parse JSONL lines against ``spec``. Blank lines are skipped; ids must be unique."""
    records: list[dict] = []
    numbered: list[tuple[int, dict]] = []
    first_seen: dict[Any, int] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            record = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as e:
            raise SourceError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(record, dict):
            raise SourceError(f"{where}: expected a JSON object, got {type(record).__name__}")
        for name, check in spec.fields.items():
            if name not in record:
                raise SourceError(f"{where}: field {name!r}: missing")
            problem = check(record[name])
            if problem:
                raise SourceError(f"{where}: field {name!r}: {problem}")
        extra = sorted(set(record) - set(spec.fields))
        if extra:
            raise SourceError(f"{where}: field {extra[0]!r}: unknown field for {spec.name} records")
        if spec.rule and (broken := spec.rule(record)):
            raise SourceError(f"{where}: field {broken[0]!r}: {broken[1]}")
        key = record[spec.id_field]
        if key in first_seen:
            raise SourceError(f"{where}: field {spec.id_field!r}: duplicate id {key!r} (first on line {first_seen[key]})")
        first_seen[key] = lineno
        records.append(record)
        numbered.append((lineno, record))
    if not records:
        raise SourceError(f"{source}: no {spec.name} records")
    if spec.file_rule and (broken := spec.file_rule(numbered)):
        lineno, name, problem = broken
        raise SourceError(f"{source}:{lineno}: field {name!r}: {problem}")
    return records


def read_records(path: str | Path, spec: RecordSpec) -> list[dict]:
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            return parse_records(f, spec, str(path))
    except FileNotFoundError:
        raise SourceError(f"{path}: file not found ({spec.name} records)") from None
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
