"""Group ``hallucination``, its unpartitioned half: the SFT and DPO data of App. A.1
(``hallucination_sft_data``, ``hallucination_dpo_pairs``), each reading every materialized shard
of the generation assets in ``hallucination.py``, and their checks."""

from collections import Counter

import dagster as dg
import pandas as pd

from ..core.ids import row_id
from ..core.warehouse import frame_of, schema_metadata, table_schema
from ..hallucination import decision
from ..hallucination import requests as requests_for
from ..models.ref import ModelRef
from .common import column_lineage, table_metadata
from .hallucination import ALL_SHARDS, GROUP, graded_samples
from .resources import ProjectResource

def _table(schema, **extra) -> dict:
    return dict(group_name=GROUP, pool="duckdb", kinds={"duckdb"}, metadata=schema_metadata(schema), **extra)


HALLUCINATION_SFT_DATA = table_schema(
    id="VARCHAR", prompt="VARCHAR", completion="VARCHAR", kind=("VARCHAR", "answer | refusal | bogus_refusal"),
    question_id="VARCHAR", p_correct="DOUBLE", source_id="VARCHAR", generator="VARCHAR")
HALLUCINATION_DPO_PAIRS = table_schema(
    id="VARCHAR", prompt="VARCHAR", chosen="VARCHAR", rejected="VARCHAR", chosen_token_ids="INTEGER[]",
    rejected_token_ids="INTEGER[]", kind="VARCHAR", question_id="VARCHAR", p_correct="DOUBLE",
    chosen_from="VARCHAR", rejected_from="VARCHAR")


# -- the SFT and DPO data ------------------------------------------------------------------


def _all(name: str) -> dg.AssetIn:
    return dg.AssetIn(name, partition_mapping=ALL_SHARDS)


@dg.asset(**_table(HALLUCINATION_SFT_DATA), code_version="1",
          automation_condition=dg.AutomationCondition.eager(),
          ins={"answer_checks": _all("answer_checks"), "reference_answers": _all("reference_answers"),
               "refusals": _all("refusals")})
