"""The report's decision rule (App. A.1) over graded policy samples.

- p_correct = n_correct / n_samples (Uncertain counts as not correct).
- SFT: (question, reference answer) where p_correct >= ``usually_right``; (question, refusal)
  otherwise; (bogus question, refusal) always.
- DPO: reference answer > refusal where the policy was right at least once; refusal > one of
  the policy's own wrong answers where it was wrong at least once. Both sides are cut to
  their first ``max_tokens`` tokens, and the rejected side must already be wrong within them
  (``commits_to_wrong_answer``).
- DPO on bogus questions (``bogus_pairs``): a bogus question has no right answer, so every
  answer that commits to something is wrong, and A.1's "refusal > wrong answer where it is at
  least sometimes wrong" applies as it stands: the bogus refusal > the policy's own committed
  answer, kind ``bogus_refusal_over_answer``. The report lists bogus questions only in the SFT
  data; without these pairs the DPO stages see "decline" only on real questions the policy gets
  wrong, and on the small run stage 1 took the bogus questions refused from 64% (SFT) to 31%.
- Knowledge a declining policy hides (``known``): A.1 reads "the policy knows it" from its
  right samples. A DPO stage re-samples the model it trains, which after SFT declines many
  questions every time; a decline says nothing about what the model knows, so a question the
  base model got right but the stage's model now always declines would get no "answer >
  refusal" pair, only "refusal > wrong" from its odd wrong sample, and each stage would decline
  more of what the base model knew (seen on the small run: stage 2's pair for "What is the
  capital of France?", which the base model got right 6 of 8 times, was "I can't answer that" >
  "L'Étoile"). ``known`` names the questions to treat as right at least once whatever this
  policy's samples say (the profile's ``a1_known_from_base``: those the base model got right).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..evaluation.graders import GradeItem
from ..evaluation.rule_grader import offered_candidates, rule_letter
from ..core.text import normalize_answer
from .rules import mentions_key

DEFAULT_USUALLY_RIGHT = 0.5
DPO_TOKENS = 5
BOGUS_KIND = "bogus_refusal_over_answer"


@dataclass(frozen=True)
class QuestionStats:
    question_id: str
    n_samples: int
    n_correct: int
    n_incorrect: int
    n_uncertain: int

    @property
    def p_correct(self) -> float:
        return self.n_correct / self.n_samples if self.n_samples else 0.0


def question_stats(grades: Iterable[tuple[str, str]]) -> dict[str, QuestionStats]:
    """(question_id, grade) pairs -> stats per question. Grades: True / False / Uncertain."""
    counts: dict[str, Counter] = {}
    for question_id, grade in grades:
        counts.setdefault(question_id, Counter())[grade] += 1
    return {
        qid: QuestionStats(qid, sum(c.values()), c["True"], c["False"], c["Uncertain"])
        for qid, c in counts.items()
    }


def sft_target(stats: QuestionStats, usually_right: float = DEFAULT_USUALLY_RIGHT) -> str:
    """``answer`` where the policy is usually right, else ``refusal``."""
    return "answer" if stats.p_correct >= usually_right else "refusal"


def needs_refusal(stats: QuestionStats) -> bool:
    """A refusal is written for every question the policy was sampled on: it is the SFT target
    where the policy is usually wrong, the chosen side of "refusal > wrong" where it was wrong at
    least once, and the rejected side of "answer > refusal" where it was right at least once."""
    return stats.n_samples > 0


def dpo_pair_kinds(stats: QuestionStats, known: bool = False) -> list[str]:
    """``answer_over_refusal`` if right at least once (or ``known``: see the module docstring);
    ``refusal_over_wrong`` if wrong at least once."""
    kinds = []
    if stats.n_correct >= 1 or known:
        kinds.append("answer_over_refusal")
    if stats.n_incorrect >= 1:
        kinds.append("refusal_over_wrong")
    return kinds


def answers_by_frequency(samples: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """Distinct answers, most common (by normalised text) first, earliest sample first within a
    count. ``samples``: (sample_index, text), e.g. of the samples graded False."""
    samples = sorted(samples)
    counts = Counter(normalize_answer(text) for _, text in samples)
    first: dict[str, tuple[int, str]] = {}
    for index, text in samples:
        first.setdefault(normalize_answer(text), (index, text))
    return sorted(first.values(), key=lambda s: (-counts[normalize_answer(s[1])], s[0]))


def commits_to_wrong_answer(question: str, keys: list[str], opening: str) -> bool:
    """Whether ``opening`` (the first tokens of a wrong answer) already says something wrong.

    The report keeps only the first 5 tokens of each side of an A.1 pair. A strong model's wrong
    answer commits within them ("The answer is Istanbul."); a small one's often restates the
    question or clears its throat first ("The chemical symbol for tungsten", "That is a classic
    example", "To answer this, I"), and those 5 tokens are how its right answers begin too. A
    "refusal > wrong" pair on such an opening teaches the model to stop opening answers at all,
    not to decline what it does not know: on the small run, stage 1 trained on 6 such pairs took
    SimpleQA "not attempted" from 72% (SFT) to 92% and kept 9% of the base model's right answers.
    So an opening counts only where the SimpleQA rules grade it incorrect on its own, it names a
    candidate that is a number or a capitalised word (for a lower-case key the rules' candidates
    also include any content word, "classic" and "example" among them), and it is not cut inside
    what may be the key ("The answer is 1" of "1453") or inside a word of the question ("The
    chemical symbol for P" of "phosphorus")."""
    opening = _without_cut_question_word(question, opening)
    item = GradeItem(question, keys[0] if keys else None, opening, tuple(keys[1:]), bogus=not keys)
    if rule_letter(item) != "B":
        return False
    named = [c for c in offered_candidates(item) if c[0].isupper() or any(ch.isdigit() for ch in c)]
    return bool(named) and not _cut_inside_key(question, keys, opening)


def _without_cut_question_word(question: str, opening: str) -> str:
    """``opening`` less a last word cut inside one of the question's own words ("The chemical
    symbol for P" of "... for phosphorus?"): that "P" names nothing yet."""
    if _ends_inside(opening, set(normalize_answer(question).split())):
        return opening[:len(opening) - len(opening.split()[-1])].rstrip()
    return opening


def opens_with_key(question: str, keys: list[str], opening: str) -> bool:
    """Whether ``opening`` (the first tokens of a right answer) already gives the answer: the
    SimpleQA rules grade it correct on its own, or it is cut inside the key ("That would be 1" of
    "1914", "It is Jawaharl" of "Jawaharlal Nehru"). The chosen side of "answer > refusal" must:
    "The correct answer is" > "I'm not sure" teaches the model to open an answer to any question,
    which is the mirror image of the collapse ``commits_to_wrong_answer`` prevents."""
    item = GradeItem(question, keys[0] if keys else None, opening, tuple(keys[1:]))
    return rule_letter(item) == "A" or _cut_inside_key(question, keys, opening)


def _cut_inside_key(question: str, keys: list[str], opening: str) -> bool:
    """Whether ``opening`` ends in the middle of a word that may begin one of the key's own words
    (not one of the question's): "The answer is 1" of "1453"."""
    asked = set(normalize_answer(question).split())
    return _ends_inside(opening, {w for key in keys for w in normalize_answer(key).split()} - asked)


def _ends_inside(opening: str, words: set[str]) -> bool:
    """Whether ``opening`` ends in the middle of one of ``words`` (normalised): its last word is
    a proper beginning of one. An opening that ends at a space or a punctuation mark ends on a
    whole word."""
    if not opening or not opening[-1].isalnum():
        return False
    last = normalize_answer(opening).split()[-1:]
    return bool(last) and any(w != last[0] and w.startswith(last[0]) for w in words)


def first_tokens(text: str, encode: Callable[[str], list[int]], decode: Callable[[list[int]], str],
                 n: int = DPO_TOKENS) -> tuple[str, list[int]]:
    """The first ``n`` tokens of ``text`` (no special tokens) and their decoded text."""
    ids = list(encode(text))[:n]
    return decode(ids), ids


@dataclass(frozen=True)
class Sample:
    """One graded policy sample of a question: ``grade`` True / False / Uncertain."""
    sample_id: str
    index: int
    text: str
    grade: str


def follows_a1(kind: str, samples: list[Sample], known: bool = False) -> bool:
    """Whether a pair of ``kind`` may exist for a question with these graded samples (A.1's rule;
    a bogus question's pair needs a committed answer, graded False by ``bogus_grade``; ``known``:
    the question counts as right at least once, see the module docstring)."""
    if kind == BOGUS_KIND:
        kind = "refusal_over_wrong"
    return kind in dpo_pair_kinds(_stats("", samples), known)


def bogus_grade(question: str, text: str) -> str:
    """A sample's grade on a bogus question: "False" where it commits to an answer (the SimpleQA
    rules grade it B: it names a candidate the question does not), "Uncertain" where it declines
    or names nothing. Nothing is "True": a bogus question has no answer to get right."""
    return "False" if rule_letter(GradeItem(question, None, text, bogus=True)) == "B" else "Uncertain"


def graded_bogus_samples(question: str, texts: Iterable[tuple[str, str]]) -> list[Sample]:
    """(sample id, text) of the policy's samples on one bogus question, in sample order, graded by
    ``bogus_grade``."""
    return [Sample(sample_id, i, text, bogus_grade(question, text)) for i, (sample_id, text) in enumerate(texts)]


def bogus_pairs(questions: dict[str, str], samples: dict[str, list[Sample]], refusals: dict[str, tuple[str, str]],
                encode: Callable[[str], list[int]], decode: Callable[[list[int]], str], n_tokens: int = DPO_TOKENS,
                *, tally: Counter | None = None, original_keys: dict[str, list[str]] | None = None) -> list[dict]:
    """A.1's "refusal > wrong answer" on bogus questions (kind ``BOGUS_KIND``).

    ``samples``: bogus question id -> the policy's samples graded by ``graded_bogus_samples``;
    ``refusals``: bogus question id -> (text, row id) of its refusal. The rejected side is the most
    common answer whose first ``n_tokens`` tokens already commit to something (a number or a
    capitalised name the question does not contain: "The capital of Veloria is Lumen", not "The
    capital of"). Rows as ``a1_pairs``.

    ``original_keys``: bogus question id -> the answer and aliases of the real question it was
    perturbed from. A sample that names one is never the rejected side (tallied
    ``names_the_original_key``, per sample): "Which French emperor was defeated at Waterloo in
    1829?" -> "Napoleon Bonaparte" answers the real question under a shifted date, and rejecting
    it teaches the policy to withhold "Napoleon" from Waterloo, which it knows (the report's bogus
    questions are unanswerable, not a known question with one detail off)."""
    tally = tally if tally is not None else Counter()
    original_keys = original_keys or {}
    kept = {}
    for qid, graded in samples.items():
        keys = original_keys.get(qid, [])
        naming = [s for s in graded if s.grade == "False" and keys and mentions_key(s.text, keys)]
        tally["names_the_original_key"] += len(naming)
        kept[qid] = [s for s in graded if s not in naming]
    if not tally["names_the_original_key"]:
        del tally["names_the_original_key"]
    rows = a1_pairs(questions, kept, {}, refusals, encode, decode, n_tokens,
                    keys={qid: [] for qid in samples}, tally=tally)
    return [{**row, "kind": BOGUS_KIND} for row in rows]


def _stats(question_id: str, samples: list[Sample]) -> QuestionStats:
    stats = question_stats((question_id, s.grade) for s in samples)
    return stats.get(question_id, QuestionStats(question_id, 0, 0, 0, 0))


def a1_pairs(questions: dict[str, str], samples: dict[str, list[Sample]], answers: dict[str, tuple[str, str]],
             refusals: dict[str, tuple[str, str]], encode: Callable[[str], list[int]],
             decode: Callable[[list[int]], str], n_tokens: int = DPO_TOKENS, *, keys: dict[str, list[str]],
             tally: Counter | None = None, known: Iterable[str] = ()) -> list[dict]:
    """App. A.1's DPO pairs over graded samples of one policy.

    ``questions``: question id -> text; ``samples``: question id -> its graded samples;
    ``answers`` / ``refusals``: question id -> (text, row id) of the reference answer / refusal.
    Where the policy was right at least once: reference answer > refusal, or, where the reference
    answer's first ``n_tokens`` tokens do not yet give the answer (``opens_with_key``), the
    policy's most common right answer whose do (the reference as is where none does); where it
    was wrong at least once: refusal > its most common wrong answer whose first ``n_tokens``
    tokens already commit to a wrong answer (``commits_to_wrong_answer``), and no pair where none
    does. Both are judged against the question's ``keys`` (answer and aliases). Both sides are
    cut to their first ``n_tokens`` tokens; a pair identical after the cut, or a question without
    a refusal, gives none. A question in ``known`` that this policy never got right still gets
    "reference answer > refusal" (tallied ``known_not_shown``). ``tally``, when given, counts what
    was skipped or kept as is, by reason. Rows: prompt, chosen, rejected, *_token_ids, kind, question_id, p_correct, chosen_from,
    rejected_from (no ``id``: the caller names rows)."""
    tally = tally if tally is not None else Counter()
    known = set(known)
    rows = []
    for qid in sorted(samples):
        graded = samples[qid]
        stats = _stats(qid, graded)
        if qid not in refusals:
            tally["no_refusal"] += 1
            continue
        refusal, refusal_id = refusals[qid]
        if qid in known and stats.n_correct == 0 and qid in answers:
            tally["known_not_shown"] += 1
        for kind in dpo_pair_kinds(stats, qid in known):
            if kind == "answer_over_refusal":
                right = [s for s in graded if s.grade == "True"]
                offered = ([answers[qid]] if qid in answers else []) + [
                    (text, next(s.sample_id for s in right if s.index == index))
                    for index, text in answers_by_frequency((s.index, s.text) for s in right)]
                if not offered:
                    continue
                pick = next(((text, source) for text, source in offered if opens_with_key(
                    questions[qid], keys.get(qid, []), first_tokens(text, encode, decode, n_tokens)[0])), None)
                if pick is None:  # A.1 gives every question right at least once its pair: the reference as is
                    tally["answer_opens_without_the_key"] += 1
                    pick = offered[0]
                (chosen, chosen_from), (rejected, rejected_from) = pick, (refusal, refusal_id)
            else:
                wrong = [s for s in graded if s.grade == "False"]
                ranked = answers_by_frequency((s.index, s.text) for s in wrong)
                committed = next(((index, text) for index, text in ranked if commits_to_wrong_answer(
                    questions[qid], keys.get(qid, []), first_tokens(text, encode, decode, n_tokens)[0])), None)
                if committed is None:
                    tally["wrong_answers_open_without_committing"] += 1
                    continue
                index, text = committed
                chosen, chosen_from = refusal, refusal_id
                rejected, rejected_from = text, next(s.sample_id for s in wrong if s.index == index)
            chosen_text, chosen_ids = first_tokens(chosen, encode, decode, n_tokens)
            rejected_text, rejected_ids = first_tokens(rejected, encode, decode, n_tokens)
            if chosen_ids == rejected_ids:
                tally["identical_after_cut"] += 1
                continue  # identical after the cut: no preference signal
            rows.append({"prompt": questions[qid], "chosen": chosen_text, "rejected": rejected_text,
                         "chosen_token_ids": chosen_ids, "rejected_token_ids": rejected_ids, "kind": kind,
                         "question_id": qid, "p_correct": stats.p_correct, "chosen_from": chosen_from,
                         "rejected_from": rejected_from})
    return rows
