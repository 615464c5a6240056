"""Incoming seed files: which ones may become seed shards.

A trivia file dropped into the incoming folder is usable when its name makes a seed set
(``shards.set_name``), it reads as trivia records within the limits of ``records`` and
``schemas`` (a regular file, bounded in size, line and field lengths, UTF-8), and none of its
records repeats an id or a question (normalised: ``text.normalize_question``) of the shipped
file, of an incoming file accepted before it, or of an earlier line of its own. A rejection
is a ``SourceError`` whose message reads ``FILE:LINE: field 'F': problem`` and, for a repeat,
names the other place too. Nothing here but the file reading touches the outside world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.text import normalize_question
from . import schemas
from .records import SourceError, read_numbered
from .shards import set_name

Numbered = list[tuple[int, dict]]  # (line number, record)


@dataclass
class SeedIndex:
    """Where each seed id, each normalised question and each seed set was first seen
    (``FILE:LINE``, with the id for a question; the file for a set), over the files accepted
    so far."""

    ids: dict[str, str] = field(default_factory=dict)
    questions: dict[str, str] = field(default_factory=dict)
    sets: dict[str, str] = field(default_factory=dict)

    def repeat(self, source: str, numbered: Numbered) -> str | None:
        """The first repeated id or question in ``numbered`` (lines of ``source``), as an error
        message naming both places; None if there is none."""
        ids, questions = dict(self.ids), dict(self.questions)
        for lineno, record in numbered:
            where = f"{source}:{lineno}"
            if (first := ids.get(record["id"])) is not None:
                return f"{where}: field 'id': id {record['id']!r} is already used by {first}"
            key = normalize_question(record["question"])
            if (first := questions.get(key)) is not None:
                return f"{where}: field 'question': the same question (once normalised) as {first}"
            ids[record["id"]] = where
            if key:
                questions[key] = f"{where} (id {record['id']!r})"
        return None

    def add(self, source: str, numbered: Numbered) -> None:
        for lineno, record in numbered:
            self.ids.setdefault(record["id"], f"{source}:{lineno}")
            if key := normalize_question(record["question"]):
                self.questions.setdefault(key, f"{source}:{lineno} (id {record['id']!r})")


def accept_seed_file(path: Path, index: SeedIndex) -> tuple[str, Numbered]:
    """The seed set and the records of the incoming file ``path``, added to ``index``; a
    ``SourceError`` (``FILE:LINE: field 'F': problem``) if the file is not usable."""
    try:
        name = set_name(path.stem)
    except ValueError as e:
        raise SourceError(f"{path}: {e}") from None
    if name in index.sets:
        raise SourceError(f"{path}: seed set {name!r} is already taken by {index.sets[name]} "
                          f"(file names that differ only in case)")
    numbered = read_numbered(path, schemas.TRIVIA)
    if problem := index.repeat(str(path), numbered):
        raise SourceError(problem)
    index.add(str(path), numbered)
    index.sets[name] = str(path)
    return name, numbered


def incoming_files(incoming_dir: Path) -> list[Path]:
    """Seed files waiting in the incoming folder (``*.jsonl``), in name order. Whatever bears the
    name is listed (a directory, a FIFO too): reading it is what checks it."""
    return sorted(incoming_dir.glob("*.jsonl")) if incoming_dir.is_dir() else []
