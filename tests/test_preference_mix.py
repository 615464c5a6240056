"""How many hallucination pairs a DPO stage mixes in."""

import pandas as pd
import pytest

from phi4_assets.preference_mix import hallucination_mix, mix_count


def test_the_share_of_the_stage_and_its_bounds():
    assert mix_count(97, 0.03, 100) == 3  # 3 / (97 + 3) = 3%
    assert mix_count(10, 0.03, 100) == 1  # a small stage still gets one
    assert mix_count(1000, 0.05, 4) == 4  # never more than there are
    assert mix_count(50, 0.0, 100) == 0 and mix_count(50, 0.03, 0) == 0
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        mix_count(10, 1.0, 5)


def test_the_first_pairs_by_id_keep_their_exact_tokens_and_an_empty_table_gives_none():
    pairs = pd.DataFrame({"id": ["h2", "h1"], "prompt": ["q2", "q1"], "chosen": ["a", "b"], "rejected": ["c", "d"],
                          "chosen_token_ids": [[1, 2], [3]], "rejected_token_ids": [[4], [5, 6]],
                          "question_id": ["t2", "t1"]})
    (row,) = hallucination_mix(pairs, n_main=10, share=0.03)
    assert (row["id"], row["chosen_token_ids"], row["rejected_token_ids"], row["source"]) == ("h1", [3], [5, 6],
                                                                                             "hallucination")
    assert hallucination_mix(pd.DataFrame(), n_main=10, share=0.03) == []
