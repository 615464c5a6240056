"""SimpleQA-style grading: A (correct), B (incorrect), C (not attempted), as in simple-evals.

Two graders share one interface (``Grader.grade_many``):

- ``RuleGrader`` (``rule_grader``): deterministic, the embedded default (the 135M teacher cannot
  grade), following the simple-evals rubric; its rules are in that module.
- ``LLMGrader``: a grading instruction sent through any ``complete(requests) -> replies``
  callable (the teacher resource in production, a loopback stub in tests), temperature 0, the
  reply parsed strictly to one letter. Anything unreadable is C, with the reason recorded,
  because simple-evals counts an unparseable grade as not attempted. Over the teacher resource
  (``from_teacher``) such a reply is also kept in the cache as rejected (``grade_problem``), so
  the next run asks for it again instead of reusing it.

Bogus questions (no key) follow the same letters: declining is C (the behaviour we want, so
the bogus refusal rate is the share graded C) and asserting any answer is B; nothing is A.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..teacher.batch import text_validator
from ..teacher.types import ChatRequest, TeacherReply

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


def grade_problem(text: str | None) -> str | None:
    """Why ``read_grade`` cannot read ``text`` (None: it can): the teacher's validator of grades."""
    try:
        read_grade(text)
    except GradeParseError as e:
        return f"unparseable: {e}"
    return None


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
        """A grader over the project's ``TeacherResource`` (cached, concurrent calls); a reply
        ``read_grade`` cannot read is still graded C, and is not a cache hit next time."""
        validate = text_validator(grade_problem)

        def complete(requests: list[ChatRequest]) -> list[TeacherReply]:
            return teacher.complete(requests, serve_model=serve_model, logger=logger, validate=validate).replies

        return cls(complete=complete, name=name or f"llm:{teacher.model or 'teacher'}")
