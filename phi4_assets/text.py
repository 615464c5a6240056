"""Text normalisation shared by graders, matchers and the decontamination check."""

from __future__ import annotations

import re
import unicodedata

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_APOSTROPHES = re.compile(r"['\u2019\u02bc]")
_NON_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


def normalize_question(text: str) -> str:
    """Lower case, accents folded, punctuation dropped, white space collapsed."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = _APOSTROPHES.sub("", text)  # "don't" -> "dont", not "don t" (a stray "t" would match keys)
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def normalize_answer(text: str) -> str:
    """SQuAD-style answer normalisation: like ``normalize_question`` and articles removed."""
    return _SPACES.sub(" ", _ARTICLES.sub(" ", normalize_question(text))).strip()
