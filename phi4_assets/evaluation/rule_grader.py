"""The deterministic SimpleQA grader (``RuleGrader``): A (correct), B (incorrect), C (not
attempted), as in simple-evals; the interface and the LLM grader are in ``graders``.

``RuleGrader`` is deterministic, the embedded default (the 135M teacher cannot grade). It follows
the simple-evals rubric (``GRADER_TEMPLATE`` in ``simpleqa_eval.py``): A when the response gives
the key and nothing that contradicts it, hedged or not; B when it commits to something that
contradicts the key, hedged or not; C only when it declines without committing to any answer.
The rules, on answer-like words ("candidates": numbers, capitalised words, and for a lower-case
key like "oxygen" any content word, never from the question or the key):

1. The key is named when the response contains the key or an alias as whole words, or every
   member of a key that lists several answers ("Malia and Sasha", any order). A distinctive word
   of the key also names it when the response offers no other candidate of the key's kind:
   "Vermeer" for "Johannes Vermeer", as the rubric takes "Michelle" for "Michelle Obama".
2. A response that names the key is A, unless it also offers another candidate, which is B:
   a segment set apart as an alternative ("X or Y", "either", "it might have been Y") that names
   something else; a list of names with more members than the key ("Malia, Sasha, and Susan",
   "Vermeer and Rembrandt"); or a later sentence that does not name the key, is not negated, and
   opens with a name (a number, for a number key) from neither the question nor the key:
   "Vermeer painted it. Rembrandt was his teacher." Extra detail inside the answer's own sentence
   ("Paris, a city on the Seine"), a sentence about the key ("He trained in Delft", "The painting
   hangs in The Hague") and a candidate ruled out ("not Kepler") leave it A.
3. A response that names only some members of a listed key ("Malia.") is B, or C when it says it
   does not know the rest and offers nothing else.
4. Otherwise the response is B if it commits to a candidate and C if not. In a response that
   declines somewhere, a clause that declines or points elsewhere ("check the Rijksmuseum")
   commits to nothing unless it also guesses ("I don't know, maybe Kepler?"); any other clause
   commits: "I'm not sure, but it was Rembrandt." is B, "I'm not sure." is C.

Limits, all in how far words can stand for meaning: a later sentence that opens with another
name is read as a second answer even when it is context ("Tycho Brahe built it. Kepler later used
his data." is B), while one that opens with anything else is not ("The Mauritshuis holds it" is
A, and so is "Vermeer. His teacher was Rembrandt."); for a lower-case key this sentence rule is
off, as an opening capital says nothing there. A name that shares a word with a matched alias
("Hans Holbein the Elder" against the alias "Holbein") is A; one-letter keys ("W") never match;
contradictions without a candidate ("Obama has three children", "he had no children") are C;
numbers are matched as words, without the rubric's tolerance to the last significant figure.
The LLM grader (``graders.LLMGrader``) is the one to use where these matter.

Bogus questions (no key) follow the same letters: declining is C (the behaviour we want, so
the bogus refusal rate is the share graded C) and asserting any answer is B; nothing is A.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..hallucination.rules import mentions_key
from ..core.refusal import expresses_uncertainty, is_refusal
from ..core.text import normalize_answer
from .graders import Grade, GradeItem

# Where a response offers another candidate beside the first: "X or Y", "either", "it could also be Y".
_ALTERNATIVE = re.compile(r"\b(?:or|either|alternatively|otherwise)\b|\b(?:might|could|may)\s+(?:also\s+)?be\b"
                          r"|\b(?:might|could|may)\s+(?:also\s+)?have\s+been\b|(?<=\w)/(?=\w)", re.IGNORECASE)
# A declining clause that still commits to something: "I'm not sure, maybe it's X".
_GUESS = re.compile(r"\b(?:i think|i believe|i guess|my (?:best )?guess|i'?d (?:say|guess)|probably|likely|maybe|"
                    r"perhaps|possibly|(?:might|could|may) be)\b", re.IGNORECASE)
# A clause that sends the reader elsewhere instead of answering: names in it are sources, not answers.
_DEFLECT = re.compile(r"\b(?:suggest|recommend|check|consult|refer|look(?:ing)?\s+(?:it\s+)?up|search|verify|"
                      r"double[- ]check)\w*", re.IGNORECASE)
# Where a declining response turns to something else: "I'm not sure, but it was X".
_CONTRAST = re.compile(r"\s*[,;:]?\s*\b(?:but|however|though|although|whereas)\b,?\s*", re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:not|never|no)\b|n['\u2019]t\b", re.IGNORECASE)
_SENTENCE_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+")
_ABBREVIATIONS = frozenset("mr mrs ms dr st sr jr mt no vs ca c fr prof gen col capt lt".split())
# A capitalised name ("Jan van Eyck", "L. L. Zamenhof"), and what may stand between two members of a list of them.
_NAME_WORD = r"[A-Z](?:\.|[\w'\u2019-]*)"
_NAME = re.compile(rf"(?<![\w'\u2019.-]){_NAME_WORD}(?:\s+(?:(?:de|da|di|du|van|von|der|del|la|le)\s+)*{_NAME_WORD})*")
_LIST_GAP = re.compile(r"\s*,\s*|\s*,?\s+(?:and|&)\s+")
# Between the members of a list, in a response or in a key that lists several answers ("Malia and Sasha").
_LIST_SEPARATOR = re.compile(r"\s*,\s*(?:(?:and|&)\s+)?|\s+(?:and|&)\s+")
_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")
# Words that are never an answer: function words, hedges, and the vocabulary of declining.
_NOT_AN_ANSWER = frozenset("""
a about above across after again against all also although am among an and another answer any are around as at
be because been before being below between both but by can cannot could despite did do does doing done down
during each either else even ever every few for from further had has have having he hence her here hers him his
how however i if in indeed into is it its itself just know known later let like likely many may maybe me might
mine more most much must my neither no nor not now of off often on once one only or other our out over own
perhaps please possibly probably question quite rather really right same say several she should since so some
still such sure than thank thanks that the their them then there therefore these they this those though through
thus to today too under unfortunately unless until up us very was we well were what when where whereas whether
which while who whom whose why will with within without would yes yet you your
i'm im i'd id i've ive i'll it's that's there's here's let's lets don't dont can't cant won't wont isn't wasn't couldn't didn't
sorry think believe guess certain confident uncertain unsure aware recall remember mistaken wrong correct idea
information reliable record records source sources evidence confirm verify find found check tell answers
unable able afraid hmm okay ok great good interesting note based according actually honestly
""".split())


def _word_set(text: str) -> set[str]:
    return set(normalize_answer(text).split())


def _question_words(question: str) -> set[str]:
    """The question's words, with possessives also bare: "Obama's" excludes "Obama" too."""
    words = _word_set(question)
    for token in _WORD.findall(question):
        if token[-2:].lower() in ("'s", "\u2019s"):
            words |= _word_set(token[:-2])
    return words


