"""Mixing hallucination pairs into a DPO stage (the report: 1-5% hallucination and safety pairs
in each stage). Pure: which pairs, how many, in the stage's pair schema."""

from __future__ import annotations

import pandas as pd


def mix_count(n_main: int, share: float, available: int) -> int:
    """How many extra pairs make up ``share`` of the stage: n / (n_main + n) = share, at least
    one where any is available (a tiny stage still gets the mix), never more than available."""
    if not 0 <= share < 1:
        raise ValueError(f"a mix share must be in [0, 1); got {share}")
    if available == 0 or share == 0:
        return 0
    return min(available, max(1, round(share / (1 - share) * n_main)))


def hallucination_mix(hallucination_dpo_pairs: pd.DataFrame, n_main: int, share: float) -> list[dict]:
    """The first ``mix_count`` hallucination pairs by id, as rows with the exact token ids kept
    (5 tokens a side: trained as they are, with no end-of-turn appended)."""
    n = mix_count(n_main, share, len(hallucination_dpo_pairs))
    if n == 0:
        return []
    mix = hallucination_dpo_pairs.sort_values("id").head(n)
    return [{"id": r.id, "prompt": r.prompt, "chosen": r.chosen, "rejected": r.rejected,
             "chosen_token_ids": [int(v) for v in r.chosen_token_ids],
             "rejected_token_ids": [int(v) for v in r.rejected_token_ids], "source": "hallucination",
             "problem_id": r.question_id} for r in mix.itertuples()]
