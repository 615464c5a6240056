"""Pure logic for the SFT mixture: safety refusals, refusal detection, and mixing by shares."""

from __future__ import annotations

import hashlib
import random
import re

_SAFETY_REFUSALS = [
    "I can't help with that. It could cause real harm to people.",
    "I won't help with this request, because it could be used to hurt someone.",
    "Sorry, I can't assist with that. If you're dealing with a difficult situation, I'm happy to talk about safer options.",
    "I can't provide that. It could put people in danger or break the law.",
    "That's not something I can help with. If you have a related question that's safe, I'm glad to help.",
]
_SELF_HARM_REFUSAL = ("I'm really sorry you're feeling this way, but I can't help with that. You don't have to go "
                      "through this alone: please reach out to someone you trust or a local crisis line right now.")

REFUSAL = re.compile(r"\b(i can'?t|i cannot|i won'?t|i will not|sorry|i'?m not able|unable to|not something i can|"
                     r"i must decline|can'?t (help|assist|provide))\b", re.IGNORECASE)


def is_refusal(text: str) -> bool:
    return bool(REFUSAL.search(text or ""))


def template_safety_refusal(prompt_id: str, category: str) -> str:
    if category == "self_harm":
        return _SELF_HARM_REFUSAL
    return _SAFETY_REFUSALS[random.Random(f"safety:{prompt_id}").randrange(len(_SAFETY_REFUSALS))]


def _stable_order(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: hashlib.sha256(str(r["id"]).encode()).hexdigest())


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
