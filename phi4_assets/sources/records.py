"""JSONL records with a schema: every error names the file, the line and the field.

Reading is bounded, so no file can hang or swamp a reader (a sensor, ``phi4 demo``): only
regular files are opened (checked with ``os.stat`` first: a directory or a FIFO named
``*.jsonl`` is reported, never opened), of at most ``MAX_FILE_BYTES``; each line is read as
bytes, at most ``MAX_LINE_BYTES`` of them, and decoded on its own, so a bad byte is reported
with its line and its offset in the file. A UTF-8 byte-order mark opening the file is skipped.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 64 * 2**20  # 64 MiB: a larger source file is refused unread
MAX_LINE_BYTES = 64 * 2**10  # 64 KiB: one record (line ending not counted)
_BOM = b"\xef\xbb\xbf"


class SourceError(ValueError):
    """A source file is malformed. The message reads ``FILE:LINE: field 'F': problem``
    (``FILE: problem`` for the file as a whole)."""


def _show(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut short: an error message quotes a value, it does not carry it."""
    shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({len(shown)} characters)"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def check_regular_file(path: str | Path, what: str = "records") -> int:
    """The size of ``path`` if it is a regular file (a link to one is followed) of at most
    ``MAX_FILE_BYTES``; otherwise a ``SourceError``. Nothing is opened."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise SourceError(f"{path}: file not found ({what})") from None
    except OSError as e:
        raise SourceError(f"{path}: cannot read it ({e.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise SourceError(f"{path}: {_kind(info.st_mode)}, not a regular file: only regular files are read")
    if info.st_size > MAX_FILE_BYTES:
        raise SourceError(f"{path}: {info.st_size} bytes, over the limit of {MAX_FILE_BYTES} "
                          f"(MAX_FILE_BYTES, {MAX_FILE_BYTES // 2**20} MiB)")
    return info.st_size


def _decode(raw: bytes, lineno: int, offset: int, source: str) -> str:
    """One line's text; the first line may open with a byte-order mark (``utf-8-sig``)."""
    if lineno == 1 and raw.startswith(_BOM):
        raw, offset = raw[len(_BOM):], offset + len(_BOM)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SourceError(f"{source}:{lineno}: not UTF-8 text ({e.reason}: byte 0x{raw[e.start]:02x} at "
                          f"offset {offset + e.start} in the file, {e.start} in the line)") from None


def _open_regular(path: Path):
    # O_NONBLOCK: should a FIFO replace the file after the check, opening it still cannot hang.
    f = os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb")
    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
        f.close()
        raise SourceError(f"{path}: not a regular file: only regular files are read")
    return f


def _numbered_lines(f, source: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of the binary file ``f``, bounded as the module says."""
    offset = 0
    for lineno in itertools.count(1):
        raw = f.readline(MAX_LINE_BYTES + 2)  # + room for "\r\n"
        if not raw:
            return
        if len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
            raise SourceError(f"{source}:{lineno}: line over {MAX_LINE_BYTES} bytes (MAX_LINE_BYTES, "
                              f"{MAX_LINE_BYTES // 2**10} KiB): one record per line, of sane size")
        if offset + len(raw) > MAX_FILE_BYTES:  # it grew since the check
            raise SourceError(f"{source}: over the limit of {MAX_FILE_BYTES} bytes (MAX_FILE_BYTES)")
        yield lineno, _decode(raw, lineno, offset, source)
        offset += len(raw)


Check = Callable[[Any], str | None]  # returns a problem description, or None if fine


def text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"expected a non-empty string, got {_show(value)}"
    return None


def text_of_at_most(chars: int) -> Check:
    """A non-empty string of at most ``chars`` characters."""
    def check(value: Any) -> str | None:
        if problem := text(value):
            return problem
        return f"{len(value)} characters, over the limit of {chars}" if len(value) > chars else None

    return check


def texts_of_at_most(items: int, chars: int) -> Check:
    """A list of at most ``items`` non-empty strings of at most ``chars`` characters each."""
    def check(value: Any) -> str | None:
        if problem := text_list(value):
            return problem
        if len(value) > items:
            return f"{len(value)} items, over the limit of {items}"
        long = next((i for i, v in enumerate(value) if len(v) > chars), None)
        if long is not None:
            return f"item {long + 1}: {len(value[long])} characters, over the limit of {chars}"
        return None

    return check


def optional_text(value: Any) -> str | None:
    return None if value is None else text(value)


def text_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return f"expected a list of non-empty strings, got {_show(value)}"
    return None


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {_show(value)}"


def one_of(*allowed: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"expected one of {', '.join(allowed)}, got {_show(value)}"

    return check


def choices(value: Any) -> str | None:
    if not isinstance(value, dict) or sorted(value) != ["A", "B", "C", "D"]:
        return f"expected an object with keys A, B, C, D, got {_show(value)}"
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
    return [record for _, record in parse_numbered(enumerate(lines, start=1), spec, source)]


def _parse_line(line: str, where: str, spec: RecordSpec) -> dict:
    try:
        record = json.loads(line.rstrip("\r\n"))
    except json.JSONDecodeError as e:
        raise SourceError(f"{where}: not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise SourceError(f"{where}: not valid JSON (nested too deeply)") from None
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
        raise SourceError(f"{where}: field {_show(extra[0])}: unknown field for {spec.name} records")
    if spec.rule and (broken := spec.rule(record)):
        raise SourceError(f"{where}: field {broken[0]!r}: {broken[1]}")
    return record


def parse_numbered(lines: Iterable[tuple[int, str]], spec: RecordSpec, source: str) -> list[tuple[int, dict]]:
    """Parse (line number, line) pairs against ``spec``: the (line number, record) pairs.
    Blank lines are skipped; ids must be unique."""
    numbered: list[tuple[int, dict]] = []
    first_seen: dict[Any, int] = {}
    for lineno, line in lines:
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        record = _parse_line(line, where, spec)
        key = record[spec.id_field]
        if key in first_seen:
            raise SourceError(f"{where}: field {spec.id_field!r}: duplicate id {_show(key)} (first on line {first_seen[key]})")
        first_seen[key] = lineno
        numbered.append((lineno, record))
    if not numbered:
        raise SourceError(f"{source}: no {spec.name} records")
    if spec.file_rule and (broken := spec.file_rule(numbered)):
        lineno, name, problem = broken
        raise SourceError(f"{source}:{lineno}: field {name!r}: {problem}")
    return numbered


def read_numbered(path: str | Path, spec: RecordSpec) -> list[tuple[int, dict]]:
    """The (line number, record) pairs of a JSONL file, read within the module's bounds."""
    path = Path(path)
    check_regular_file(path, f"{spec.name} records")
    try:
        with _open_regular(path) as f:
            return parse_numbered(_numbered_lines(f, str(path)), spec, str(path))
    except FileNotFoundError:  # gone since the check
        raise SourceError(f"{path}: file not found ({spec.name} records)") from None
    except OSError as e:
        raise SourceError(f"{path}: cannot read it ({e.strerror})") from None


def read_records(path: str | Path, spec: RecordSpec) -> list[dict]:
    return [record for _, record in read_numbered(path, spec)]
