"""Deterministic generators beside the teacher: bogus questions by perturbation, reference
answers and refusals from templates, and the checks both kinds of output must pass.

Every choice is seeded by the row's own id, so the same seed question always gets the same
output, on every machine.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# The refusal and decline detectors live in ``refusal.py``; importable from here too.
from ..core.refusal import declines, expresses_uncertainty
from ..core.text import normalize_answer

# -- matching ------------------------------------------------------------------------------


def mentions_key(text: str, keys: list[str]) -> bool:
    """True if any key (answer or alias), normalised, appears as a whole-word run in ``text``.
    One-letter keys (a symbol like "T" for tesla) are too ambiguous to match; digits are kept."""
    words = f" {normalize_answer(text)} "
    normalized = (normalize_answer(key) for key in keys)
    return any(k and (len(k) > 1 or k.isdigit()) and f" {k} " in words for k in normalized)


def grade_sample(text: str, keys: list[str]) -> str:
    """The rules' ``matches_key`` for a policy sample: True where the key (or an alias) is in it;
    Uncertain where it hedges or declines and commits to no answer (a decline is not a wrong
    answer: A.1 pairs "refusal > wrong" only against a real wrong answer); False otherwise."""
    if mentions_key(text, keys):
        return "True"
    return "Uncertain" if expresses_uncertainty(text) or declines(text) else "False"

# -- bogus questions by perturbation -------------------------------------------------------

_SYLLABLES_FIRST = ["Hal", "Ev", "Mar", "Ost", "Lin", "Ter", "Bry", "Cas", "Del", "Fen", "Gil", "Ives", "Jor",
                    "Kel", "Lor", "Nor", "Per", "Quin", "Ros", "Sil", "Tam", "Ul", "Val", "Wen"]
_GIVEN_NAMES = ["Halvard", "Evelina", "Marten", "Osric", "Linnea", "Teodor", "Bryn", "Cassia", "Delphine", "Fenna",
                "Gilbert", "Ivo", "Joran", "Kelda", "Loretta", "Nils", "Perrin", "Quentin", "Rosalind", "Silas",
                "Tamsin", "Ulrich", "Valentin", "Wendeline", "Agnes", "Benedikt", "Clemence", "Dorian"]
_SYLLABLES_LAST = ["drick", "mont", "vard", "wyn", "ton", "berg", "feld", "ley", "mark", "stead", "rin", "holm",
                   "croft", "dale", "ford", "gard", "ris", "quist", "wick", "vell"]
_TITLE_ADJ = ["Silent", "Amber", "Northern", "Hollow", "Crimson", "Distant", "Glass", "Winter", "Lost", "Iron",
              "Seventh", "Quiet", "Golden", "Pale"]
_TITLE_NOUN = ["Lantern", "Harbour", "Orchard", "Cartographer", "Meridian", "Tide", "Archive", "Garden",
               "Pilgrim", "Sextant", "Bell", "Compass", "Lighthouse", "Vineyard"]
_TITLE_PLACE = ["Valdemar", "Esterhall", "Corvin", "Maren", "Thessaly Row", "Lindqvist", "Brandholm", "Osterby"]

# Real countries, grouped so a swap stays plausible (same region).
COUNTRY_GROUPS = [
    ["France", "Spain", "Italy", "Portugal", "Belgium", "Netherlands", "Switzerland", "Austria", "Germany"],
    ["Norway", "Sweden", "Denmark", "Finland", "Iceland"],
    ["Poland", "Hungary", "Romania", "Bulgaria", "Czech Republic", "Slovakia", "Ukraine"],
    ["England", "Scotland", "Ireland", "Wales"],
    ["Japan", "China", "Korea", "Vietnam", "Thailand", "Indonesia", "Philippines"],
    ["India", "Pakistan", "Bangladesh", "Sri Lanka", "Nepal"],
    ["Egypt", "Morocco", "Tunisia", "Algeria", "Libya"],
    ["Nigeria", "Ghana", "Kenya", "Ethiopia", "Tanzania", "Senegal", "South Africa"],
    ["Brazil", "Argentina", "Chile", "Peru", "Colombia", "Uruguay", "Mexico"],
    ["Canada", "Australia", "New Zealand"],
    ["Russia", "Turkey", "Greece", "Iran", "Iraq"],
]
_COUNTRY_TO_GROUP = {c: g for g in COUNTRY_GROUPS for c in g}
_COUNTRY_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _COUNTRY_TO_GROUP), key=len, reverse=True)) + r")\b")
# A country that IS the asked-for answer cannot be swapped: the question would stay answerable.
_ANSWERABLE_AFTER_SWAP = re.compile(r"\b(capital|largest city|currency|official language|flag|population|"
                                    r"national|border|located|which country|what country)\b", re.IGNORECASE)
_YEAR_RE = re.compile(r"\b(1[0-9]{3}|20[0-2][0-9])\b")
# A four-digit number that a number word leads into is a quantity, not a year: "the number 1000 in
# Roman numerals" -> "973" or "the base-10 logarithm of 1000" -> "987" still have an answer.
_QUANTITY_BEFORE_RE = re.compile(r"\b(number|numeral|logarithm of|root of|square of|cube of|factorial of|"
                                 r"plus|minus|times|divided by|multiplied by)\s*$", re.IGNORECASE)
_QUOTED_RE = re.compile(r"([\"'\u2018\u201c])([A-Z][^\"'\u2019\u201d]{2,60})([\"'\u2019\u201d])")
_NAME_RE = re.compile(r"(?<![\"'\w])((?:[A-Z][a-z]+\.? )(?:(?:de|da|van|von|le|la|del) )?[A-Z][a-z]+(?:-[A-Z][a-z]+)?)\b")
_NOT_NAME_START = {"What", "Which", "Who", "Whom", "Whose", "When", "Where", "Why", "How", "In", "On", "At",
                   "The", "A", "An", "Of", "From", "By", "For", "Is", "Was", "Did", "Does", "To", "As", "If",
                   "Mount", "Lake", "River", "Saint", "St.", "Cape", "Gulf", "Sea", "Bay", "North", "South",
                   "East", "West", "New", "Old", "Great", "Holy", "World", "Battle", "Treaty", "Peace", "Roman",
                   "Greek", "Norse", "Egyptian", "Chinese", "Japanese", "Latin", "English", "French", "German",
                   "Prime", "Pope", "King", "Queen", "Emperor", "President", "Sir", "Lord", "Lady", "Magna",
                   "Machu", "Prince", "Princess", "General", "Captain", "Doctor", "Professor", "Mr.", "Mrs.", "Dr."}


# Last words that make a capitalised run a place or a thing, not a person.
_PLACE_WORDS = {"Tower", "Sea", "River", "Falls", "Ocean", "Kingdom", "Mountains", "Mountain", "Island", "Islands",
                "Canal", "Desert", "States", "Republic", "Empire", "Lake", "Bay", "Strait", "Gulf", "Valley", "Park",
                "Bridge", "Palace", "Cathedral", "Church", "Temple", "Wall", "Street", "Square", "City", "Peninsula",
                "Channel", "Coast", "Forest", "Range", "Union", "Nations", "Games", "Cup", "War", "Revolution",
                "Prize", "Award", "Dynasty", "Age", "Era", "Party", "Company", "University", "Museum", "Station",
                "Galaxy", "Way", "System", "Theorem", "Law", "Day", "Eve", "Abbey", "Castle", "Gate", "Glacier",
                "Reef", "Basin", "Plateau", "Delta", "Harbor", "Harbour", "Airport", "Stadium", "Festival"}


def invented_name(rng: random.Random) -> str:
    """A real given name and an invented surname: "Halvard Ostermark"."""
    return f"{rng.choice(_GIVEN_NAMES)} {rng.choice(_SYLLABLES_FIRST)}{rng.choice(_SYLLABLES_LAST)}"


def invented_title(rng: random.Random) -> str:
    return rng.choice([
        f"The {rng.choice(_TITLE_ADJ)} {rng.choice(_TITLE_NOUN)}",
        f"The {rng.choice(_TITLE_NOUN)} of {rng.choice(_TITLE_PLACE)}",
        f"{rng.choice(_TITLE_ADJ)} {rng.choice(_TITLE_NOUN)}s",
    ])


@dataclass(frozen=True)
class Perturbation:
    question: str
    method: str  # year_shift | title_swap | name_swap | place_swap
    original: str  # the span replaced
    replacement: str
    quality: int  # 1-5, fixed per method (documented in README)


# A moved country often leaves a question that still has an answer ("first Prime Minister of
# independent India" -> "... of Pakistan", "the ocean between Africa and Australia" -> "... and New
# Zealand": 4 of the 10 place swaps of a small run), and a refusal there teaches the policy to
# decline what it could answer. So place swaps rate 2, below the default ``bogus_min_quality`` of 3:
# kept only where a profile lowers it.
METHOD_QUALITY = {"name_swap": 4, "title_swap": 4, "year_shift": 3, "place_swap": 2}


def perturb_question(question: str, seed_key: str) -> Perturbation | None:
    """A plausible but unanswerable variant of ``question``, or None when no rule applies.

    Tried in order: invent a person in place of a named one; invent a work in place of a
    quoted title; move a year; move a place to another real country of the same region.
    """
    rng = random.Random(f"bogus:{seed_key}")
    for method in ("name_swap", "title_swap", "year_shift", "place_swap"):
        found = _APPLY[method](question, rng)
        if found is not None and found[0] != question:
            new_question, original, replacement = found
            return Perturbation(new_question, method, original, replacement, METHOD_QUALITY[method])
    return None


def _name_swap(question: str, rng: random.Random):
    quoted_spans = [m.span() for m in _QUOTED_RE.finditer(question)]
    for m in _NAME_RE.finditer(question):
        name = m.group(1)
        first, last = name.split()[0], name.split()[-1]
        if m.start() == 0 or first in _NOT_NAME_START or last in _PLACE_WORDS or _COUNTRY_RE.search(name):
            continue
        if question[: m.start()].rstrip().lower().endswith(("the", "of the")):
            continue  # "the Volga River", "the Eiffel Tower": places and things take an article
        if any(a <= m.start() < b for a, b in quoted_spans):
            continue
        replacement = invented_name(rng)
        return question[: m.start()] + replacement + question[m.end():], name, replacement
    return None


def _title_swap(question: str, rng: random.Random):
    m = _QUOTED_RE.search(question)
    if not m:
        return None
    replacement = invented_title(rng)
    return question[: m.start(2)] + replacement + question[m.end(2):], m.group(2), replacement


def _year_shift(question: str, rng: random.Random):
    m = _YEAR_RE.search(question)
    if not m or _QUANTITY_BEFORE_RE.search(question[:m.start()]):
        return None
    year = int(m.group(1))
    shifted = year + rng.choice([-1, 1]) * rng.randint(7, 40)
    shifted = min(shifted, 2020)
    if shifted == year:
        shifted = year - 11
    return question[: m.start()] + str(shifted) + question[m.end():], m.group(1), str(shifted)


def _place_swap(question: str, rng: random.Random):
    if _ANSWERABLE_AFTER_SWAP.search(question):
        return None
    m = _COUNTRY_RE.search(question)
    if not m:
        return None
    country = m.group(1)
    replacement = rng.choice([c for c in _COUNTRY_TO_GROUP[country] if c != country])
    return question[: m.start()] + replacement + question[m.end():], country, replacement


_APPLY = {"name_swap": _name_swap, "title_swap": _title_swap, "year_shift": _year_shift, "place_swap": _place_swap}

# -- reference answers and refusals from templates -----------------------------------------

_ANSWER_TEMPLATES = ["The answer is {a}.", "It is {a}.", "{a}.", "That would be {a}.", "The correct answer is {a}."]

_REFUSAL_REAL = [
    "I'm not sure of the answer to that, and I'd rather not guess.",
    "I don't know the answer to this one with any confidence, so I won't guess.",
    "I'm not certain about this. It's a {topic} question I don't have reliable information on.",
    "I can't answer that reliably. I'd suggest checking a trustworthy {topic} reference.",
    "I'm not confident enough to answer this. Rather than guess, I'll say I don't know.",
    "I don't know. I could give a guess, but it would likely be wrong.",
]
_REFUSAL_BOGUS = [
    "I'm not aware of {entity}, and I couldn't find any record of it, so I can't answer that.",
    "I don't have any reliable information about {entity}. It may not exist, so I'd rather not guess.",
    "I'm not sure that premise is right: I know of no {entity}, so I can't give an answer.",
    "I can't confirm that {entity} exists, so I won't make up an answer.",
    "I don't know of {entity}. If you have a source, I'm happy to look at the details with you.",
]
_BOGUS_GENERIC = [
    "I'm not aware of that, and I can't find any record of it, so I'd rather not guess.",
    "I'm not sure the premise of this question is right, so I can't answer it reliably.",
    "I don't have reliable information about that, and I won't make up an answer.",
]


def _pick(options: list[str], key: str) -> str:
    return options[random.Random(key).randrange(len(options))]


def template_reference_answer(question_id: str, answer: str) -> str:
    return _pick(_ANSWER_TEMPLATES, f"ref:{question_id}").format(a=answer)


def template_refusal(question_id: str, topic: str = "", entity: str | None = None, bogus: bool = False) -> str:
    key = f"refusal:{question_id}"
    if bogus:
        return _pick(_REFUSAL_BOGUS, key).format(entity=entity) if entity else _pick(_BOGUS_GENERIC, key)
    return _pick(_REFUSAL_REAL, key).format(topic=topic.replace("_", " and ") or "general")
