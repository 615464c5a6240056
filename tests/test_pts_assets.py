"""The ``pts`` group on the tiny profile: difficulty, search, pairs, DPO stage 1, memo reuse."""

import dagster as dg

from phi4_assets.defs import mix, pts, sft, sources
from phi4_assets.defs.resources import build_resources
from phi4_assets.pts.memo import EstimateMemo
from phi4_assets.training.mix import stage_half
from scripted import ALL, run_all


def test_pts_group_materializes_and_resumes_from_the_memo(state, stub_teacher, tmp_path, monkeypatch):
    config = tmp_path / "phi4.toml"
    config.write_text("[profile]\npts_window = [0.0, 1.0]\n")  # search every problem, whatever its p
    monkeypatch.setenv("PHI4_CONFIG", str(config))
    instance = dg.DagsterInstance.ephemeral()
    run_all(instance)
    assets = [*ALL, sources.math_problems, sources.mcq_questions, sources.code_problems, sources.chat_prompts,
              sources.safety_prompts, sft.sft_dataset, sft.sft_model, mix.dpo1_mix_pairs, pts.pts_difficulty,
              pts.pivotal_tokens, pts.pts_dpo_pairs, pts.dpo1_model, pts.pts_partners_opposite]
    resources = build_resources()
    dg.materialize(assets, selection=[sources.math_problems.key, sources.mcq_questions.key, sources.code_problems.key,
                                      sources.chat_prompts.key, sources.safety_prompts.key, sft.sft_dataset.key,
                                      sft.sft_model.key, mix.dpo1_mix_pairs.key],
                   resources=resources, instance=instance)
    pivots = []
    for domain in pts.DOMAINS:
        result = dg.materialize(assets, selection=[pts.pts_difficulty.key, pts.pivotal_tokens.key],
                                partition_key=domain, resources=resources, instance=instance)
        difficulty = result.output_for_node("pts_difficulty")
        pivots.append(result.output_for_node("pivotal_tokens"))
        assert len(difficulty) == {"math": 2, "mcq": 2, "qa": 2, "code": 1}[domain]
        assert difficulty["rollouts"].eq(4).all() and difficulty["in_window"].all()
        meta = result.get_asset_materialization_events()[1].event_specific_data.materialization.metadata
        assert meta["problems_searched"].value == len(difficulty)
        # tiny searches two responses a problem (pts_responses), the distinct ones
        assert len(difficulty) <= meta["responses_searched"].value <= 2 * len(difficulty)
        assert meta["estimator_calls"].value >= 2 * meta["responses_searched"].value  # root and end of each

    memo = EstimateMemo(state.pts_memo)
    assert len(memo._connect().execute("select * from pts_estimates").fetchall()) > 0

    result = dg.materialize(assets, selection=[pts.pts_dpo_pairs.key, pts.dpo1_model.key], resources=resources,
                            instance=instance)
    pairs = result.output_for_node("pts_dpo_pairs")
    mixed = pairs[pairs["source"].isin(["hallucination", "safety"])]
    # The "unknown + safety" mix: the floor (4 on tiny) and every kind in turn.
    assert len(mixed) == 4 and {"hallucination", "safety"} <= set(pairs["source"])
    # ... drawn from DPO stage 1's own starting model, on stage 1's half of the questions.
    pooled = dg.materialize(assets, selection=[mix.dpo1_mix_pairs.key], resources=resources, instance=instance)
    pool = pooled.output_for_node("dpo1_mix_pairs")
    assert [e.passed for e in pooled.get_asset_check_evaluations()] == [True]
    sft_ref = dg.materialize(assets, selection=[sft.sft_model.key], resources=resources,
                             instance=instance).output_for_node("sft_model")
    assert set(mixed["id"]) <= set(pool["id"]) and set(pool["model_version"]) == {sft_ref["data_version"].iloc[0]}
    hallucination = pool[pool["source"] == "hallucination"]
    assert hallucination["grades"].str.fullmatch(r"True \d+ / False \d+ / Uncertain \d+").all()
    assert (hallucination["chosen_token_ids"].map(len) <= 5).all()
    pool_meta = pooled.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    # Stage 1's half of the bogus questions (one on tiny): the tiny model's committed answer is rejected.
    bogus = pool[pool["kind"] == "bogus_refusal_over_answer"]
    assert pool_meta["bogus_questions"].value == 1 and len(bogus) == 1
    assert bogus["chosen_from"].str.startswith("refusal-").all() and bogus["rejected_full"].notna().all()
    assert bogus["grades"].str.fullmatch(r"True 0 / False [12] / Uncertain [01]").all()
    assert set(pairs[pairs["source"].str.startswith("pts:")]["kind"]) <= {"pts_up", "pts_down"}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["pts_partners_opposite"]
    meta = {e.event_specific_data.materialization.asset_key.path[-1]: e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert meta["dpo1_model"]["steps"].value == 2

    # A pivot found again in another response of its problem (the same prefix, the same token) is
    # one pair. The random tiny model finds no pivot with a partner, so one is planted: an
    # estimate in the memo whose rollouts starting with token 9 all failed, and the pivot token 5
    # found at that prefix in two responses.
    import pandas as pd

    from phi4_assets.pts.memo import Estimate, estimate_key

    params = {"planted": True}
    memo.store("mv", "planted-1", (3, 4), params,
               Estimate(p=0.5, n=4, first_tokens=(5, 5, 9, 9), outcomes=(True, True, False, False), tokens=8))
    row = {"domain": "math", "problem_id": "planted-1", "response_text": "x", "index": 2, "token": 5,
           "token_text": "x", "prefix_ids": [3, 4], "prefix_text": "x", "prefix_hash": "x",
           "estimate_key": estimate_key("mv", "planted-1", (3, 4), 4, params), "prompt_ids": [1, 2],
           "p_before": 0.25, "p_after": 0.75, "delta": 0.5, "rollouts_per_estimate": 4, "accepted": True,
           "model_version": "mv"}
    planted = pd.DataFrame([{**row, "id": f"pivot-{r}", "response_id": f"response-{r}"} for r in "ab"])
    # And a pivot whose only partner, token 9, opens a decline in both of its rollouts: answering
    # over declining is not PTS's call (pts.pairs), so it makes no pair.
    memo.store("mv", "planted-2", (3, 4), params,
               Estimate(p=0.5, n=4, first_tokens=(5, 5, 9, 9), outcomes=(True, True, False, False), tokens=8,
                        declined=(False, False, True, True)))
    planted = pd.concat([planted, pd.DataFrame([{
        **row, "id": "pivot-c", "response_id": "response-c", "problem_id": "planted-2",
        "estimate_key": estimate_key("mv", "planted-2", (3, 4), 4, params),
        "after_estimate_key": estimate_key("mv", "planted-2", (3, 4, 5), 4, params)}])], ignore_index=True)
    sft_frame = dg.materialize(assets, selection=[sft.sft_model.key], resources=resources,
                               instance=instance).output_for_node("sft_model")
    with dg.build_asset_context() as context:
        direct = pts.pts_dpo_pairs(context=context, project=resources["project"], pts_memo=resources["pts_memo"],
                                   pivotal_tokens=planted, dpo1_mix_pairs=pool, sft_model=sft_frame)
    one = direct.value[direct.value["source"] == "pts:math"]
    assert one[["pivot_id", "chosen_token_ids", "rejected_token_ids"]].map(
        lambda v: list(v) if not isinstance(v, str) else v).values.tolist() == [["pivot-a", [5], [9]]]
    assert direct.metadata["repeated_pivots"].value == 1 and direct.metadata["pts_pairs"].value == 1
    assert direct.metadata["about_declining_left_out"].value == 1
    assert direct.metadata["pivots_without_partner"].value == 0

    # Re-materializing a domain re-uses every estimate: no rollout is sampled again.
    again = dg.materialize(assets, selection=[pts.pts_difficulty.key, pts.pivotal_tokens.key], partition_key="math",
                           resources=resources, instance=instance)
    meta = again.get_asset_materialization_events()[1].event_specific_data.materialization.metadata
    assert meta["rollouts_sampled"].value == 0 and meta["memo_hits"].value >= 2

    # With a1_known_from_base, a question the base model got right keeps its "answer > refusal"
    # pair whatever the starting model's own samples say (hallucination.decision, ``known``). The
    # random tiny model is never right, so one of its answer checks is marked right by hand.
    before = set(hallucination.loc[hallucination["kind"] == "answer_over_refusal", "problem_id"])
    import duckdb
    with duckdb.connect(str(state.warehouse)) as con:
        real = [q for (q,) in con.execute("SELECT target_id FROM phi4.refusals WHERE NOT bogus").fetchall()]
        hidden = sorted(set(stage_half(real, "dpo1")) - before)[0]
        con.execute("UPDATE phi4.answer_checks SET matches_key = 'True' WHERE question_id = ? AND sample_index = 0",
                    [hidden])
    config.write_text("[profile]\npts_window = [0.0, 1.0]\na1_known_from_base = true\n")
    known_run = dg.materialize(assets, selection=[mix.dpo1_mix_pairs.key], resources=build_resources(),
                               instance=instance)
    known_pool = known_run.output_for_node("dpo1_mix_pairs")
    known_meta = known_run.get_asset_materialization_events()[0].event_specific_data.materialization.metadata
    assert [e.passed for e in known_run.get_asset_check_evaluations()] == [True]
    assert known_meta["a1_known_from_base"].value is True and known_meta["known_from_base"].value == 1
    answered = known_pool[known_pool["kind"] == "answer_over_refusal"]
    assert set(answered["problem_id"]) == before | {hidden}
    row = answered[answered["problem_id"] == hidden].iloc[0]
    assert row["chosen_from"].startswith("ref") and row["grades"].startswith("True 0 /")
