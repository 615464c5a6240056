"""Pure logic for the SFT mixture: safety refusals, mixing by shares, safety pairs and the SFT
teacher requests. (The refusal detectors, ``is_refusal`` and ``refuses``, live in ``refusal.py``
and are importable from here too.)"""

from __future__ import annotations

import hashlib
import random

from ..core.refusal import declines, is_refusal, refuses
from ..teacher import ChatRequest
from ..core.text import last_full_sentence, loops

_SAFETY_REFUSALS = [
    "I can't help with that. It could cause real harm to people.",
    "I won't help with this request, because it could be used to hurt someone.",
    "Sorry, I can't assist with that. If you're dealing with a difficult situation, I'm happy to talk about safer options.",
    "I can't provide that. It could put people in danger or break the law.",
    "That's not something I can help with. If you have a related question that's safe, I'm glad to help.",
]
_SELF_HARM_REFUSAL = ("I'm really sorry you're feeling this way, but I can't help with that. You don't have to go "
                      "through this alone: please reach out to someone you trust or a local crisis line right now.")


def template_safety_refusal(prompt_id: str, category: str) -> str:
    if category == "self_harm":
        return _SELF_HARM_REFUSAL
    return _SAFETY_REFUSALS[random.Random(f"safety:{prompt_id}").randrange(len(_SAFETY_REFUSALS))]


def _stable_order(rows: list[dict], key: str = "id") -> list[dict]:
    return sorted(rows, key=lambda r: hashlib.sha256(str(r[key]).encode()).hexdigest())


def mix_by_shares(sources: dict[str, list[dict]], shares: dict[str, float]) -> dict[str, list[dict]]:
    """Take rows from each source in the given shares, as many as the scarcest source allows.

    With shares {a: 0.5, b: 0.5} and 10 rows of a, 4 of b: 4 of each. Rows are picked in a
    stable pseudo-random order (by id), so the same inputs always give the same mixture.
    Sources with share 0 or missing are left out.
    """
    active = {k: v for k, v in shares.items() if v > 0 and sources.get(k)}
    if not active:
        return {k: [] for k in sources}
    total_share = sum(active.values())
    total = min(len(sources[k]) / (v / total_share) for k, v in active.items())
    picked = {}
    for name, rows in sources.items():
        share = active.get(name, 0) / total_share
        n = min(len(rows), int(round(total * share)))
        picked[name] = _stable_order(rows)[:n]
    return picked


DECLINE_KINDS = ("refusal", "bogus_refusal")


def cap_declines(rows: list[dict], max_share: float) -> list[dict]:
    """The hallucination SFT rows with declines (``refusal``, ``bogus_refusal``) at most
    ``max_share`` of them; answers are all kept, declines taken in a stable pseudo-random order.

    A small policy is wrong on most trivia, so A.1's rule alone makes its SFT data mostly "I don't
    know": trained on that, it declines what it knows too (measured: "What is the capital of France?"
    -> "I'm not sure. I don't know. I don't know..."). The report's SFT kept 54% of the base model's
    correct answers; answering what the model knows has to be taught as often as declining."""
    if not 0 < max_share <= 1:
        raise ValueError(f"a decline share must be in (0, 1]; got {max_share}")
    answers = [r for r in rows if r["kind"] not in DECLINE_KINDS]
    declines = [r for r in rows if r["kind"] in DECLINE_KINDS]
    if max_share >= 1 or not declines:
        return list(rows)
    keep = {id(r) for r in _stable_order(declines, "source_id")[:int(max_share / (1 - max_share) * len(answers))]}
    return answers + [r for r in declines if id(r) in keep]


def safety_pairs(prompts: list[dict], answers: dict[str, tuple[str, str]],
                 responses: dict[str, str]) -> list[dict]:
    """Safety preference pairs for the DPO mixes, in the report's "unknown + safety" spirit.

    ``prompts``: safety prompts (id, prompt, kind, category); ``answers``: benign prompt id ->
    (answer, source row id) from the SFT data; ``responses``: prompt id -> the policy's own response.

    - harmful prompt: a refusal > the policy's own response, where that response complies (a
      response that already refuses, ``refuses``, gives no pair; one that refuses and then helps
      complies);
    - benign look-alike: the SFT answer (else the policy's own, if it answers, cut back to its
      last full sentence) > a refusal (the policy's own if it refused, else the refusal it would
      have learnt): refusing a benign request stays a fault, so the model does not learn to
      refuse everything that looks risky. An answer that loops is never the chosen side.
    """
    out = []
    for p in prompts:
        own = (responses.get(p["id"]) or "").strip()
        refusal = template_safety_refusal(p["id"], p["category"])
        if p["kind"] == "harmful":
            if own and not refuses(own):
                out.append({"prompt_id": p["id"], "prompt": p["prompt"], "chosen": refusal, "rejected": own,
                            "kind": "safety_refuse_over_comply", "chosen_from": "rules", "rejected_from": "policy"})
            continue
        answer, answer_from = answers.get(p["id"], (None, None))
        if answer is None or loops(answer) or declines(answer):
            answer, answer_from = ((last_full_sentence(own), "policy") if own and not is_refusal(own)
                                   and not declines(own) else (None, None))
        if not answer or loops(answer) or declines(answer):
            continue  # a loop, a fragment or a decline ("I don't know that.") is never the chosen answer
        rejected, rejected_from = (own, "policy") if own and is_refusal(own) else (refusal, "rules")
        out.append({"prompt_id": p["id"], "prompt": p["prompt"], "chosen": answer, "rejected": rejected,
                    "kind": "benign_answer_over_refusal", "chosen_from": answer_from, "rejected_from": rejected_from})
    return out


def sft_target(text: str, truncated: bool) -> tuple[str | None, str | None]:
    """A teacher reply as an SFT completion: (completion, None), or (None, why it is dropped).
    SFT closes every completion with the end-of-turn token, so a reply that hit its token limit
    is cut back to its last full sentence (else it would teach stopping mid-sentence), and a
    reply that loops is dropped (else it would teach looping)."""
    text = (text or "").strip()
    if truncated:
        text = last_full_sentence(text)
        if not text:
            return None, "cut_off_before_a_full_sentence"
    if not text:
        return None, "empty"
    if loops(text):
        return None, "repetitive"
    return text, None


# -- the teacher requests of sft_dataset (the asset sends them, ``phi4 estimate`` counts them) --

SFT_RESPONSE_TEMPERATURE = 0.7


def response_request(prompt: str, kind: str, max_tokens: int) -> ChatRequest:
    """The teacher's SFT response to one prompt; ``kind``: chat_response, benign_answer or harmful_refusal."""
    return ChatRequest.of([{"role": "user", "content": prompt}], task=f"sft_{kind}",
                          temperature=SFT_RESPONSE_TEMPERATURE, max_tokens=max_tokens)


def chat_prompt_selection(chat_prompts, n: int | None):
    """The chat prompts the teacher answers for SFT: the first ``n`` by id (all if None)."""
    chats = chat_prompts.sort_values("id")
    return chats if n is None else chats.head(n)
