"""Whether a teacher reply may stand as the reference answer to a seed trivia question.

``reference_answers`` asks the teacher for "a short, natural, correct answer ... in one
sentence" and hands it the answer key. The reply becomes an SFT completion ("answer" rows of
``hallucination_sft_data``) and the chosen side of "answer > refusal" DPO pairs, so it teaches
the policy how to *answer what it knows*. Containing the key is necessary but not enough: the key
is in the prompt, so a reply can contain it while being useless as a training target:

* an **echo** repeats the request instead of answering it (``"I am not sure of the answer to
  that question. Question: ... Answer key: Rome"``): trained on, it teaches the policy to print
  prompt scaffolding, and the key it "contains" is the one it was handed;
* a **hedged** answer (``"I think it might be Rome."``) is the chosen side of a pair whose
  rejected side is a refusal: it would teach the policy to guess with a hedge, the behaviour
  App. A.1 trains away, where a known answer should be stated plainly;
* a **cut-off** reply (finish reason ``length``, or text that stops mid-sentence) gets the
  end-of-turn token appended in SFT, so it would teach the policy to stop mid-sentence.

``reference_problem`` names the first problem found, or None for a usable reply; the asset
records the name as ``rejected_reason`` and falls back to the rules template answer, which
always states the key plainly. A false rejection therefore costs only a plainer answer, while a
false acceptance puts a bad target into training data: the checks lean towards rejecting.

Pure logic: no Dagster, no teacher client (see ARCHITECTURE.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..core.refusal import declines, expresses_uncertainty
from ..core.text import normalize_question
from . import prompts, rules

# The reasons, in the order they are checked (the first that applies is recorded).
EMPTY = "empty reply"
ECHO = "echoes the prompt"
CUT_OFF = "cut off at the token limit"
MID_SENTENCE = "ends mid-sentence"
NO_KEY = "does not contain the key or an alias"
HEDGED = "hedged or uncertain"
REASONS = (EMPTY, ECHO, CUT_OFF, MID_SENTENCE, NO_KEY, HEDGED)

# Finish reasons that mean the completion hit its token limit (OpenAI-compatible servers say
# "length"; some proxies pass through other vendors' names).
TRUNCATED_FINISH_REASONS = frozenset({"length", "max_tokens", "max_output_tokens"})

# A complete sentence ends with . ! or ?, optionally closed by quotes, brackets or emphasis. A
# trailing ellipsis ("... is Rome..." / "…") trails off: not an ending ("Jr.." still ends one).
_SENTENCE_END = re.compile(r"(?<!\.\.)[.!?][\"'\u2019\u201d)\]*_`]*$")

# A prompt label: a line of the request's user message that starts with words and a colon
# ("Question:", "Answer key:").
_LABEL = re.compile(r"^\s*([A-Za-z][A-Za-z ()-]{0,40}?)\s*:", re.MULTILINE)
# Instruction fragments shorter than this many words are too common to call an echo.
_MIN_FRAGMENT_WORDS = 4

# Hedges on top of ``refusal.expresses_uncertainty`` and ``refusal.declines`` (which only see a reply
# that says it does not know): the words with which a reply commits to an answer but not fully.
_HEDGE = re.compile(
    r"\b(i think|i believe|i guess|i suspect|i'?d (say|guess)|my (best )?guess|if i (recall|remember)|"
    r"as far as i (know|recall|remember)|to (the best of )?my knowledge|i'?m (fairly|pretty|reasonably) "
    r"(sure|certain|confident)|probably|likely|maybe|perhaps|possibly|presumably|apparently|"
    r"(might|could|may) (be|have been)|it seems|seems to be|not (entirely|completely|100%?) sure)\b",
    re.IGNORECASE)


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def prompt_scaffolding(question: str, key: str) -> tuple[list[str], list[str]]:
    """What the reference-answer request contains besides the question and the key, taken from
    ``prompts.reference_answer_messages`` itself (so a changed prompt changes this too):
    (labels of the user message, e.g. ["question", "answer key"]; instruction fragments of the
    system message, normalised, e.g. "use the given answer key")."""
    messages = prompts.reference_answer_messages(question, key)
    system = " ".join(m["content"] for m in messages if m["role"] == "system")
    user = "\n".join(m["content"] for m in messages if m["role"] != "system")
    labels = [_squash(m.group(1)) for m in _LABEL.finditer(user)]
    fragments = [normalize_question(f) for f in re.split(r"[.;:!?]", system)]
    return labels, [f for f in fragments if len(f.split()) >= _MIN_FRAGMENT_WORDS]


def echoes_prompt(text: str, question: str | None, key: str) -> bool:
    """True if ``text`` repeats the request's scaffolding instead of (only) answering: a label of
    the user message followed by a colon ("Question:", "Answer key:"), a multi-word label
    anywhere ("the answer key says ..." refers to the prompt, not to the world), an instruction
    fragment of the system message ("use the given answer key"), or the question itself, word
    for word with its question mark (an answer may restate the question's words, "The capital of
    Italy is Rome.", but not re-ask it)."""
    labels, fragments = prompt_scaffolding(question or "", key)
    squashed = _squash(text)
    for label in labels:
        if re.search(rf"\b{re.escape(label)}\s*:", squashed):
            return True
        if " " in label and re.search(rf"\b{re.escape(label)}\b", squashed):
            return True
    normalized = f" {normalize_question(text)} "
    if any(f" {fragment} " in normalized for fragment in fragments):
        return True
    asked = _squash(question or "")
    return asked.endswith("?") and len(asked.split()) >= 3 and asked in squashed


def cut_off(text: str, finish_reason: str | None) -> str | None:
    """``CUT_OFF`` if the endpoint says the reply hit its token limit, ``MID_SENTENCE`` if the
    text does not end a sentence (no final . ! or ?, or a trailing ellipsis; this also catches a
    cut reply whose finish reason was lost, e.g. a server that always says "stop"), else None.
    An unpunctuated but complete answer ("Rome") is rejected too: the prompt asks for one
    sentence, and the template answer is one."""
    if (finish_reason or "").lower() in TRUNCATED_FINISH_REASONS:
        return CUT_OFF
    return None if _SENTENCE_END.search(text.strip()) else MID_SENTENCE


def hedges(text: str, keys: Sequence[str]) -> bool:
    """True if ``text`` hedges, expresses uncertainty or declines (``refusal.expresses_uncertainty``,
    ``refusal.declines``, or a hedge word such as "I think", "probably", "might be"). The keys are
    blanked out first, so an answer whose key contains such a word ("Maybe Baby") is not a hedge."""
    stripped = text
    for key in sorted((k for k in keys if k and k.strip()), key=len, reverse=True):
        stripped = re.sub(re.escape(key.strip()), " ", stripped, flags=re.IGNORECASE)
    return bool(expresses_uncertainty(stripped) or declines(stripped) or _HEDGE.search(stripped))


def reference_problem(text: str | None, keys: Sequence[str], question: str | None = None,
                      finish_reason: str | None = None) -> str | None:
    """Why ``text`` (a teacher reply to ``requests.reference_answer``) cannot be the reference
    answer, or None if it can. ``keys``: the answer key first, then its aliases
    (``requests.seed_keys``); ``question``: the seed question sent; ``finish_reason``: the
    endpoint's (``TeacherReply.finish_reason``; None if unknown).

    Checked in this order, the first that applies being the reason: ``EMPTY``; ``ECHO``
    (``echoes_prompt``: before anything else, since an echo contains the key it was handed and
    usually ends on it, unpunctuated); ``CUT_OFF`` / ``MID_SENTENCE`` (``cut_off``); ``NO_KEY``
    (``rules.mentions_key``); ``HEDGED`` (``hedges``: last, so a reply that declines and gives
    no answer at all reads as ``NO_KEY``, the more basic fault)."""
    text = (text or "").strip()
    if not text:
        return EMPTY
    keys = [k for k in keys if k]
    if echoes_prompt(text, question, keys[0] if keys else ""):
        return ECHO
    truncated = cut_off(text, finish_reason)
    if truncated:
        return truncated
    if not rules.mentions_key(text, keys):
        return NO_KEY
    if hedges(text, keys):
        return HEDGED
    return None
