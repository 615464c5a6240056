"""The ``judge`` group on the tiny profile, with a scripted teacher and judge on loopback.

The scripted judge (``script`` in tests/scripted.py) behaves differently per prompt, so every
path is exercised: a fair judge (chat-0001), a position-biased one (chat-0002: whatever is shown
first wins), unreadable verdicts (safety prompts: the rules judge takes over), partial verdicts
(math: scores of one assistant missing), swapped and respelled keys (trivia), and a judge that
disagrees with the answer key (multiple choice).
"""

import json
from collections import Counter

import dagster as dg
import pytest
import pandas as pd

from phi4_assets.defs import evaluation, judge, mix, pts, sft, sources
from phi4_assets.hallucination.prompts import answer_check_problem
from phi4_assets.judge.prompts import verdict_problem
from phi4_assets.defs.resources import build_resources
from scripted import ALL, run_all, script
from stub_openai import StubOpenAI

JUDGE = [judge.judge_candidates, judge.judge_ratings, mix.dpo2_mix_pairs, judge.judge_dpo_pairs, judge.dpo2_model,
         judge.dpo2_only_model, judge.judge_dpo_pairs_valid, judge.judge_dpo_pairs_calibrated,
         judge.judge_dpo_pairs_chosen_acceptable]
EVALUATION = [evaluation.stage_evaluations, evaluation.ablation_table, evaluation.simpleqa_evolution]


def _unreadable(request: dict) -> bool:
    """Whether the task's own parser cannot read the scripted reply to ``request``."""
    first, text = request["messages"][0], script(request, 0).content
    if first["role"] == "system" and first["content"].startswith("You are a strict judge"):
        return verdict_problem(text) is not None
    if first["role"] == "system" and first["content"].startswith("You grade answers"):
        return answer_check_problem(text) is not None
    return False