def _key_kind(item: GradeItem) -> str | None:
    """What an answer to ``item`` looks like: a number, a name (capitalised), or a common word."""
    if not item.keys:
        return None
    answer = item.answer or ""
    if any(c.isdigit() for c in answer):
        return "number"
    return "name" if any(c.isupper() for c in answer) else "word"


def _same_kind(token: str, kind: str | None) -> bool:
    if kind == "number":
        return any(c.isdigit() for c in token)
    if kind == "name":
        return token[0].isupper() and not any(c.isdigit() for c in token)
    return True


@dataclass(frozen=True)
class _Context:
    """What a response is judged against: words that name nothing new, and the key's own words."""

    excluded: frozenset[str]  # question and key words
    key_words: frozenset[str]  # the key's content words that are not in the question
    kind: str | None

    @classmethod
    def of(cls, item: GradeItem) -> "_Context":
        question = _question_words(item.question)
        keys = {w for key in item.keys for w in _word_set(key)}
        return cls(frozenset(question | keys), frozenset(keys - question - _NOT_AN_ANSWER), _key_kind(item))

    def is_candidate(self, token: str) -> bool:
        """Numbers, capitalised words, and (when the key itself is a lower-case word like "oxygen")
        any content word, from neither the question nor the key."""
        normalized = normalize_answer(token)
        if not normalized or normalized in self.excluded or token.lower() in _NOT_AN_ANSWER:
            return False
        return any(c.isdigit() for c in token) or token[0].isupper() or (self.kind == "word" and len(token) > 2)

    def candidates(self, text: str) -> list[str]:
        """Answer-like words in ``text``. Question words are excluded so that "I don't know who
        built Uraniborg" names nothing."""
        return [t for t in _WORD.findall(text) if self.is_candidate(t)]


def _sentences(text: str) -> list[str]:
    """``text`` cut at sentence ends, but not after an initial or a title ("L. L. Zamenhof", "St. Luke")."""
    out, start = [], 0
    for m in _SENTENCE_BREAK.finditer(text):
        before = text[start:m.start()]
        last = before.rstrip(".").split()[-1:] if before.endswith(".") else []
        if last and (len(last[0]) == 1 or last[0].lower() in _ABBREVIATIONS):
            continue
        out.append(before)
        start = m.end()
    out.append(text[start:])
    return [s for s in out if s.strip()]


def _declines(text: str) -> bool:
    return is_refusal(text) or expresses_uncertainty(text)


def _offered(text: str, ctx: _Context) -> list[str]:
    """The candidates a response commits to. In a response that declines somewhere, a clause that
    declines or points elsewhere ("check the Rijksmuseum") offers nothing unless it also guesses
    ("I don't know, maybe X"); any other clause ("I'm not sure, but it was X") offers its candidates."""
    if not _declines(text):
        return ctx.candidates(text)
    found = []
    for sentence in _sentences(text):
        for clause in _CONTRAST.split(sentence):
            if (_declines(clause) or _DEFLECT.search(clause)) and not _GUESS.search(clause):
                continue
            found += ctx.candidates(clause)
    return found


