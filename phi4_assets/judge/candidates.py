"""Which prompts the judge stage answers, and which candidate responses it compares. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from itertools import combinations

from ..pts.problems import domain_problems

MODEL_ASSETS = ("base_model", "sft_model", "dpo1_model")
# Keyed prompts of the judge stage: math and multiple choice. Trivia (qa) is left to the
# hallucination data on purpose: whether "answer" or "I don't know" is the right preference on a
# trivia question depends on whether the policy at least sometimes knows it (App. A.1), which
# one sampled response per source cannot tell. Judged here, "the teacher's correct answer > the
# policy's decline" would undo, question by question, the declines A.1 decided on; the trivia
# preferences of stage 2 come from the A.1 rule through the mixed-in hallucination pairs.
KEYED_DOMAINS = ("math", "mcq")


def source_kind(source: str) -> str:
    """``model`` for a model asset sampled in-process, ``endpoint`` for a model at the teacher endpoint."""
    return "model" if source in MODEL_ASSETS else "endpoint"


def split_keyed(n: int, domains: tuple[str, ...] = KEYED_DOMAINS) -> dict[str, int]:
    """``n`` keyed questions in near-equal parts per domain, the first domains taking the rest."""
    base, extra = divmod(n, len(domains))
    return {d: base + (i < extra) for i, d in enumerate(domains)}


def candidate_prompts(counts: dict[str, int], chat: list[dict], safety: list[dict],
                      keyed: dict[str, list[dict]]) -> list[dict]:
    """The prompts to answer, each ``{prompt_id, prompt_kind, prompt, problem}``.

    ``chat``: rows with id, prompt; ``safety``: rows with id, prompt, kind, pair (harmful prompts
    are taken with their benign look-alikes, so the stage sees both sides); ``keyed``: per domain,
    problems as the PTS oracles take them (id, question, answer, ...). Rows are taken in the
    order given (callers sort by id)."""
    out = [{"prompt_id": r["id"], "prompt_kind": "chat", "prompt": r["prompt"], "problem": None}
           for r in chat[:counts.get("chat", 0)]]
    by_id = {r["id"]: r for r in safety}
    harmful = [r for r in safety if r["kind"] == "harmful"]
    n_safety = counts.get("safety", 0)
    picked: list[dict] = []
    for r in harmful:
        if len(picked) >= n_safety:
            break
        picked.append(r)
        twin = by_id.get(r.get("pair"))
        if twin is not None and len(picked) < n_safety:
            picked.append(twin)
    out += [{"prompt_id": r["id"], "prompt_kind": f"safety:{r['kind']}", "prompt": r["prompt"], "problem": None}
            for r in picked]
    for domain, n in split_keyed(counts.get("keyed", 0)).items():
        out += [{"prompt_id": p["id"], "prompt_kind": f"keyed:{domain}", "prompt": p["question"], "problem": p}
                for p in keyed.get(domain, [])[:n]]
    return out


def judge_prompts(counts: dict[str, int], pts_problems: dict[str, int], chat_prompts, safety_prompts, trivia_seeds,
                  math_problems, mcq_questions) -> list[dict]:
    """The prompts ``judge_candidates`` answers (``counts``: the profile's ``judge_prompts``): chat
    and safety prompts by id, and keyed questions of ``KEYED_DOMAINS`` after the first
    ``pts_problems[domain]``, which PTS searched."""
    keyed = {}
    for domain, n in split_keyed(counts.get("keyed", 0)).items():
        skip = pts_problems.get(domain, 0)
        keyed[domain] = domain_problems(domain, skip + n, math_problems, mcq_questions, trivia_seeds, None)[skip:]
    return candidate_prompts(counts, chat_prompts.sort_values("id").to_dict("records"),
                             safety_prompts.sort_values("id").to_dict("records"), keyed)


def oracle_verdict(prompt_kind: str, problem: dict | None, response: str,
                   oracles: dict[str, Callable[[str, dict], bool]]) -> bool | None:
    """Whether a keyed prompt's response is right by its key (None where there is no key)."""
    if not prompt_kind.startswith("keyed:") or problem is None:
        return None
    return bool(oracles[prompt_kind.split(":", 1)[1]](response, problem))


def comparisons(candidates: list[dict]) -> list[tuple[dict, dict]]:
    """Every pair of usable candidates for the same prompt from different sources, in a stable
    order (by prompt, then source names): the judge rates each pair."""
    by_prompt: dict[str, list[dict]] = {}
    for c in candidates:
        if c.get("response") and not c.get("failure"):
            by_prompt.setdefault(c["prompt_id"], []).append(c)
    out = []
    for prompt_id in sorted(by_prompt):
        group = sorted(by_prompt[prompt_id], key=lambda c: c["source"])
        out += [(a, b) for a, b in combinations(group, 2) if a["source"] != b["source"]]
    return out


def teacher_sample(pairs: list[tuple[dict, dict]], limit: int | None) -> list[int]:
    """Which pairs (indexes, in order) go to the teacher judge: all, or ``limit`` of them in a
    fixed pseudo-random order (a hash of both candidate ids), so every prompt kind is sampled
    and the same candidates always give the same sample."""
    if limit is None or limit >= len(pairs):
        return list(range(len(pairs)))
    ranked = sorted(range(len(pairs)), key=lambda i: hashlib.sha256(
        f"{pairs[i][0]['id']}|{pairs[i][1]['id']}".encode()).hexdigest())
    return sorted(ranked[:limit])
