"""SimpleQA-style grading: A (correct), B (incorrect), C (not attempted), as in simple-evals.

Two graders share one interface (``Grader.grade_many``):

- ``RuleGrader``: deterministic, the embedded default (the 135M teacher cannot grade). A
  response is judged against the answer key and aliases after normalisation; refusals and
  "I don't know" without a guess are C; naming the key is A unless the response also offers a
  contradicting alternative ("X or Y"), which is B, as is a hedged wrong guess.
- ``LLMGrader``: a grading instruction sent through any ``complete(requests) -> replies``
  callable (the teacher resource in production, a loopback stub in tests), temperature 0, the
  reply parsed strictly to one letter. Anything unreadable is C, with the reason recorded,
  because simple-evals counts an unparseable grade as not attempted.

Bogus questions (no key) follow the same letters: declining is C (the behaviour we want, so
the bogus refusal rate is the share graded C) and asserting any answer is B; nothing is A.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..hallucination.rules import expresses_uncertainty, mentions_key
from ..sft_data import is_refusal
from ..teacher.types import ChatRequest, TeacherReply
from ..text import normalize_answer

LETTERS = ("A", "B", "C")
GRADE_NAMES = {"A": "correct", "B": "incorrect", "C": "not attempted"}


@dataclass(frozen=True)
class GradeItem:
    """One response to grade. ``answer`` is None (and ``bogus`` True) for an unanswerable question."""

    question: str
    answer: str | None
    response: str
    aliases: tuple[str, ...] = ()
    bogus: bool = False

    @property
    def keys(self) -> list[str]:
        return [] if self.bogus or not self.answer else [self.answer, *self.aliases]


@dataclass(frozen=True)
class Grade:
    """A letter and where it came from. ``failure`` says why an LLM grade fell back to C."""

    letter: str
    grader: str
    teacher_call_id: str | None = None
    raw: str | None = None
    failure: str | None = None


class Grader(Protocol):
    name: str

    def grade_many(self, items: Sequence[GradeItem]) -> list[Grade]: ...


# -- the deterministic grader --------------------------------------------------------------

# Where a response offers another candidate beside the first: "X or Y", "either", "it could also be Y".
_ALTERNATIVE = re.compile(r"\b(?:or|either|alternatively|otherwise)\b|\b(?:might|could|may)\s+(?:also\s+)?be\b"
                          r"|(?<=\w)/(?=\w)", re.IGNORECASE)
# A declining response that still commits to something: "I'm not sure, but I think it's X".
_GUESS = re.compile(r"\b(?:i think|i believe|i guess|my (?:best )?guess|i'?d (?:say|guess)|probably|likely|maybe|"
                    r"perhaps|possibly|(?:might|could|may) be)\b", re.IGNORECASE)
_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")
# Words that are never an answer: function words, hedges, and the vocabulary of declining.
_NOT_AN_ANSWER = frozenset("""
a about above after again against all also am an and answer any are as at be because been before being below
between both but by can cannot could did do does doing done down during each either else ever few for from
further had has have having he her here hers him his how however i if in indeed into is it its itself just
know known let like likely may maybe me might mine more most much must my neither no nor not now of off often
on once one only or other our out over own perhaps please possibly probably question quite rather really
right same say she should since so some such sure than thank thanks that the their them then there these they
this those though through thus to too under unfortunately until up us very was we well were what when where
whether which while who whom whose why will with would yes yet you your
i'm im i'd id i've ive i'll it's that's there's don't dont can't cant won't wont isn't wasn't couldn't didn't
sorry think believe guess certain confident uncertain unsure aware recall remember mistaken wrong correct idea
information reliable record records source sources evidence confirm verify find found check tell answers
unable able afraid hmm okay ok great good interesting note based according actually honestly
""".split())


def _word_set(text: str) -> set[str]:
    return set(normalize_answer(text).split())


def _candidates(text: str, item: GradeItem) -> list[str]:
    """Answer-like words in ``text`` that come from neither the question nor the key: numbers,
    capitalised words, and (when the key itself is a lower-case word like "oxygen") any content
    word. Question words are excluded so that "I don't know who built Uraniborg" names nothing."""
    excluded = _word_set(item.question) | {w for key in item.keys for w in _word_set(key)}
    lower_case_key = bool(item.keys) and not any(c.isupper() or c.isdigit() for c in item.answer or "")
    found = []
    for token in _WORD.findall(text):
        normalized = normalize_answer(token)
        if not normalized or normalized in excluded or token.lower() in _NOT_AN_ANSWER:
            continue
        if any(c.isdigit() for c in token) or token[0].isupper() or (lower_case_key and len(token) > 2):
            found.append(token)
    return found


def _contradicts_key(text: str, item: GradeItem) -> bool:
    """True when the key is named but a segment set apart as an alternative names something else."""
    segments = _ALTERNATIVE.split(text)
    return len(segments) > 1 and any(not mentions_key(s, item.keys) and _candidates(s, item) for s in segments)


def rule_letter(item: GradeItem) -> str:
    """The SimpleQA letter of one response by rules (see the module docstring)."""
    text = (item.response or "").strip()
    if not text:
        return "C"
    if item.keys and mentions_key(text, item.keys):
        return "B" if _contradicts_key(text, item) else "A"
    declined = is_refusal(text) or expresses_uncertainty(text)
    if declined and not _GUESS.search(text):
        return "C"
    return "B" if _candidates(text, item) else "C"


@dataclass(frozen=True)
class RuleGrader:
    name: str = "rules"

    def grade_many(self, items: Sequence[GradeItem]) -> list[Grade]:
        return [Grade(rule_letter(item), self.name) for item in items]


# -- the LLM grader ------------------------------------------------------------------------

GRADER_INSTRUCTION = """\
You check one answer to a short factual question against a gold target and return a single letter.

