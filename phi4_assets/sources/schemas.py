"""The record schemas of the shipped data files (``data/seeds``, ``data/eval``)."""

from __future__ import annotations

from .records import (RecordSpec, boolean, choices, one_of, optional_text, text, text_list, text_of_at_most,
                      texts_of_at_most)

TOPICS = (
    "geography", "history", "science", "literature", "art", "music", "sport", "language",
    "mathematics", "astronomy", "biology", "technology", "film", "food", "religion_mythology",
)

# Limits of a trivia seed record (the shipped file's longest: id 11, question 128, answer 50,
# 5 aliases of at most 42 characters), so that no seed file can smuggle in a monster prompt.
MAX_ID_CHARS = 100
MAX_QUESTION_CHARS = 1000
MAX_ANSWER_CHARS = 200  # an answer, and each alias
MAX_ALIASES = 50


def _bogus_has_no_answer(record: dict):
    if record["bogus"] and (record["answer"] is not None or record["aliases"]):
        return "answer", "a bogus question has answer null and no aliases"
    if not record["bogus"] and record["answer"] is None:
        return "answer", "a real question needs an answer"
    return None


def _pair_differs(record: dict):
    if record["pair"] == record["id"]:
        return "pair", "a prompt cannot be its own pair"
    return None


def _pairs_cross_reference(numbered: list[tuple[int, dict]]):
    by_id = {record["id"]: record for _, record in numbered}
    for lineno, record in numbered:
        partner = by_id.get(record["pair"])
        if partner is None:
            return lineno, "pair", f"no record with id {record['pair']!r} in this file"
        if partner["pair"] != record["id"]:
            return lineno, "pair", f"{record['pair']!r} pairs with {partner['pair']!r}, not back with {record['id']!r}"
        if partner["kind"] == record["kind"]:
            return lineno, "pair", f"a {record['kind']} prompt must pair with a prompt of the other kind"
    return None


TRIVIA = RecordSpec(
    name="trivia",
    fields={
        "id": text_of_at_most(MAX_ID_CHARS),
        "question": text_of_at_most(MAX_QUESTION_CHARS),
        "answer": text_of_at_most(MAX_ANSWER_CHARS),
        "aliases": texts_of_at_most(MAX_ALIASES, MAX_ANSWER_CHARS),
        "topic": one_of(*TOPICS),
        "difficulty": one_of("easy", "medium", "hard"),
    },
)

SIMPLEQA = RecordSpec(
    name="simpleqa",
    fields={
        "id": text,
        "question": text,
        "answer": optional_text,
        "aliases": text_list,
        "bogus": boolean,
        "topic": one_of(*TOPICS),
    },
    rule=_bogus_has_no_answer,
)

MCQ = RecordSpec(
    name="mcq",
    fields={
        "id": text,
        "question": text,
        "choices": choices,
        "answer": one_of("A", "B", "C", "D"),
        "subject": text,
    },
)

SAFETY = RecordSpec(
    name="safety",
    fields={
        "id": text,
        "prompt": text,
        "kind": one_of("harmful", "benign"),
        "category": text,
        "pair": text,
    },
    rule=_pair_differs,
    file_rule=_pairs_cross_reference,
)

CHAT = RecordSpec(name="chat", fields={"id": text, "prompt": text, "category": text})
