"""Stable content ids: the same content always gets the same id, on every machine."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def content_hash(value: Any, length: int = 16) -> str:
    """Hex digest of the canonical JSON of ``value`` (first ``length`` characters)."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:length]


def row_id(prefix: str, *parts: Any) -> str:
    """An id like ``bogus-3f2a9c0d1e4b5a6f`` from the parts that define the row."""
    return f"{prefix}-{content_hash(list(parts))}"


def file_digest(path, length: int = 16, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:length]