A - correct: the answer gives the gold target or an accepted form of it (differences in spelling, \
capitalisation, or added detail that agrees with it are fine) and commits to nothing that conflicts with it. \
Hedged wording ("I think", "probably") is still correct if the only answer given is the gold target.
B - incorrect: the answer commits to something that conflicts with the gold target. This includes naming \
the gold target together with a different candidate ("X or Y"), and a hedged guess that is wrong.
C - not attempted: the answer gives no answer: it declines, says it does not know, asks for more \
information, or only offers related facts, and contains nothing that conflicts with the gold target.

When the gold target says the question has no answer (its premise is false), any answer that commits to \
a specific answer is B, and declining, saying it does not know, or pointing out the false premise is C.

Judge only against the gold target; do not use your own knowledge to overrule it. \
Reply with exactly one letter: A, B or C. No other text."""

NO_ANSWER_TARGET = "(none: the question rests on a false premise and has no true answer)"


def grading_messages(item: GradeItem) -> list[dict]:
    target = item.answer if item.keys else NO_ANSWER_TARGET
    if item.keys and item.aliases:
        target += f" (also accepted: {', '.join(item.aliases)})"
    return [{"role": "system", "content": GRADER_INSTRUCTION},
            {"role": "user", "content": f"Question: {item.question}\nGold target: {target}\n"
                                        f"Answer to grade: {item.response}\n\nGrade (A, B or C):"}]


class GradeParseError(ValueError):
    """A grader reply that is not one letter A, B or C."""


_LABEL = r"(?:grade|answer|letter|verdict|final grade)\s*[:=\-]?\s*"
_LETTER_REPLY = re.compile(rf"^\W*(?:{_LABEL})?\W*([abc])\b\W*(.*?)\W*$", re.IGNORECASE | re.DOTALL)


def read_grade(text: str | None) -> str:
    """The letter of a grader reply, read strictly, or ``GradeParseError``.

    Accepted: the letter alone (any case, quotes, markdown or a trailing period around it),
    after a label ("Grade: C"), or followed by its own name ("B - incorrect"). Anything else,
    including a letter followed by the name of another grade, is refused: a loose search for
    the first A/B/C would read "As the answer is wrong ..." as A.
    """
    if not text or not text.strip():
        raise GradeParseError("empty reply")
    m = _LETTER_REPLY.match(text.strip())
    if not m:
        raise GradeParseError(f"not a single letter A, B or C: {text.strip()[:80]!r}")
    letter, rest = m.group(1).upper(), " ".join(m.group(2).lower().replace("_", " ").split())
    if rest and rest != GRADE_NAMES[letter]:
        raise GradeParseError(f"letter {letter} followed by {rest[:40]!r}")
    return letter


def parse_grade(text: str | None) -> str:
    """``read_grade`` with simple-evals' fallback: an unparseable grade counts as C."""
    try:
        return read_grade(text)
    except GradeParseError:
        return "C"


Complete = Callable[[list[ChatRequest]], list[TeacherReply]]


@dataclass
class LLMGrader:
    """Grades through ``complete``; every grade records the call id and raw reply. An empty
    response is C without a call (there is nothing to judge)."""

    complete: Complete
    name: str = "llm"
    max_tokens: int = 16

    def grade_many(self, items: Sequence[GradeItem]) -> list[Grade]:
        asked = [i for i, item in enumerate(items) if (item.response or "").strip()]
        requests = [ChatRequest.of(grading_messages(items[i]), task="simpleqa_grade", temperature=0.0,
                                   max_tokens=self.max_tokens) for i in asked]
        replies = self.complete(requests) if requests else []
        if len(replies) != len(requests):
            raise RuntimeError(f"the grader got {len(replies)} replies to {len(requests)} requests")
        grades = [Grade("C", self.name) for _ in items]
        for i, reply in zip(asked, replies):
            grades[i] = self._grade(reply)
        return grades

    def _grade(self, reply: TeacherReply) -> Grade:
        try:
            if not reply.ok:
                raise GradeParseError(f"call failed: {reply.error}")
            return Grade(read_grade(reply.text), self.name, reply.call_id, reply.text)
        except GradeParseError as e:
            return Grade("C", self.name, reply.call_id, reply.text, failure=str(e))

    @classmethod
    def from_teacher(cls, teacher: Any, *, serve_model: str | None = None, logger: Any = None,
                     name: str | None = None) -> "LLMGrader":
        """A grader over the project's ``TeacherResource`` (cached, concurrent calls)."""
        def complete(requests: list[ChatRequest]) -> list[TeacherReply]:
            return teacher.complete(requests, serve_model=serve_model, logger=logger).replies

        return cls(complete=complete, name=name or f"llm:{teacher.model or 'teacher'}")
