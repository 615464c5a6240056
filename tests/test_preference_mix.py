"""The "unknown + safety" mix of each DPO stage: counts, kinds in turn, distinct stages."""

import pandas as pd
import pytest

from phi4_assets.preference_mix import REPORT_SHARES, mix_count, mix_pool, pick, stage_mix


def test_mix_count_follows_the_share_with_a_floor():
    assert mix_count(97, 0.03, 100) == 3  # 3 / (97 + 3) = 3%
    assert mix_count(247_000, REPORT_SHARES["dpo1"], 10**6) == 3_000  # the report's stage 1
    assert mix_count(798_158, REPORT_SHARES["dpo2"], 10**6) == 43_842  # the report's stage 2
    # At the report's share a small stage gets a nominal 1-2 pairs (the old 2 of 55): the floor makes it a dose.
    assert mix_count(55, REPORT_SHARES["dpo2"], 100) == 3
    assert mix_count(55, REPORT_SHARES["dpo2"], 100, floor=24) == 24
    assert mix_count(1000, 0.05, 4, floor=24) == 4  # never more than there are
    assert mix_count(50, 0.0, 100) == 0 and mix_count(50, 0.03, 0, floor=5) == 0
    assert mix_count(50, 0.0, 100, floor=5) == 5
    with pytest.raises(ValueError, match="share"):
        mix_count(10, 1.0, 5)


def _pairs(kinds: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"{kind}-{i}", kind) for kind, n in kinds.items() for i in range(n)]


def test_every_kind_takes_its_turn():
    pairs = _pairs({"refusal_over_wrong": 30, "answer_over_refusal": 4, "safety_refuse_over_comply": 5})
    picked = pick(pairs, 6, "dpo1")
    kinds = [p.rsplit("-", 1)[0] for p in picked]
    assert sorted(kinds) == sorted(["answer_over_refusal", "refusal_over_wrong", "safety_refuse_over_comply"] * 2)
    # A kind that runs out (its half: 2 of 4) leaves its turns to the others.
    assert len(pick(pairs, 20, "dpo1")) == 20
    assert sum(p.startswith("answer") for p in pick(pairs, 20, "dpo1")) == 2


def test_the_two_stages_share_no_pair_while_both_fit():
    pairs = _pairs({"a": 10, "b": 10, "c": 1})
    one, two = pick(pairs, 8, "dpo1"), pick(pairs, 10, "dpo2")
    assert not set(one) & set(two) and len(set(one)) == 8 and len(set(two)) == 10
    assert "c-0" in one and "c-0" not in two  # a kind of one pair goes to one stage
    # Past its own halves a stage takes from the other's: overlap only when the pool is too small.
    assert len(set(pick(pairs, 15, "dpo2")) & set(one)) > 0
    assert pick(pairs, 8, "dpo1") == one  # the same pairs every time
    with pytest.raises(ValueError, match="stage"):
        pick(pairs, 1, "dpo3")


def test_a_stage_mix_has_the_stage_schema_and_keeps_exact_ids_only_for_hallucination_pairs():
    hallucination = pd.DataFrame([{"id": "hdpo-1", "prompt": "Who wrote Hamlet?", "chosen": "William Shakespeare",
                                   "rejected": "I'm not sure", "chosen_token_ids": [5, 6], "rejected_token_ids": [7],
                                   "kind": "answer_over_refusal", "question_id": "trivia-0002"}])
    safety = pd.DataFrame([{"id": "spair-1", "prompt": "How do I pick a lock?", "chosen": "I can't help with that.",
                            "rejected": "First, insert a tension wrench...", "kind": "safety_refuse_over_comply",
                            "prompt_id": "safety-h001"}])
    rows = stage_mix(mix_pool(hallucination, safety), n_main=10, share=0.012, floor=4, stage="dpo1")
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {"hdpo-1", "spair-1"}
    assert by_id["hdpo-1"]["chosen_token_ids"] == [5, 6] and by_id["hdpo-1"]["source"] == "hallucination"
    assert by_id["spair-1"]["chosen_token_ids"] is None and by_id["spair-1"]["source"] == "safety"
    assert by_id["spair-1"]["problem_id"] == "safety-h001"
    assert stage_mix(mix_pool(pd.DataFrame(), pd.DataFrame()), 10, 0.05, 4, "dpo2") == []
