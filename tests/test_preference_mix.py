"""The "unknown + safety" mix of each DPO stage: counts, kinds in turn, distinct stages."""

from collections import Counter

import pandas as pd
import pytest

from phi4_assets.training.mix import MIX_COLUMNS, REPORT_SHARES, mix_count, pick, stage_half, stage_mix


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
    pairs = _pairs({"refusal_over_wrong": 30, "answer_over_refusal": 2, "safety_refuse_over_comply": 5})
    picked = pick(pairs, 6)
    kinds = [p.rsplit("-", 1)[0] for p in picked]
    assert sorted(kinds) == sorted(["answer_over_refusal", "refusal_over_wrong", "safety_refuse_over_comply"] * 2)
    # A kind that runs out (2 pairs) leaves its turns to the others.
    assert len(pick(pairs, 20)) == 20
    assert sum(p.startswith("answer") for p in pick(pairs, 20)) == 2
    assert pick(pairs, 6) == picked  # the same pairs every time


def test_the_three_balances_of_a_mix():
    pairs = _pairs({"answer_over_refusal": 38, "refusal_over_wrong": 15, "bogus_refusal_over_answer": 7,
                    "benign_answer_over_refusal": 35, "safety_refuse_over_comply": 29})
    count = lambda ids: Counter(p.rsplit("-", 1)[0] for p in ids)  # noqa: E731
    # By direction: 6 answer, 6 decline (3 real + 3 bogus: the two decline kinds alternate), 6 + 6 safety.
    assert count(pick(pairs, 24, "directions")) == {"answer_over_refusal": 6, "refusal_over_wrong": 3,
                                      "bogus_refusal_over_answer": 3, "benign_answer_over_refusal": 6,
                                      "safety_refuse_over_comply": 6}
    # By kind (the default), the decline direction gets two turns to the answer direction's one.
    assert count(pick(pairs, 24)) == count(pick(pairs, 24, "kinds")) == {"answer_over_refusal": 5, "refusal_over_wrong": 5,
                                               "bogus_refusal_over_answer": 5, "benign_answer_over_refusal": 5,
                                               "safety_refuse_over_comply": 4}
    # In the pool's proportions (124 pairs, 24 taken; largest remainder).
    assert count(pick(pairs, 24, "pool")) == {"answer_over_refusal": 7, "refusal_over_wrong": 3,
                                              "bogus_refusal_over_answer": 1, "benign_answer_over_refusal": 7,
                                              "safety_refuse_over_comply": 6}
    # A direction whose kinds run out leaves its turns to the others.
    few = _pairs({"answer_over_refusal": 10, "refusal_over_wrong": 1, "bogus_refusal_over_answer": 1})
    assert count(pick(few, 8, "directions")) == {"answer_over_refusal": 6, "refusal_over_wrong": 1, "bogus_refusal_over_answer": 1}
    assert count(pick(few, 100, "pool")) == count(pick(few, 100, "directions")) == {"answer_over_refusal": 10,
                                                                      "refusal_over_wrong": 1,
                                                                      "bogus_refusal_over_answer": 1}
    with pytest.raises(ValueError, match="balance"):
        pick(pairs, 4, "random")


def test_the_two_stages_take_disjoint_halves_of_the_questions():
    ids = [f"trivia-{i:04d}" for i in range(11)]
    one, two = stage_half(ids, "dpo1"), stage_half(ids, "dpo2")
    assert not set(one) & set(two) and set(one) | set(two) == set(ids)
    assert (len(one), len(two)) == (6, 5)
    assert stage_half(reversed(ids), "dpo1") == one  # by content, not by the order given
    assert stage_half(ids + ids[:3], "dpo2") == two  # duplicates do not shift the cut
    with pytest.raises(ValueError, match="stage"):
        stage_half(ids, "dpo3")


def test_a_stage_mix_has_the_stage_schema_and_keeps_exact_ids_only_for_hallucination_pairs():
    pool = pd.DataFrame([
        {"id": "mix-1", "prompt": "Who wrote Hamlet?", "chosen": "William Shakespeare", "rejected": "I'm not sure",
         "chosen_token_ids": [5, 6], "rejected_token_ids": [7], "source": "hallucination",
         "kind": "answer_over_refusal", "problem_id": "trivia-0002", "grades": "True 1 / False 7 / Uncertain 0"},
        {"id": "mix-2", "prompt": "How do I pick a lock?", "chosen": "I can't help with that.",
         "rejected": "First, insert a tension wrench...", "chosen_token_ids": None, "rejected_token_ids": None,
         "source": "safety", "kind": "safety_refuse_over_comply", "problem_id": "safety-h001", "grades": None}])
    rows = stage_mix(pool, n_main=10, share=0.012, floor=4)
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {"mix-1", "mix-2"} and all(list(r) == MIX_COLUMNS for r in rows)
    assert by_id["mix-1"]["chosen_token_ids"] == [5, 6] and by_id["mix-1"]["source"] == "hallucination"
    assert by_id["mix-2"]["chosen_token_ids"] is None and by_id["mix-2"]["source"] == "safety"
    assert by_id["mix-2"]["problem_id"] == "safety-h001"
    assert stage_mix(pool.iloc[:0], 10, 0.05, 4) == []
    assert [r["id"] for r in stage_mix(pool, n_main=10, share=0.012, floor=1)] == ["mix-1"]