def offered_candidates(item: GradeItem) -> list[str]:
    """The answer-like words ``item.response`` commits to (numbers, capitalised words, and for a
    lower-case key any content word), from neither the question nor the key."""
    return _offered((item.response or "").strip(), _Context.of(item))


def _name_lists(text: str) -> list[list[str]]:
    """Lists of capitalised names joined by commas and "and": "Malia, Sasha, and Susan" (a run of
    names with commas only, like "Paris, France", is no list)."""
    lists, run, joined, end = [], [], False, None
    for m in _NAME.finditer(text):
        gap = None if end is None else _LIST_GAP.fullmatch(text[end:m.start()])
        if gap is None:
            if len(run) > 1 and joined:
                lists.append(run)
            run, joined = [], False
        else:
            joined = joined or gap.group(0).strip() != ","  # "and" or "&" between two of them
        run.append(m.group(0))
        end = m.end()
    if len(run) > 1 and joined:
        lists.append(run)
    return lists


def _key_parts(key: str) -> list[str]:
    return [p for p in _LIST_SEPARATOR.split(key) if p.strip()] if re.search(r"\s(?:and|&)\s", key) else [key]


def _coverage(text: str, item: GradeItem, ctx: _Context) -> tuple[str | None, int]:
    """("full", n) when the response names a key of n parts; ("partial", 0) when it names some but
    not all the parts of a key that lists several answers; (None, 0) when it names no key.

    A part is named by its whole text, or, when the response offers no other candidate of the
    key's kind, by one of its distinctive words (capitalised or a number, not from the question):
    "Vermeer" names "Johannes Vermeer", as the rubric's "Michelle" names "Michelle Obama"."""
    words = _word_set(text)
    partial_ok = not any(_same_kind(t, ctx.kind) for t in ctx.candidates(text))
    some = False
    for key in item.keys:
        parts = _key_parts(key)
        if mentions_key(text, [key]):
            return "full", len(parts)
        named = [mentions_key(text, [part]) or (partial_ok and bool(_distinctive(part, ctx) & words))
                 for part in parts]
        if all(named):
            return "full", len(parts)
        some = some or (len(parts) > 1 and any(named))
    return ("partial", 0) if some else (None, 0)


def _distinctive(part: str, ctx: _Context) -> set[str]:
    return {normalize_answer(t) for t in _WORD.findall(part)
            if (t[0].isupper() or any(c.isdigit() for c in t)) and len(normalize_answer(t)) > 1
            and t.lower() not in _NOT_AN_ANSWER} & ctx.key_words


def _contradicts_key(text: str, item: GradeItem, ctx: _Context, parts: int) -> str | None:
    """Why a response that names the key also contradicts it, or None. Three shapes count:

    - alternatives: a segment set apart by "or", "either", "might be", ... names something else;
    - a list of names ("X, Y and Z") with more members than the key has parts;
    - a later sentence that does not name the key, is not negated, and opens with a name (or, for a
      number key, a number) from neither question nor key: "Vermeer painted it. Rembrandt was his
      teacher." offers Rembrandt as a second answer. Only the opening word counts, so "He trained
      with Fabritius" or "The painting hangs in The Hague" is context about the key.
    """
    segments = _ALTERNATIVE.split(text)
    if len(segments) > 1 and any(not mentions_key(s, item.keys) and ctx.candidates(s) for s in segments):
        return "alternative"
    for names in _name_lists(text):
        members = [m for m in names if _word_set(m) & ctx.key_words or ctx.candidates(m)]
        if len(members) > parts and any(not (_word_set(m) & ctx.key_words) for m in members):
            return "list"
    if ctx.kind in ("name", "number"):  # a lower-case key's kind ("oxygen") cannot be told from an opening capital
        for sentence in _sentences(text):
            opening = _WORD.findall(sentence)[:1]
            if (opening and not (_word_set(sentence) & ctx.key_words) and ctx.is_candidate(opening[0])
                    and _same_kind(opening[0], ctx.kind) and not _NEGATION.search(sentence)):
                return "sentence"
    return None


def rule_letter(item: GradeItem) -> str:
    """The SimpleQA letter of one response by rules (see the module docstring)."""
    text = (item.response or "").strip()
    if not text:
        return "C"
    ctx = _Context.of(item)
    coverage, parts = _coverage(text, item, ctx)
    if coverage == "full":
        return "B" if _contradicts_key(text, item, ctx, parts) else "A"
    offered = _offered(text, ctx)
    if coverage == "partial":  # "Malia." for "Malia and Sasha"; C only if it says it does not know the rest
        return "C" if _declines(text) and not offered else "B"
    return "B" if offered else "C"


@dataclass(frozen=True)
class RuleGrader:
    name: str = "rules"

    def grade_many(self, items: Sequence[GradeItem]) -> list[Grade]:
        return [Grade(rule_letter(item), self.name) for item in items]


