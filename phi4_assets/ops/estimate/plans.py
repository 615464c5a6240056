"""What each teacher-calling asset would ask, rebuilt from its inputs: one planner per asset."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from ...evaluation.graders import LLMGrader
from ...hallucination import decision, rules
from ...hallucination import requests as hreq
from ...judge import requests as judge_requests
from ...sft.data import chat_prompt_selection, response_request
from .core import Inputs, Plan


def _in_shard(frame: pd.DataFrame | None, shard: str) -> pd.DataFrame | None:
    if frame is None or "shard" not in frame.columns:
        return None
    part = frame[frame["shard"] == shard]
    return part if len(part) else None


def _rules(asset: str, partition: str | None, task: str) -> Plan:
    return Plan(asset, partition, task, "rules", requests=[], basis="generator rules: no teacher calls")


def plan_answer_checks(inputs: Inputs, shard: str, questions: pd.DataFrame) -> list[Plan]:
    p = inputs.profile
    if p.generators.get("answer_check") != "teacher":
        return [_rules("answer_checks", shard, "answer_check")]
    trivia, _ = inputs.source("trivia_seeds")
    seeds = trivia.set_index("id")
    samples = _in_shard(inputs.table("policy_answer_samples"), shard)
    plan = Plan("answer_checks", shard, "answer_check", "teacher", max_tokens=hreq.ANSWER_CHECK_TOKENS)
    if samples is None:
        plan.bound = len(questions) * p.answer_samples
        plan.basis = (f"{len(questions)} questions x answer_samples {p.answer_samples}; policy_answer_samples "
                      f"[{shard}] is not materialized (samples that contain the key need no call)")
        return [plan]
    plan.requests = [hreq.answer_check(seeds.loc[s.question_id], s.text) for s in samples.itertuples()
                     if not rules.mentions_key(s.text, hreq.seed_keys(seeds.loc[s.question_id]))]
    plan.basis = (f"{len(samples)} samples in policy_answer_samples [{shard}], "
                  f"{len(samples) - len(plan.requests)} contain the key (no call)")
    return [plan]


def _one_per_question(asset: str, task: str, build: Callable, max_tokens: int) -> Callable:
    """The planner of an asset that asks the teacher once per seed question of a shard."""
    def plan(inputs: Inputs, shard: str, questions: pd.DataFrame) -> list[Plan]:
        if inputs.profile.generators.get(task) != "teacher":
            return [_rules(asset, shard, task)]
        requests = [build(q) for _, q in questions.iterrows()]
        return [Plan(asset, shard, task, "teacher", max_tokens, requests,
                     basis=f"one per seed question ({len(questions)})")]
    return plan


plan_reference_answers = _one_per_question("reference_answers", "reference_answer", hreq.reference_answer,
                                           hreq.REFERENCE_ANSWER_TOKENS)
plan_bogus_questions = _one_per_question("bogus_questions", "bogus_question", hreq.bogus_question,
                                         hreq.BOGUS_QUESTION_TOKENS)


def plan_refusals(inputs: Inputs, shard: str, questions: pd.DataFrame) -> list[Plan]:
    p = inputs.profile
    if p.generators.get("refusal") != "teacher":
        return [_rules("refusals", shard, "refusal")]
    plan = Plan("refusals", shard, "refusal", "teacher", max_tokens=hreq.REFUSAL_TOKENS)
    checks = _in_shard(inputs.table("answer_checks"), shard)
    bogus = _in_shard(inputs.table("bogus_questions"), shard)
    n_real = n_bogus = len(questions)  # upper bounds while an input is not materialized
    why = []
    if checks is not None:
        stats = decision.question_stats(zip(checks["question_id"], checks["matches_key"]))
        n_real = sum(decision.needs_refusal(s) for s in stats.values())
        why.append(f"{n_real} real questions (answer_checks [{shard}])")
    else:
        why.append(f"up to {len(questions)} real questions (answer_checks [{shard}] is not materialized)")
    if bogus is not None:
        n_bogus = int(bogus["kept"].astype(bool).sum())
        why.append(f"{n_bogus} kept bogus questions (bogus_questions [{shard}])")
    else:
        why.append(f"up to {len(questions)} bogus questions (bogus_questions [{shard}] is not materialized)")
    if checks is not None and bogus is not None:
        trivia, _ = inputs.source("trivia_seeds")
        plan.requests = [hreq.refusal(t["question"], t["bogus"])
                         for t in hreq.refusal_targets(trivia.set_index("id"), checks, bogus)]
    else:
        plan.bound = n_real + n_bogus
    plan.basis = "; ".join(why)
    return [plan]


def plan_sft_dataset(inputs: Inputs, _partition: str | None = None) -> list[Plan]:
    p = inputs.profile
    chats, chat_from = inputs.source("chat_prompts")
    safety, safety_from = inputs.source("safety_prompts")
    chats = chat_prompt_selection(chats, p.sft_chat_prompts)

    def plan(kind: str, frame: pd.DataFrame, what: str) -> Plan:
        requests = [response_request(prompt, kind, p.sft_response_tokens) for prompt in frame["prompt"]]
        return Plan("sft_dataset", None, f"sft_{kind}", "teacher", p.sft_response_tokens, requests, basis=what)

    plans = [plan("chat_response", chats, f"{len(chats)} chat prompts (sft_chat_prompts; {chat_from})"),
             plan("benign_answer", safety[safety["kind"] == "benign"].sort_values("id"),
                  f"benign safety prompts ({safety_from})")]
    if p.generators.get("safety_refusal", "rules") == "teacher":
        plans.append(plan("harmful_refusal", safety[safety["kind"] == "harmful"].sort_values("id"),
                          f"harmful safety prompts ({safety_from})"))
    else:
        plans.append(_rules("sft_dataset", None, "sft_harmful_refusal"))
    return plans


def _judge_prompts(inputs: Inputs) -> list[dict]:
    """The prompts ``judge_candidates`` answers, as the asset picks them."""
    from ...judge.candidates import judge_prompts

    frames = [inputs.source(n)[0] for n in ("chat_prompts", "safety_prompts", "trivia_seeds", "math_problems",
                                           "mcq_questions")]
    return judge_prompts(inputs.profile.judge_prompts, inputs.profile.pts_problems, *frames)


def plan_judge_candidates(inputs: Inputs, _partition: str | None = None) -> list[Plan]:
    from ...judge import candidates as cand

    p = inputs.profile
    endpoint = [s for s in p.judge_sources if cand.source_kind(s) == "endpoint"]
    in_process = [s for s in p.judge_sources if cand.source_kind(s) == "model"]
    note = f"; {', '.join(in_process)} answer in-process (no teacher calls)" if in_process else ""
    others = [s for s in endpoint if s != "teacher"]
    if others and inputs.teacher.embedded:
        note += (f"; the embedded teacher serves one model, so {', '.join(others)} need a configured endpoint "
                 "(this run would fail)")
    judge_prompts = _judge_prompts(inputs)
    requests = [judge_requests.candidate(q["prompt"], s, p.judge_response_tokens)
                for s in endpoint for q in judge_prompts]
    return [Plan("judge_candidates", None, "judge_candidate", "teacher", p.judge_response_tokens, requests,
                 basis=f"{len(judge_prompts)} prompts x {len(endpoint)} endpoint sources ({', '.join(endpoint) or '-'})"
                       f"{note}")]


def plan_judge_ratings(inputs: Inputs, _partition: str | None = None) -> list[Plan]:
    from ...judge import candidates as cand

    p = inputs.profile
    if p.generators.get("judge", "teacher") != "teacher":
        return [_rules("judge_ratings", None, "judge")]
    plan = Plan("judge_ratings", None, "judge", "teacher", p.judge_verdict_tokens)
    frame = inputs.table("judge_candidates")
    if frame is None:
        n_prompts = len(_judge_prompts(inputs))
        k = len(p.judge_sources)
        n_pairs = n_prompts * math.comb(k, 2)
        if p.judge_teacher_pairs is not None:
            n_pairs = min(n_pairs, p.judge_teacher_pairs)
        plan.bound = 2 * n_pairs
        plan.basis = (f"2 orders x {n_pairs} pairs ({n_prompts} prompts x C({k}, 2) source pairs, at most "
                      f"judge_teacher_pairs = {p.judge_teacher_pairs}); judge_candidates is not materialized "
                      "(failed or empty candidates are not judged)")
        return [plan]
    candidates = frame.astype(object).where(frame.notna(), None).to_dict("records")
    pairs = cand.comparisons(candidates)
    judged = [pairs[i] for i in cand.teacher_sample(pairs, p.judge_teacher_pairs)]
    plan.requests = [r for a, b in judged for r in judge_requests.verdicts(a, b, p.judge_verdict_tokens)]
    plan.basis = (f"2 orders x {len(judged)} of the {len(pairs)} candidate pairs in judge_candidates "
                  f"(judge_teacher_pairs = {p.judge_teacher_pairs})")
    return [plan]


def plan_stage_evaluations(inputs: Inputs, _partition: str | None = None) -> list[Plan]:
    """SimpleQA grades by the LLM grader (one call per item with a non-empty response), per stage."""
    from ...evaluation.report import STAGES
    from ...evaluation.runner import select_items

    p = inputs.profile
    if p.generators.get("eval_grade", "rules") != "teacher":
        return [_rules("stage_evaluations", stage, "simpleqa_grade") for stage in STAGES]
    items, items_from = inputs.source("eval_sets")
    n = int((select_items(items, p.eval_limits)["benchmark"] == "simpleqa").sum())
    return [Plan("stage_evaluations", stage, "simpleqa_grade", "teacher", LLMGrader.max_tokens, bound=n,
                 basis=f"{n} SimpleQA items ({items_from}, eval_limits); an empty response needs no call")
            for stage in STAGES]


def plan_mix_pairs(asset: str) -> Callable:
    """``dpo1_mix_pairs`` / ``dpo2_mix_pairs``: the starting model's samples of the stage's half of
    the real questions, graded like ``answer_checks`` (those that contain the key need no call)."""
    from ...training.mix import stage_half

    def plan(inputs: Inputs, _partition: str | None = None) -> list[Plan]:
        p = inputs.profile
        if p.generators.get("answer_check") != "teacher":
            return [_rules(asset, None, "answer_check")]
        questions = pd.concat(list(inputs.shard_questions().values()) or [pd.DataFrame(columns=["id"])])
        n = len(stage_half(list(questions["id"]), asset.split("_")[0]))
        return [Plan(asset, None, "answer_check", "teacher", max_tokens=hreq.ANSWER_CHECK_TOKENS,
                     bound=n * p.answer_samples,
                     basis=f"{n} questions (the stage's half of the seeds) x answer_samples {p.answer_samples}; "
                           f"the samples are drawn when the stage's starting model exists")]
    return plan


PLANNERS: dict[str, Callable] = {
    "dpo1_mix_pairs": plan_mix_pairs("dpo1_mix_pairs"), "dpo2_mix_pairs": plan_mix_pairs("dpo2_mix_pairs"),
    "answer_checks": plan_answer_checks, "reference_answers": plan_reference_answers,
    "bogus_questions": plan_bogus_questions, "refusals": plan_refusals, "sft_dataset": plan_sft_dataset,
    "judge_candidates": plan_judge_candidates, "judge_ratings": plan_judge_ratings,
    "stage_evaluations": plan_stage_evaluations,
}


# -- the estimate ----------------------------------------------------------------------------------