def _meta(result):
    return {e.event_specific_data.materialization.asset_key.path[-1]: e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The graph up to the stage-2 models, materialized once for this module's tests."""
    from conftest import _SESSION_CACHE

    with pytest.MonkeyPatch.context() as mp, StubOpenAI(script) as stub:
        mp.setenv("PHI4_STATE_DIR", str(tmp_path_factory.mktemp("judge") / "state"))
        mp.setenv("PHI4_CACHE_DIR", str(_SESSION_CACHE))
        mp.setenv("PHI4_PROFILE", "tiny")
        mp.delenv("PHI4_CONFIG", raising=False)
        mp.delenv("PHI4_BASE_MODEL", raising=False)
        mp.setenv("PHI4_TEACHER_BASE_URL", stub.base_url)
        mp.setenv("PHI4_TEACHER_MODEL", "stub-teacher")
        instance = dg.DagsterInstance.ephemeral()
        run_all(instance)
        assets = [*ALL, sources.math_problems, sources.mcq_questions, sources.code_problems, sources.chat_prompts,
                  sources.safety_prompts, sources.eval_sets, sft.sft_dataset, sft.sft_model, mix.dpo1_mix_pairs,
                  pts.pts_difficulty, pts.pivotal_tokens, pts.pts_dpo_pairs, pts.dpo1_model, *JUDGE, *EVALUATION]
        resources = build_resources()
        upstream = [sources.math_problems, sources.mcq_questions, sources.code_problems, sources.chat_prompts,
                    sources.safety_prompts, sft.sft_dataset, sft.sft_model, mix.dpo1_mix_pairs, pts.pts_dpo_pairs,
                    pts.dpo1_model]
        dg.materialize(assets, selection=[a.key for a in upstream], resources=resources, instance=instance)
        calls_before = stub.hits
        result = dg.materialize(assets, selection=[a.key for a in JUDGE[:6]], resources=resources, instance=instance)
        yield {"stub": stub, "calls_before": calls_before, "result": result, "assets": assets,
               "resources": resources, "instance": instance}


def test_judge_group_rates_both_orders_anchors_on_keys_and_trains_stage_two(chain):
    judge_stub, calls_before, result = chain["stub"], chain["calls_before"], chain["result"]
    assets, resources, instance = chain["assets"], chain["resources"], chain["instance"]
    meta = _meta(result)

    candidates = result.output_for_node("judge_candidates")
    # 2 chat + 2 safety (a harmful prompt and its look-alike) + 3 keyed (2 math, 1 multiple choice; trivia is
    # left to the hallucination data), from 3 sources each.
    assert len(candidates) == 7 * 3 and candidates["id"].is_unique
    assert set(candidates["source"]) == {"teacher", "sft_model", "dpo1_model"}
    assert sorted(candidates["prompt_kind"].unique()) == ["chat", "keyed:math", "keyed:mcq", "safety:benign",
                                                          "safety:harmful"]
    teacher = candidates[candidates["source"] == "teacher"].set_index("prompt_kind")
    assert teacher.loc["keyed:mcq", "oracle_correct"] and teacher.loc["keyed:mcq", "oracle_outcome"] == "correct"
    keyed = candidates[candidates["oracle_correct"].notna()]
    assert set(keyed["oracle_outcome"]) <= {"correct", "declined", "wrong"} and keyed["oracle_outcome"].notna().all()
    assert teacher["teacher_call_id"].notna().all() and set(teacher["generator"]) == {"stub-teacher"}

    ratings = result.output_for_node("judge_ratings")
    assert len(ratings) == 7 * 3  # every pair of the three sources, per prompt
    # Candidates, then both orders of every pair; identical requests are sent once (the tiny sft
    # and dpo1 models can give the same text, which makes some judge requests the same).
    text = candidates.set_index("id")["response"]
    unique = {(r.prompt_id, *order) for r in ratings.itertuples()
              for order in ((text[r.candidate_a_id], text[r.candidate_b_id]),
                            (text[r.candidate_b_id], text[r.candidate_a_id]))}
    mix_checks = meta["dpo2_mix_pairs"]["answer_check_requests"].value  # its samples graded by the teacher
    assert judge_stub.hits - calls_before == 7 + len(unique) + mix_checks
    assert meta["judge_ratings"]["teacher_requests"].value == 42
    def rating(kind, a, b):
        found = ratings[(ratings["prompt_kind"] == kind) & (ratings["source_a"] == a) & (ratings["source_b"] == b)]
        assert len(found) == 1
        return found.iloc[0]

    fair = ratings[ratings["prompt_id"] == "chat-0001"]
    assert fair["order_consistent"].all() and (fair["judge"] == "stub-teacher").all()
    biased = ratings[ratings["prompt_id"] == "chat-0002"]
    assert (biased["order_consistent"] == False).all()  # noqa: E712
    assert (biased["accuracy_a"] == biased["accuracy_b"]).all()  # averaging cancels the position bias
    safety = ratings[ratings["prompt_kind"].str.startswith("safety")]
    assert (safety["judge"] == "rules").all() and safety["failure_ab"].str.startswith("no JSON object").all()
    math = ratings[ratings["prompt_kind"] == "keyed:math"]
    assert (math["failure_ab"] == "scores: missing assistant_2").all() and (math["judge"] == "rules").all()
    mcq = rating("keyed:mcq", "dpo1_model", "teacher")  # the scripted judge contradicts the key here
    assert mcq["failure_ab"] is None and mcq["failure_ba"] is None
    assert (mcq["accuracy_a"], mcq["accuracy_b"], mcq["accuracy_source"]) == (1.0, 5.0, "oracle")
    assert not bool(mcq["oracle_agrees"])
    harmful = rating("safety:harmful", "sft_model", "teacher")
    assert (harmful["accuracy_a"], harmful["accuracy_b"]) == (1.0, 5.0)
    rmeta = meta["judge_ratings"]
    assert rmeta["judge_verdicts"].value == 2 * 21
    assert rmeta["judge_parse_failure_rate"].value == pytest.approx((2 * 3 * 2 + 2 * 3 * 2) / 42, abs=1e-3)  # safety x2, math x2
    assert rmeta["order_inconsistency_rate"].value == pytest.approx(3 / 9, abs=1e-3)  # chat x2, mcq
    assert rmeta["judge_oracle_agreement"].value == pytest.approx(0.0)  # the mcq judge contradicts the key
    assert rmeta["oracle_comparable"].value == 2

    pairs = result.output_for_node("judge_dpo_pairs")
    judged = pairs[pairs["source"] == "judge"]
    assert len(judged) > 0 and (judged["chosen"] != judged["rejected"]).all()
    assert "chat-0002" not in set(judged["prompt_id"])  # order-inconsistent verdicts give no pair
    by_id = candidates.set_index("id")
    accuracy = judged[judged["subset"] == "accuracy"]
    assert len(accuracy) > 0 and (accuracy["margin"] >= 1.0).all()
    assert set(by_id.loc[accuracy["chosen_candidate_id"], "source"]) == {"teacher"}
    assert set(judged["rating_id"]) <= set(ratings["id"])
    # The "unknown + safety" mix: the floor (4 on tiny), both halves, none of the pairs stage 1 took.
    mixed = pairs[pairs["source"] != "judge"]
    assert len(mixed) == 4 and set(mixed["source"]) == {"hallucination", "safety"}
    pool = result.output_for_node("dpo2_mix_pairs")  # drawn from stage 2's starting model
    dpo1 = dg.materialize(assets, selection=[pts.dpo1_model.key], resources=resources,
                          instance=instance).output_for_node("dpo1_model")
    assert set(mixed["id"]) <= set(pool["id"]) and set(pool["model_version"]) == {dpo1["data_version"].iloc[0]}
    assert not judged.duplicated(["prompt", "chosen", "rejected"]).any()  # a repeated pair would weigh twice
    pts_pairs = dg.materialize(assets, selection=[pts.pts_dpo_pairs.key], resources=resources,
                               instance=instance).output_for_node("pts_dpo_pairs")
    assert not set(mixed["id"]) & set(pts_pairs[pts_pairs["source"].isin(["hallucination", "safety"])]["id"])
    assert set(judged["kind"]) <= {"correct_over_wrong", "correct_over_declined", "declined_over_wrong",
                                   "safety_refuse_over_comply", "benign_answer_over_refusal", "chat"}
    by_kind = meta["judge_dpo_pairs"]["pairs_by_kind"].value  # a markdown table of the pairs' kinds
    assert all(f"| {kind} | {n} |" in by_kind for kind, n in pairs["kind"].value_counts().items()), by_kind
    lineage = meta["judge_dpo_pairs"]["dagster/column_lineage"].value.deps_by_column
    assert {(d.asset_key.path[-1], d.column_name) for d in lineage["chosen"]} == {
        ("judge_candidates", "response"), ("dpo2_mix_pairs", "chosen")}
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["judge_dpo_pairs_valid"].passed and checks["judge_dpo_pairs_calibrated"].passed
    assert checks["judge_dpo_pairs_chosen_acceptable"].passed

    assert meta["dpo2_model"]["steps"].value == 2 and meta["dpo2_only_model"]["steps"].value == 2
    dpo2 = result.output_for_node("dpo2_model").iloc[0]
    only = result.output_for_node("dpo2_only_model").iloc[0]
    assert dpo2["path"] != only["path"] and "dpo2_model" in dpo2["path"] and "dpo2_only_model" in only["path"]

    # Unchanged inputs: on a second materialization the only teacher calls are the replies the
    # task's parser could not read (unreadable verdicts and grades: cached as rejected, asked
    # again); every readable one is a cache hit, and the unreadable ones are handled as before.
    calls = judge_stub.hits
    unreadable = Counter(json.dumps(r["messages"]) for r in judge_stub.requests[calls_before:calls] if _unreadable(r))
    assert unreadable  # the safety and math verdicts (distinct requests: the same texts are sent once)
    again = dg.materialize(assets, selection=[a.key for a in JUDGE[:4]], resources=resources, instance=instance)
    assert Counter(json.dumps(r["messages"]) for r in judge_stub.requests[calls:]) == unreadable
    pd.testing.assert_frame_equal(again.output_for_node("judge_ratings"), ratings)  # the same verdicts, cached
    pd.testing.assert_frame_equal(again.output_for_node("judge_dpo_pairs"), pairs)


def test_every_stage_is_evaluated_and_the_reports_are_built(chain):
    assets, resources, instance = chain["assets"], chain["resources"], chain["instance"]
    dg.materialize(assets, selection=[sources.eval_sets.key], resources=resources, instance=instance)
    per_stage = {}
    for stage in evaluation.STAGES:
        result = dg.materialize(assets, selection=[evaluation.stage_evaluations.key], partition_key=stage,
                                resources=resources, instance=instance)
        per_stage[stage] = result.output_for_node("stage_evaluations")
    for stage, items in per_stage.items():
        # tiny: 4 SimpleQA, 2 MCQ, 2 math, 1 HumanEval task, 2 safety prompts (a harmful one and its twin).
        assert items["benchmark"].value_counts().to_dict() == {"simpleqa": 4, "mcq": 2, "math": 2, "code": 1,
                                                              "safety": 2}
        assert set(items["stage"]) == {stage} and items["id"].is_unique
        simpleqa = items[items["benchmark"] == "simpleqa"]
        assert set(simpleqa["grade"]) <= {"A", "B", "C"}
        assert set(simpleqa["grader"]) == {"llm:stub-teacher"}  # a configured endpoint grades SimpleQA
    result = dg.materialize(assets, selection=[evaluation.ablation_table.key, evaluation.simpleqa_evolution.key],
                            resources=resources, instance=instance)
    table = result.output_for_node("ablation_table")
    assert list(table["row"])[:3] == ["SimpleQA correct", "SimpleQA not attempted", "SimpleQA incorrect"]
    for label in ("base", "SFT", "DPO stage 1", "DPO stage 2 only", "both (final)"):
        assert table[f"{label} n"].iloc[0] == 2  # 2 real SimpleQA questions at every stage
    shares = table.set_index("row").loc[["SimpleQA correct", "SimpleQA not attempted", "SimpleQA incorrect"], "SFT"]
    assert shares.sum() == pytest.approx(100.0)
    assert table.set_index("row").loc["SimpleQA correct", "report: SFT"] == pytest.approx(3.7)
    figure = result.output_for_node("simpleqa_evolution")
    ours = figure[figure["source"] == "ours"]
    assert sorted(ours["stage"].unique()) == ["base", "dpo1", "final", "sft"]
    meta = _meta(result)["simpleqa_evolution"]
    png = meta["figure_path"].value
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in meta["figure"].value


def test_a_short_evaluation_takes_both_strata_of_a_benchmark():
    from phi4_assets.evaluation.runner import select_items

    frame = pd.DataFrame({
        "id": ["sqa-b1", "sqa-b2", "sqa-r1", "sqa-r2", "s-eb1", "s-eb2", "s-eh1", "s-eh2", "m1", "m2", "m3"],
        "benchmark": ["simpleqa"] * 4 + ["safety"] * 4 + ["math"] * 3,
        "bogus": [True, True, False, False] + [False] * 7,
        "category": [None] * 4 + ["benign", "benign", "harmful", "harmful"] + [None] * 3})
    picked = select_items(frame, {"simpleqa": 2, "safety": 2, "math": 2})
    assert sorted(picked["id"]) == ["m1", "m2", "s-eb1", "s-eh1", "sqa-b1", "sqa-r1"]
    assert len(select_items(frame, {"simpleqa": None, "safety": None, "math": None})) == 11


def test_the_chosen_side_check_fails_on_a_wrong_chosen_answer():
    candidates = pd.DataFrame([
        {"id": "c1", "prompt_kind": "keyed:math", "oracle_outcome": "wrong", "response": "The answer is 42."},
        {"id": "c2", "prompt_kind": "keyed:math", "oracle_outcome": "wrong", "response": "10"},
        {"id": "c3", "prompt_kind": "keyed:math", "oracle_outcome": "correct", "response": "16"}])
    pairs = pd.DataFrame([
        {"id": "p1", "source": "judge", "chosen": "The answer is 42.", "chosen_candidate_id": "c1",
         "rejected_candidate_id": "c2"},
        {"id": "p2", "source": "judge", "chosen": "16", "chosen_candidate_id": "c3", "rejected_candidate_id": "c2"},
        {"id": "m1", "source": "hallucination", "chosen": "Rome.", "chosen_candidate_id": None,
         "rejected_candidate_id": None}])
    result = judge.judge_dpo_pairs_chosen_acceptable(judge_dpo_pairs=pairs, judge_candidates=candidates)
    assert not result.passed and result.metadata["ids"].value == "p1"
    good = judge.judge_dpo_pairs_chosen_acceptable(judge_dpo_pairs=pairs[pairs["id"] != "p1"],
                                                   judge_candidates=candidates)
    assert good.passed
