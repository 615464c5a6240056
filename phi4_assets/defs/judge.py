"""Group ``judge``: judge-guided DPO (report App. A.2) and the stage-2 models.

``judge_candidates`` -> ``judge_ratings`` (both orders, oracle-anchored where a key exists) ->
``judge_dpo_pairs`` -> ``dpo2_model`` (from ``dpo1_model``) and ``dpo2_only_model`` (from
``sft_model``: the report's Table 9 "DPO stage 2 only" column).
"""

from collections import Counter

import dagster as dg
import pandas as pd

from ..models.generation import chat_prompt
from ..hallucination.prompts import ReplyError
from ..core.ids import row_id
from ..judge import candidates as cand
from ..judge.pairs import RatedPair, acceptable_chosen, pair_kind, select_preferences
from ..judge import requests as judge_requests
from ..judge.prompts import parse_verdict, verdict_problem
from ..judge.rating import rate
from ..judge.rules import OUTCOME_RANK, keyed_outcome, rules_verdict
from ..models.ref import ModelRef
from ..training.mix import stage_mix
from ..pts import oracles
from ..core.reporting import markdown_table
from ..core.refusal import is_refusal, refuses
from .resources import ProjectResource
from ..teacher.resource import TeacherResource
from ..core.warehouse import frame_of, schema_metadata, table_schema
from .common import TEACHER_RETRY, ask_teacher, column_lineage, shares, table_metadata
from .placement import POLICY_STEP_TAGS
from .training import dpo_model

GROUP = "judge"
TABLE = dict(group_name=GROUP, pool="duckdb", kinds={"duckdb"})


def _table(schema) -> dict:
    return dict(TABLE, metadata=schema_metadata(schema))


JUDGE_CANDIDATES = table_schema(
    id="VARCHAR", prompt_id="VARCHAR", prompt_kind="VARCHAR", prompt="VARCHAR",
    source=("VARCHAR", "the teacher, a model asset, or a model at the teacher endpoint"), generator="VARCHAR",
    response="VARCHAR", truncated="BOOLEAN", teacher_call_id="VARCHAR", model_version="VARCHAR",
    oracle_correct=("BOOLEAN", "on keyed prompts: the answer key's verdict"),
    oracle_outcome=("VARCHAR", "on keyed prompts: correct | declined | wrong"), failure="VARCHAR")
JUDGE_RATINGS = table_schema(
    id="VARCHAR", prompt_id="VARCHAR", prompt_kind="VARCHAR", candidate_a_id="VARCHAR", candidate_b_id="VARCHAR",
    source_a="VARCHAR", source_b="VARCHAR", judge=("VARCHAR", "the judge model, or rules"), call_ab_id="VARCHAR",
    call_ba_id="VARCHAR", failure_ab="VARCHAR", failure_ba="VARCHAR", rated="BOOLEAN", accuracy_a="DOUBLE",
    style_a="DOUBLE", detail_a="DOUBLE", overall_a="DOUBLE", accuracy_b="DOUBLE", style_b="DOUBLE",
    detail_b="DOUBLE", overall_b="DOUBLE", judge_accuracy_a="DOUBLE", judge_accuracy_b="DOUBLE",
    faults_a="VARCHAR[]", faults_b="VARCHAR[]", faults_discussion="VARCHAR", order_consistent="BOOLEAN",
    accuracy_consistent="BOOLEAN", overall_consistent="BOOLEAN", accuracy_source="VARCHAR",
    oracle_agrees="BOOLEAN", failure="VARCHAR")
JUDGE_DPO_PAIRS = table_schema(
    id="VARCHAR", prompt_id="VARCHAR", prompt="VARCHAR", chosen="VARCHAR", rejected="VARCHAR",
    chosen_token_ids="INTEGER[]", rejected_token_ids="INTEGER[]", subset=("VARCHAR", "accuracy | overall"),
    margin="DOUBLE", rating_id="VARCHAR", chosen_candidate_id="VARCHAR", rejected_candidate_id="VARCHAR",
    source=("VARCHAR", "judge | hallucination | safety"),
    kind=("VARCHAR", "what the pair teaches: correct_over_declined, declined_over_wrong, correct_over_wrong, "
                     "safety_refuse_over_comply, benign_answer_over_refusal, chat, ... (mixed-in: their own kind)"))


