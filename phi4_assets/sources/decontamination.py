"""The report's decontamination rule: no evaluation question may appear in training data.

Two tests, both blocking: the normalised texts are equal; or, for questions with answer
keys, the keys match and the questions share most of their content words (the same fact
asked in other words).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..core.text import normalize_answer, normalize_question

STOPWORDS = frozenset(
    "a an the of in on at to for by with from and or is was were are be what which who whom whose how many much "
    "when where why did does do its it as that this these those name called known".split()
)
NEAR_DUPLICATE_JACCARD = 0.5


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    answers: frozenset[str] = field(default_factory=frozenset)  # normalised key and aliases

    @classmethod
    def of(cls, id: str, text: str, answers: Iterable[str] | None = None) -> "Item":
        return cls(id, text, frozenset(normalize_answer(a) for a in (answers or []) if a))


def content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in normalize_question(text).split() if w not in STOPWORDS)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def find_overlaps(eval_items: Iterable[Item], training: Mapping[str, Iterable[Item]],
                  near_duplicate_jaccard: float = NEAR_DUPLICATE_JACCARD) -> list[dict]:
    """Collisions between evaluation items and training items: one row per pair, with
    eval_id, source, train_id, kind (``exact`` or ``same_key``) and the eval text."""
    exact: dict[str, list[tuple[str, str]]] = {}
    by_answer: dict[str, list[tuple[str, Item]]] = {}
    for source, items in training.items():
        for item in items:
            exact.setdefault(normalize_question(item.text), []).append((source, item.id))
            for answer in item.answers:
                by_answer.setdefault(answer, []).append((source, item))
    overlaps = []
    for item in eval_items:
        seen = set()
        for source, train_id in exact.get(normalize_question(item.text), []):
            seen.add((source, train_id))
            overlaps.append({"eval_id": item.id, "source": source, "train_id": train_id, "kind": "exact",
                             "text": item.text})
        words = content_words(item.text)
        for answer in item.answers:
            for source, other in by_answer.get(answer, []):
                if (source, other.id) in seen:
                    continue
                if jaccard(words, content_words(other.text)) >= near_duplicate_jaccard:
                    seen.add((source, other.id))
                    overlaps.append({"eval_id": item.id, "source": source, "train_id": other.id,
                                     "kind": "same_key", "text": item.text})
    return overlaps
