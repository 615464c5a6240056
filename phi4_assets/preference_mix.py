"""The "unknown + safety" pairs mixed into each DPO stage (report Tables 7 and 8). Pure.

The report mixes hallucination ("unknown") and safety pairs into both DPO stages: 3,000 of
~250k pairs in stage 1 (1.2%) and 43,842 of ~842k in stage 2 (5.2%). Here:

- **How many**: ``share`` of the stage by count, n / (n_main + n) = share, but never fewer than
  ``floor``. At the report's scale the share decides; on a small run it would round to one or two
  pairs out of a few dozen, which is a nominal mix, not a dose: the floor keeps calibration and
  safety in the gradient of every stage. Never more than are available.
- **Which**: every kind gets its turn (answer > decline, decline > wrong, refuse harmful > comply,
  answer benign > refuse, in name order), so a small dose still pushes both ways: answering what
  the model knows and declining what it does not. Within a kind, pairs come in a fixed
  pseudo-random order (a hash of the id).
- **Distinct per stage**: each kind's pairs are cut in two halves, one per stage, so the stages
  share no pair while each stage's dose fits in its halves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd

# The report's shares by count (Tables 7 and 8).
REPORT_SHARES = {"dpo1": 3_000 / 250_000, "dpo2": 43_842 / 842_000}
STAGES = ("dpo1", "dpo2")
MIX_COLUMNS = ["id", "prompt", "chosen", "rejected", "chosen_token_ids", "rejected_token_ids", "source", "kind",
               "problem_id"]


def mix_count(n_main: int, share: float, available: int, floor: int = 0) -> int:
    """Pairs to mix in: ``share`` of the stage (at least ``floor``), at most ``available``."""
    if not 0 <= share < 1:
        raise ValueError(f"a mix share must be in [0, 1); got {share}")
    if floor < 0:
        raise ValueError(f"a mix floor must be >= 0; got {floor}")
    if available == 0 or (share == 0 and floor == 0):
        return 0
    return min(available, max(floor, round(share / (1 - share) * n_main)))


def _stable(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def pick(kinds: Iterable[tuple[str, str]], n: int, stage: str) -> list[str]:
    """``n`` ids from (id, kind) pairs, kinds in turn. Each kind's pairs, in hash order, are cut in
    two halves: stage 1 takes from the first, stage 2 from the second, and a stage reaches into the
    other half only once its own halves are used up."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}; got {stage!r}")
    by_kind: dict[str, list[str]] = {}
    for pair_id, kind in kinds:
        by_kind.setdefault(kind, []).append(pair_id)
    own, other = {}, {}
    for kind, ids in sorted(by_kind.items()):
        ordered = sorted(ids, key=_stable)
        half = (len(ordered) + 1) // 2
        first, second = ordered[:half], ordered[half:]
        own[kind], other[kind] = (first, second) if stage == "dpo1" else (second, first)
    out: list[str] = []
    for queues in (own, other):
        while len(out) < n and any(queues.values()):
            for kind in sorted(queues):
                if queues[kind] and len(out) < n:
                    out.append(queues[kind].pop(0))
    return out


def mix_pool(hallucination_dpo_pairs: pd.DataFrame, safety_dpo_pairs: pd.DataFrame) -> pd.DataFrame:
    """Both pair tables in the stage pair schema (``MIX_COLUMNS``): hallucination pairs keep their
    exact 5-token ids (trained with no end-of-turn); safety pairs are full responses."""
    parts = []
    if len(hallucination_dpo_pairs):
        parts.append(pd.DataFrame({
            "id": hallucination_dpo_pairs["id"], "prompt": hallucination_dpo_pairs["prompt"],
            "chosen": hallucination_dpo_pairs["chosen"], "rejected": hallucination_dpo_pairs["rejected"],
            "chosen_token_ids": [[int(v) for v in ids] for ids in hallucination_dpo_pairs["chosen_token_ids"]],
            "rejected_token_ids": [[int(v) for v in ids] for ids in hallucination_dpo_pairs["rejected_token_ids"]],
            "source": "hallucination", "kind": hallucination_dpo_pairs["kind"],
            "problem_id": hallucination_dpo_pairs["question_id"]}))
    if len(safety_dpo_pairs):
        parts.append(pd.DataFrame({
            "id": safety_dpo_pairs["id"], "prompt": safety_dpo_pairs["prompt"], "chosen": safety_dpo_pairs["chosen"],
            "rejected": safety_dpo_pairs["rejected"], "chosen_token_ids": None, "rejected_token_ids": None,
            "source": "safety", "kind": safety_dpo_pairs["kind"], "problem_id": safety_dpo_pairs["prompt_id"]}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=MIX_COLUMNS)


def stage_mix(pool: pd.DataFrame, n_main: int, share: float, floor: int, stage: str) -> list[dict]:
    """The mixed-in rows of one stage (``MIX_COLUMNS``), from ``mix_pool``."""
    n = mix_count(n_main, share, len(pool), floor)
    if n == 0:
        return []
    chosen = pick(zip(pool["id"], pool["kind"]), n, stage)
    rows = pool.set_index("id").loc[chosen].reset_index()
    return [{c: (None if c.endswith("token_ids") and not isinstance(r[c], list) else r[c]) for c in MIX_COLUMNS}
            for r in rows.to_dict("records")]