def _from_model(context, project: ProjectResource, ref: ModelRef, prompts: list[dict],
                max_new_tokens: int) -> list[dict]:
    with project.policy(ref.path, ref.name) as engine:
        texts = [chat_prompt(engine.tokenizer, p["prompt"]) for p in prompts]
        context.log.info(f"{ref.name}: sampling one response to each of {len(texts)} prompts")
        samples = engine.sample(texts, 1, temperature=0.7, max_new_tokens=max_new_tokens, seed=0, logger=context.log)
    return [{"generator": ref.name, "response": s[0].text, "truncated": not s[0].finished, "teacher_call_id": None,
             "model_version": ref.data_version, "failure": None if s[0].text else "empty"} for s in samples]


def _from_endpoint(context, teacher: TeacherResource, base: ModelRef, source: str, prompts: list[dict],
                   max_tokens: int) -> tuple[list[dict], dict]:
    requests = [judge_requests.candidate(p["prompt"], source, max_tokens) for p in prompts]
    batch = ask_teacher(context, teacher, requests, base)
    generator = (requests[0].model if requests else None) or batch.model  # the named model, else the teacher's
    rows = [{"generator": generator, "response": (r.text or "").strip() if r.ok else None,
             "truncated": r.finish_reason == "length", "teacher_call_id": r.call_id, "model_version": None,
             "failure": None if r.ok and r.text.strip() else (r.error or "empty")} for r in batch.replies]
    return rows, batch.stats.as_metadata(f"teacher_{source}_")