def hallucination_sft_data(context: dg.AssetExecutionContext, project: ProjectResource, trivia_seeds: pd.DataFrame,
                           answer_checks: pd.DataFrame, reference_answers: pd.DataFrame,
                           refusals: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """(question, reference answer) where the policy is usually right, (question, refusal) where it
    is usually wrong, (bogus question, refusal) always. Reads every materialized shard."""
    settings = project.settings()
    seeds = trivia_seeds.set_index("id")
    references = reference_answers.set_index("question_id")
    refusal_of = refusals.set_index("target_id")
    stats = decision.question_stats(zip(answer_checks["question_id"], answer_checks["matches_key"]))
    rows = []
    for qid, s in sorted(stats.items()):
        target = decision.sft_target(s, settings.usually_right)
        if target == "answer":
            source = references.loc[qid]
            completion, source_id, kind = source["answer_text"], source["id"], "answer"
        else:
            source = refusal_of.loc[qid]
            completion, source_id, kind = source["refusal"], source["id"], "refusal"
        rows.append({"prompt": seeds.loc[qid]["question"], "completion": completion, "kind": kind,
                     "question_id": qid, "p_correct": s.p_correct, "source_id": source_id,
                     "generator": source["generator"]})
    for target_id, r in refusal_of[refusal_of["bogus"]].iterrows():
        rows.append({"prompt": r["question"], "completion": r["refusal"], "kind": "bogus_refusal",
                     "question_id": r["question_id"], "p_correct": None, "source_id": r["id"],
                     "generator": r["generator"]})
    for row in rows:
        row["id"] = row_id("sft", row["prompt"], row["completion"], row["source_id"])
    frame = frame_of(rows, HALLUCINATION_SFT_DATA)
    kinds = frame["kind"].value_counts().to_dict()
    return dg.Output(frame, metadata=table_metadata(
        frame, ["kind", "prompt", "completion"], rows_by_kind=kinds, usually_right=settings.usually_right,
        refusal_share=round(float(frame["kind"].isin(["refusal", "bogus_refusal"]).mean()), 3),
        shards=int(answer_checks["shard"].nunique())))


@dg.asset(**_table(HALLUCINATION_DPO_PAIRS), code_version="2",
          automation_condition=dg.AutomationCondition.eager(),
          ins={"answer_checks": _all("answer_checks"), "policy_answer_samples": _all("policy_answer_samples"),
               "reference_answers": _all("reference_answers"), "refusals": _all("refusals")})
def hallucination_dpo_pairs(context: dg.AssetExecutionContext, project: ProjectResource, trivia_seeds: pd.DataFrame,
                            answer_checks: pd.DataFrame, policy_answer_samples: pd.DataFrame,
                            reference_answers: pd.DataFrame, refusals: pd.DataFrame,
                            base_model: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Correct answer > refusal where the policy was right at least once; refusal > one of its
    own wrong answers (the most common whose opening already commits to a wrong answer) where it
    was wrong at least once. Both sides cut to their first ``dpo_tokens`` tokens of the policy
    tokenizer; the metadata counts what was skipped or kept as is, by reason (``a1_pairs_tally``)."""
    from transformers import AutoTokenizer

    settings = project.settings()
    tokenizer = AutoTokenizer.from_pretrained(ModelRef.from_frame(base_model).path)
    tally = Counter()
    rows = decision.a1_pairs(
        questions=trivia_seeds.set_index("id")["question"].to_dict(),
        samples=graded_samples(answer_checks, policy_answer_samples),
        answers={r.question_id: (r.answer_text, r.id) for r in reference_answers.itertuples()},
        refusals={r.target_id: (r.refusal, r.id) for r in refusals.itertuples()},
        encode=lambda text: tokenizer(text, add_special_tokens=False)["input_ids"], decode=tokenizer.decode,
        n_tokens=settings.dpo_tokens, keys={s["id"]: requests_for.seed_keys(s) for s in trivia_seeds.to_dict("records")},
        tally=tally)
    for row in rows:
        row["id"] = row_id("hdpo", row["question_id"], row["kind"], row["chosen_token_ids"], row["rejected_token_ids"])
    frame = frame_of(rows, HALLUCINATION_DPO_PAIRS)
    return dg.Output(frame, metadata=table_metadata(
        frame, ["kind", "prompt", "chosen", "rejected"], pairs_by_kind=frame["kind"].value_counts().to_dict(),
        questions=int(frame["question_id"].nunique()), tokens_per_side=settings.dpo_tokens,
        a1_pairs_tally=dict(tally) or {"none": 0},
        **column_lineage({"prompt": [("trivia_seeds", "question")],
                          "chosen": [("reference_answers", "answer_text"), ("refusals", "refusal"),
                                     ("policy_answer_samples", "text")],
                          "rejected": [("refusals", "refusal"), ("policy_answer_samples", "text")],
                          "p_correct": [("answer_checks", "matches_key")], "question_id": [("trivia_seeds", "id")],
                          "chosen_from": [("reference_answers", "id"), ("refusals", "id"), ("policy_answer_samples", "id")],
                          "rejected_from": [("refusals", "id"), ("policy_answer_samples", "id")]})))


# -- checks on the outputs ------------------------------------------------------------------


@dg.asset_check(asset=hallucination_dpo_pairs, additional_ins={"answer_checks": _all("answer_checks")},
                description="App. A.1's rule holds: every question the policy got right at least once has its "
                            "answer > refusal pair, and no question it never got right has one.")
def hallucination_dpo_pairs_follow_a1(hallucination_dpo_pairs: pd.DataFrame,
                                      answer_checks: pd.DataFrame) -> dg.AssetCheckResult:
    stats = decision.question_stats(zip(answer_checks["question_id"], answer_checks["matches_key"]))
    sometimes_right = {qid for qid, s in stats.items() if s.n_correct >= 1}
    frame = hallucination_dpo_pairs
    answered = set(frame[frame["kind"] == "answer_over_refusal"]["question_id"]) if len(frame) else set()
    missing, never_right = sorted(sometimes_right - answered), sorted(answered - sometimes_right)
    return dg.AssetCheckResult(passed=not missing and not never_right, metadata={
        "sometimes_right": len(sometimes_right), "answer_over_refusal": len(answered),
        "missing": len(missing), "never_right_but_paired": len(never_right),
        "ids": ", ".join((missing + never_right)[:10])})


@dg.asset_check(asset=hallucination_dpo_pairs, description="Pairs exist, differ, and keep at most N tokens a side.")
def hallucination_dpo_pairs_valid(project: ProjectResource, hallucination_dpo_pairs: pd.DataFrame) -> dg.AssetCheckResult:
    limit = project.settings().dpo_tokens
    frame = hallucination_dpo_pairs
    same = int((frame["chosen"] == frame["rejected"]).sum()) if len(frame) else 0
    too_long = int(sum(len(c) > limit or len(r) > limit
                       for c, r in zip(frame["chosen_token_ids"], frame["rejected_token_ids"])))
    return dg.AssetCheckResult(passed=len(frame) > 0 and same == 0 and too_long == 0,
                               metadata={"pairs": len(frame), "chosen_equals_rejected": same, "over_limit": too_long})


@dg.asset_check(asset=hallucination_sft_data, description="SFT rows exist and none of them is empty.")
def hallucination_sft_data_nonempty(hallucination_sft_data: pd.DataFrame) -> dg.AssetCheckResult:
    frame = hallucination_sft_data
    empty = int((frame["completion"].str.strip() == "").sum()) if len(frame) else 0
    return dg.AssetCheckResult(passed=len(frame) > 0 and empty == 0, metadata={"rows": len(frame), "empty": empty})
