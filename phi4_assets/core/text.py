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


# -- response quality: what may be a training target ---------------------------------------

LOOP_SHARE = 0.3  # a response whose repeated word 3-grams exceed this share is a loop
_SENTENCE_END = re.compile(r"[.!?](?:[\"')\]`*]*)(?=\s|$)")


def repetition(text: str, n: int = 3) -> float:
    """Share of word n-grams that repeat an earlier one (0 = none, near 1 = a loop)."""
    words = (text or "").lower().split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def loops(text: str) -> bool:
    """True if ``text`` is degenerate repetition ("I don't know. I don't know. I don't know. ...").
    A loop is never a training target: a chosen side or an SFT completion that loops teaches the
    policy to loop (measured on the small run: 19 of 96 teacher chat responses looped, and the
    stage that trained on them looped on 6% of SimpleQA; one that preferred them, on 22%)."""
    return repetition(text) > LOOP_SHARE


def last_full_sentence(text: str) -> str:
    """``text`` cut back to the end of its last complete sentence ("" if it has none). A reply
    that hit its token limit stops mid-sentence; trained as an SFT target with the end-of-turn
    appended, it would teach the policy to stop mid-sentence."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text or "")]
    return text[:ends[-1]].rstrip() if ends else ""