@dg.asset(**_table(JUDGE_CANDIDATES), code_version="3", retry_policy=TEACHER_RETRY, op_tags=POLICY_STEP_TAGS)
def judge_candidates(context: dg.AssetExecutionContext, project: ProjectResource, teacher: TeacherResource,
                     chat_prompts: pd.DataFrame, safety_prompts: pd.DataFrame, trivia_seeds: pd.DataFrame,
                     math_problems: pd.DataFrame, mcq_questions: pd.DataFrame, base_model: pd.DataFrame,
                     sft_model: pd.DataFrame, dpo1_model: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """One response per prompt from each of ``judge_sources`` (the teacher, model assets, or other
    models at the teacher's endpoint), to chat, safety and keyed prompts; keyed responses carry
    ``oracle_correct`` from the PTS oracles. Failed responses stay as rows with ``failure`` set."""
    settings = project.settings()
    prompts = cand.judge_prompts(settings.judge_prompts, settings.pts_problems, chat_prompts, safety_prompts,
                                 trivia_seeds, math_problems, mcq_questions)
    models = {"base_model": base_model, "sft_model": sft_model, "dpo1_model": dpo1_model}
    base = ModelRef.from_frame(base_model)
    rows, teacher_meta = [], {}
    checks = oracles.oracles_for(settings.sandbox_allow_fallback)
    for source in settings.judge_sources:
        if cand.source_kind(source) == "model":
            made = _from_model(context, project, ModelRef.from_frame(models[source]), prompts,
                               settings.judge_response_tokens)
        else:
            made, meta = _from_endpoint(context, teacher, base, source, prompts, settings.judge_response_tokens)
            teacher_meta.update(meta)
        for p, m in zip(prompts, made):
            correct = cand.oracle_verdict(p["prompt_kind"], p["problem"], m["response"] or "", checks)
            correct = correct if m["failure"] is None else None
            rows.append({"id": row_id("candidate", p["prompt_id"], source, m["generator"], m["response"]),
                         "prompt_id": p["prompt_id"], "prompt_kind": p["prompt_kind"], "prompt": p["prompt"],
                         "source": source, **m, "oracle_correct": correct,
                         "oracle_outcome": None if correct is None else keyed_outcome(correct, m["response"] or "")})
    frame = frame_of(rows, JUDGE_CANDIDATES)
    keyed = frame[frame["oracle_correct"].notna()]
    return dg.Output(frame, metadata=table_metadata(
        frame, ["prompt_id", "source", "response", "oracle_outcome"], prompts=len(prompts),
        keyed_outcomes_by_source={f"{source}: {outcome}": int(n) for (source, outcome), n in
                                  keyed.groupby(["source", "oracle_outcome"]).size().items()} or {"none": 0},
        prompts_by_kind=Counter(p["prompt_kind"].split(":")[0] for p in prompts),
        candidates_by_source=frame["source"].value_counts().to_dict(),
        failures=int(frame["failure"].notna().sum()), truncated=int(frame["truncated"].sum()),
        oracle_correct_by_source=keyed.groupby("source")["oracle_correct"].apply(lambda v: round(float(v.astype(bool).mean()), 3)).to_dict() or {"none": 0},
        **teacher_meta))


def _verdict(reply):
    """(Verdict or None, failure reason or None) for one judge reply."""
    try:
        if not reply.ok:
            raise ReplyError(f"teacher error: {reply.error}")
        return parse_verdict(reply.text), None
    except ReplyError as e:
        return None, str(e)


@dg.asset(**_table(JUDGE_RATINGS), code_version="1", retry_policy=TEACHER_RETRY)
def judge_ratings(context: dg.AssetExecutionContext, project: ProjectResource, teacher: TeacherResource,
                  judge_candidates: pd.DataFrame, base_model: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Every pair of candidates for a prompt, judged in both orders (A first, then B first);
    the two verdicts are averaged and order-inconsistent ones flagged. Unreadable verdicts are
    recorded (``failure_ab`` / ``failure_ba`` with the reason) and, where both fail, the rules
    judge rates what it can decide (keyed and safety prompts). In oracle-anchored mode accuracy
    on keyed prompts comes from the oracle, and ``oracle_agrees`` says whether the judge agreed."""
    settings = project.settings()
    use_teacher = settings.generators.get("judge", "teacher") == "teacher"
    candidates = judge_candidates.astype(object).where(judge_candidates.notna(), None).to_dict("records")
    pairs = cand.comparisons(candidates)
    to_teacher = cand.teacher_sample(pairs, settings.judge_teacher_pairs) if use_teacher else []
    requests = [r for i in to_teacher for r in judge_requests.verdicts(*pairs[i], settings.judge_verdict_tokens)]
    context.log.info(f"judging {len(pairs)} candidate pairs: {len(to_teacher)} by the teacher "
                     f"({len(requests)} calls, both orders), the rest by the rules")
    batch = ask_teacher(context, teacher, requests, ModelRef.from_frame(base_model), validate=verdict_problem)
    slot = {i: n for n, i in enumerate(to_teacher)}
    rows = []
    for i, (a, b) in enumerate(pairs):
        ab = ba = None
        fail_ab = fail_ba = "rules by config" if not use_teacher else "rules: beyond judge_teacher_pairs"
        call_ab = call_ba = None
        if i in slot:
            reply_ab, reply_ba = batch.replies[2 * slot[i]], batch.replies[2 * slot[i] + 1]
            call_ab, call_ba = reply_ab.call_id, reply_ba.call_id
            ab, fail_ab = _verdict(reply_ab)
            ba, fail_ba = _verdict(reply_ba)
        judge = batch.model
        if ab is None and ba is None:
            ab = rules_verdict(a["prompt_kind"], a["response"], b["response"], a["oracle_outcome"],
                               b["oracle_outcome"], a["truncated"], b["truncated"])
            judge = "rules"
        rating = rate(ab, ba, a["oracle_outcome"], b["oracle_outcome"], settings.judge_oracle_anchored)
        row = {"id": row_id("rating", a["id"], b["id"], batch.model if i in slot else "rules"),
               "prompt_id": a["prompt_id"], "prompt_kind": a["prompt_kind"], "candidate_a_id": a["id"],
               "candidate_b_id": b["id"], "source_a": a["source"], "source_b": b["source"], "judge": judge,
               "call_ab_id": call_ab, "call_ba_id": call_ba, "failure_ab": fail_ab, "failure_ba": fail_ba,
               "rated": rating is not None, "failure": None if rating else "no readable verdict and no rule applies"}
        if rating is not None:
            row.update(accuracy_a=rating.a.accuracy, style_a=rating.a.style, detail_a=rating.a.detail,
                       overall_a=rating.a.overall, accuracy_b=rating.b.accuracy, style_b=rating.b.style,
                       detail_b=rating.b.detail, overall_b=rating.b.overall,
                       judge_accuracy_a=rating.judge_accuracy_a if judge != "rules" else None,
                       judge_accuracy_b=rating.judge_accuracy_b if judge != "rules" else None,
                       faults_a=list(rating.faults_a), faults_b=list(rating.faults_b),
                       faults_discussion=ab.discussion if ab else (ba.discussion if ba else None),
                       order_consistent=rating.order_consistent, accuracy_consistent=rating.accuracy_consistent,
                       overall_consistent=rating.overall_consistent, accuracy_source=rating.accuracy_source,
                       oracle_agrees=rating.oracle_agrees if judge != "rules" else None)
        rows.append(row)
    frame = frame_of(rows, JUDGE_RATINGS)
    for column in ("faults_a", "faults_b"):
        frame[column] = [v if isinstance(v, list) else [] for v in frame[column]]
    return dg.Output(frame, metadata=table_metadata(
        frame, ["prompt_id", "source_a", "source_b", "judge", "accuracy_a", "accuracy_b", "order_consistent"],
        **rating_summary(frame), **batch.stats.as_metadata()))


def rating_summary(frame: pd.DataFrame) -> dict:
    """The quality figures of a judging run: parse failures, order consistency, oracle agreement."""
    n = len(frame)
    verdicts = 2 * int(frame["call_ab_id"].notna().sum())
    failed = int(frame.loc[frame["call_ab_id"].notna(), ["failure_ab", "failure_ba"]].notna().sum().sum())
    both = frame[frame["order_consistent"].notna()]
    agree = frame[frame["oracle_agrees"].notna()]
    rated = frame[frame["rated"]]
    summary = {
        "pairs_judged": n, "rated": int(frame["rated"].sum()),
        "judges": shares(frame["judge"]) if n else {"none": 0},
        "judge_verdicts": verdicts,
        "judge_parse_failure_rate": round(failed / verdicts, 3) if verdicts else 0.0,  # unreadable or failed calls
        "order_checked": len(both),
        "order_inconsistency_rate": round(float((~both["order_consistent"].astype(bool)).mean()), 3) if len(both)
        else 0.0,
        "oracle_comparable": len(agree),
        "judge_oracle_agreement": round(float(agree["oracle_agrees"].astype(bool).mean()), 3) if len(agree) else 0.0,
    }
    if len(rated):
        scores = pd.concat([rated[[f"{c}_{s}" for c in ("accuracy", "style", "detail")]].set_axis(
            ["accuracy", "style", "detail"], axis=1).assign(source=rated[f"source_{s}"]) for s in ("a", "b")])
        summary["mean_scores_by_source"] = dg.MetadataValue.md(
            markdown_table(scores.groupby("source").mean().round(2).reset_index()))
        summary["accuracy_distribution"] = scores["accuracy"].round().astype(int).value_counts().sort_index() \
            .rename(lambda v: str(v)).to_dict()
    return summary


def _outcome(candidate: pd.Series) -> str | None:
    """A candidate's keyed outcome (correct / declined / wrong), None where no key applies."""
    return None if pd.isna(candidate["oracle_outcome"]) else candidate["oracle_outcome"]


def _acceptable(candidate: pd.Series) -> bool:
    """``acceptable_chosen`` for a ``judge_candidates`` row: used by the asset and by its check."""
    text = candidate["response"] or ""
    return acceptable_chosen(candidate["prompt_kind"], _outcome(candidate), refuses(text), text)


@dg.asset(**_table(JUDGE_DPO_PAIRS), code_version="3")
def judge_dpo_pairs(context: dg.AssetExecutionContext, project: ProjectResource, judge_ratings: pd.DataFrame,
                    judge_candidates: pd.DataFrame, dpo2_mix_pairs: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Preferences from the ratings: the "accuracy" subset (higher accuracy wins) and the
    "overall" subset (higher mean of accuracy, style, detail wins, never against accuracy, and
    only where a model judged style and detail), in ``judge_subset_ratio`` (2:1), each with its
    minimum margin, ties dropped; a pair whose chosen side we do not want more of (a wrong answer
    to a keyed prompt, compliance with a harmful one, a refused benign one, a loop:
    ``acceptable_chosen``) is dropped and counted, and a pair whose texts repeat another's (two
    candidate models wrote the same responses) is kept once. Plus the "unknown + safety" pairs of
    ``dpo2_mix_pairs`` (from ``dpo1_model``) at ``judge_mix_share`` (at least ``mix_floor``). Chosen
    and rejected are full responses (trained with end-of-turn); ``kind`` says what each pair teaches."""
    settings = project.settings()
    rated = judge_ratings[judge_ratings["rated"]] if len(judge_ratings) else judge_ratings
    flag = lambda v: None if pd.isna(v) else bool(v)  # noqa: E731 (DuckDB gives NA for a null boolean)
    by_id = judge_candidates.set_index("id") if len(judge_candidates) else judge_candidates
    acceptable = {cid: _acceptable(c) for cid, c in by_id.iterrows()}
    preferences = select_preferences(
        [RatedPair(r.id, r.candidate_a_id, r.candidate_b_id, r.accuracy_a, r.accuracy_b, r.overall_a, r.overall_b,
                   flag(r.accuracy_consistent), flag(r.overall_consistent), overall_rated=r.judge != "rules")
         for r in rated.itertuples()],
        ratio=settings.judge_subset_ratio, min_accuracy_margin=settings.judge_min_accuracy_margin,
        min_overall_margin=settings.judge_min_overall_margin, keep_inconsistent=settings.judge_keep_inconsistent)
    unacceptable = Counter()
    rows, seen, repeated = [], set(), 0
    for p in preferences:
        chosen, rejected = by_id.loc[p.chosen_id], by_id.loc[p.rejected_id]
        texts = (chosen["prompt"], chosen["response"], rejected["response"])
        if texts in seen:
            repeated += 1  # the same pair twice would weigh twice in DPO
            continue
        seen.add(texts)
        kind = pair_kind(chosen["prompt_kind"], _outcome(chosen), _outcome(rejected), is_refusal(chosen["response"]),
                         is_refusal(rejected["response"]))
        if not acceptable[p.chosen_id]:
            unacceptable[kind] += 1
            continue
        rows.append({"id": row_id("judgepair", p.rating_id, p.chosen_id, p.rejected_id, p.subset),
                     "prompt_id": chosen["prompt_id"], "prompt": chosen["prompt"], "chosen": chosen["response"],
                     "rejected": rejected["response"], "chosen_token_ids": None, "rejected_token_ids": None,
                     "subset": p.subset, "margin": p.margin, "rating_id": p.rating_id,
                     "chosen_candidate_id": p.chosen_id, "rejected_candidate_id": p.rejected_id, "source": "judge",
                     "kind": kind})
    n_judge = len(rows)
    for m in stage_mix(dpo2_mix_pairs, n_judge, settings.judge_mix_share, settings.mix_floor,
                       settings.mix_balance):
        rows.append({"prompt_id": m.pop("problem_id"), "subset": m["source"], "margin": None, "rating_id": None,
                     "chosen_candidate_id": None, "rejected_candidate_id": None, **m})
    frame = frame_of(rows, JUDGE_DPO_PAIRS)
    inconsistent = int((rated["order_consistent"] == False).sum()) if len(rated) else 0  # noqa: E712
    by_subset = frame["subset"].value_counts().to_dict()
    return dg.Output(frame, metadata=table_metadata(
        frame, ["subset", "kind", "margin", "prompt", "chosen", "rejected"], pairs_by_subset=by_subset or {"none": 0},
        pairs_by_kind=frame["kind"].value_counts().to_dict() or {"none": 0},
        judge_pairs=n_judge, mixed_in=len(frame) - n_judge, mix_balance=settings.mix_balance,
        dropped_unacceptable_chosen=dict(unacceptable) or {"none": 0}, dropped_repeated=repeated,
        mix_share=round((len(frame) - n_judge) / len(frame), 3) if len(frame) else 0.0, rated_pairs=len(rated),
        order_inconsistent_ratings=inconsistent, keep_inconsistent=settings.judge_keep_inconsistent,
        target_ratio=settings.judge_subset_ratio,
        accuracy_to_overall=round(by_subset.get("accuracy", 0) / by_subset["overall"], 2)
        if by_subset.get("overall") else "no overall pairs",
        **column_lineage({"prompt": [("judge_candidates", "prompt"), ("dpo2_mix_pairs", "prompt")],
                          "chosen": [("judge_candidates", "response"), ("dpo2_mix_pairs", "chosen")],
                          "rejected": [("judge_candidates", "response"), ("dpo2_mix_pairs", "rejected")],
                          "margin": [("judge_ratings", "accuracy_a"), ("judge_ratings", "accuracy_b"),
                                     ("judge_ratings", "overall_a"), ("judge_ratings", "overall_b")],
                          "rating_id": [("judge_ratings", "id")],
                          "chosen_candidate_id": [("judge_candidates", "id")],
                          "rejected_candidate_id": [("judge_candidates", "id")]})))


@dg.asset_check(asset=judge_dpo_pairs, description="Pairs exist, chosen differs from rejected, margins are respected.")
def judge_dpo_pairs_valid(project: ProjectResource, judge_dpo_pairs: pd.DataFrame) -> dg.AssetCheckResult:
    settings = project.settings()
    judged = judge_dpo_pairs[judge_dpo_pairs["source"] == "judge"] if len(judge_dpo_pairs) else judge_dpo_pairs
    minimum = {"accuracy": settings.judge_min_accuracy_margin, "overall": settings.judge_min_overall_margin}
    same = int((judge_dpo_pairs["chosen"] == judge_dpo_pairs["rejected"]).sum()) if len(judge_dpo_pairs) else 0
    below = int(sum(1 for r in judged.itertuples() if not r.margin > 0 or r.margin < minimum[r.subset]))
    return dg.AssetCheckResult(passed=len(judged) > 0 and same == 0 and below == 0,
                               metadata={"judge_pairs": len(judged), "chosen_equals_rejected": same,
                                         "below_margin": below})


@dg.asset_check(asset=judge_dpo_pairs, additional_ins={"judge_candidates": dg.AssetIn("judge_candidates")},
                description="No pair on a keyed prompt prefers the less calibrated side: correct > declined > wrong "
                            "(an attempted wrong answer is never preferred to a decline).")
def judge_dpo_pairs_calibrated(judge_dpo_pairs: pd.DataFrame, judge_candidates: pd.DataFrame) -> dg.AssetCheckResult:
    outcome = {r.id: r.oracle_outcome for r in judge_candidates.itertuples() if isinstance(r.oracle_outcome, str)}
    judged = judge_dpo_pairs[judge_dpo_pairs["source"] == "judge"] if len(judge_dpo_pairs) else judge_dpo_pairs
    keyed = [(r.id, outcome[r.chosen_candidate_id], outcome[r.rejected_candidate_id]) for r in judged.itertuples()
             if r.chosen_candidate_id in outcome and r.rejected_candidate_id in outcome]
    against = [pair_id for pair_id, c, r in keyed if OUTCOME_RANK[c] < OUTCOME_RANK[r]]
    return dg.AssetCheckResult(passed=not against, metadata={"keyed_pairs": len(keyed), "against_order": len(against),
                                                            "ids": ", ".join(against[:10])})


@dg.asset_check(asset=judge_dpo_pairs, additional_ins={"judge_candidates": dg.AssetIn("judge_candidates")},
                description="Every judge pair's chosen side is a response to want more of: not a wrong answer to a "
                            "keyed prompt, not compliance with a harmful prompt, not a refused benign one, not a loop.")
def judge_dpo_pairs_chosen_acceptable(judge_dpo_pairs: pd.DataFrame,
                                      judge_candidates: pd.DataFrame) -> dg.AssetCheckResult:
    by_id = judge_candidates.set_index("id") if len(judge_candidates) else judge_candidates
    judged = judge_dpo_pairs[judge_dpo_pairs["source"] == "judge"] if len(judge_dpo_pairs) else judge_dpo_pairs
    bad = []
    for r in judged.itertuples():
        if not _acceptable(by_id.loc[r.chosen_candidate_id]):
            bad.append(r.id)
    return dg.AssetCheckResult(passed=not bad, metadata={"judge_pairs": len(judged), "unacceptable_chosen": len(bad),
                                                         "ids": ", ".join(bad[:10])})


dpo2_model = dpo_model("dpo2_model", group=GROUP, start="dpo1_model", pairs="judge_dpo_pairs", settings="dpo2_train",
                       description="DPO stage 2: from ``dpo1_model`` (also the reference) on ``judge_dpo_pairs``.")
dpo2_only_model = dpo_model("dpo2_only_model", group=GROUP, start="sft_model", pairs="judge_dpo_pairs",
                            settings="dpo2_train", description="The Table 9 ablation: DPO stage 2 straight from "
                                                               "``sft_model`` on the same pairs.")
