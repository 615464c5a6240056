"""The "unknown + safety" pairs mixed into each DPO stage (report Tables 7 and 8). Pure.

The report mixes hallucination ("unknown") and safety pairs into both DPO stages: 3,000 of
~250k pairs in stage 1 (1.2%) and 43,842 of ~842k in stage 2 (5.2%). Here:

- **How many**: ``share`` of the stage by count, n / (n_main + n) = share, but never fewer than
  ``floor``. At the report's scale the share decides; on a small run it would round to one or two
  pairs out of a few dozen, which is a nominal mix, not a dose: the floor keeps calibration and
  safety in the gradient of every stage. Never more than are available.
- **Which** (``balance``, the profile's ``mix_balance``): by default every *kind* gets its turn
  (answer > decline, decline > wrong on a real question, decline > answer on a bogus one, refuse
  harmful > comply, answer benign > refuse, in name order), so a small dose pushes both ways:
  answering what the model knows and declining what it does not. Two of the three trivia kinds
  push toward declining, so turns by kind weigh declining 2:1; ``balance="directions"`` gives
  each direction one turn (1:1) and ``balance="pool"`` follows the pool's own counts. Measured on
  the small run (``bench/stage_ablation.py --stage dpo1 mix:kinds mix:directions mix:pool``,
  BENCHMARKS.md): from one ``sft_model`` (SimpleQA incorrect 27.6%), turns by kind took stage 1
  to 17.1% incorrect and kept 94% of its correct answers; turns by direction took it *up* to
  40.6% incorrect (and bogus questions refused from 70.9% down to 47.3%). A single "correct
  answer > refusal" pair moves a 135M policy further than a "refusal > wrong" pair does, so the
  2:1 of turns by kind is the balance that keeps the report's direction here. Within a kind,
  pairs come in a fixed pseudo-random order (a hash of the id).
- **Distinct per stage**: each stage draws its pairs from its own half of the seed questions and
  safety prompts (``stage_half``), sampled from the model that stage trains (``defs/mix.py``).
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


def stage_half(ids: Iterable[str], stage: str) -> list[str]:
    """The ids of ``stage``'s half, in a fixed pseudo-random order (a hash of the id): stage 1 the
    first half, stage 2 the rest, so the two stages share no question or prompt."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}; got {stage!r}")
    ordered = sorted(set(ids), key=_stable)
    half = (len(ordered) + 1) // 2
    return ordered[:half] if stage == "dpo1" else ordered[half:]


# The direction each kind pushes the policy (``balance="directions"``).
DIRECTIONS = {"answer_over_refusal": "answer", "refusal_over_wrong": "decline",
              "bogus_refusal_over_answer": "decline", "benign_answer_over_refusal": "answer_benign",
              "safety_refuse_over_comply": "refuse_harmful"}
BALANCES = ("kinds", "directions", "pool")


def _in_turns(queues: dict[str, list[str]], n: int) -> list[str]:
    """Up to ``n`` ids, one from each queue in turn (a queue that runs out leaves its turns)."""
    out: list[str] = []
    while len(out) < n and any(queues.values()):
        for key in queues:
            if queues[key] and len(out) < n:
                out.append(queues[key].pop(0))
    return out


def _in_proportion(queues: dict[str, list[str]], n: int) -> list[str]:
    """``n`` ids, each queue's share of them its share of all ids (largest remainder)."""
    total = sum(len(q) for q in queues.values())
    n = min(n, total)
    if n == 0:
        return []
    exact = {k: n * len(q) / total for k, q in queues.items()}
    take = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: (take[k] - exact[k], k))[:n - sum(take.values())]:
        take[k] += 1
    return [i for k, q in queues.items() for i in q[:take[k]]]


def pick(kinds: Iterable[tuple[str, str]], n: int, balance: str = "kinds") -> list[str]:
    """``n`` ids from (id, kind) pairs. ``balance``: ``kinds`` (each kind in turn), ``directions``
    (each direction in turn, its kinds in turn within it; a kind with no direction is a direction
    of its own) or ``pool`` (each kind in proportion to its pairs). Directions and kinds go in
    name order; within a kind, ids go in hash order."""
    if balance not in BALANCES:
        raise ValueError(f"balance must be one of {BALANCES}; got {balance!r}")
    queues: dict[str, list[str]] = {}
    for pair_id, kind in kinds:
        queues.setdefault(kind, []).append(pair_id)
    queues = {kind: sorted(ids, key=_stable) for kind, ids in sorted(queues.items())}
    if balance == "pool":
        return _in_proportion(queues, n)
    if balance == "kinds":
        return _in_turns(queues, n)
    groups: dict[str, list[str]] = {}
    for kind in queues:
        groups.setdefault(DIRECTIONS.get(kind, kind), []).append(kind)
    # A direction's queue interleaves its kinds, so within it they too take turns.
    return _in_turns({d: _in_turns({k: queues[k] for k in ks}, sum(len(queues[k]) for k in ks))
                      for d, ks in sorted(groups.items())}, n)


def stage_mix(pool: pd.DataFrame, n_main: int, share: float, floor: int,
              balance: str = "kinds") -> list[dict]:
    """The mixed-in rows of one stage (``MIX_COLUMNS``) from its pool (``dpo1_mix_pairs`` /
    ``dpo2_mix_pairs``): ``mix_count`` of them, picked by ``balance`` (``pick``)."""
    n = mix_count(n_main, share, len(pool), floor)
    if n == 0:
        return []
    chosen = pick(zip(pool["id"], pool["kind"]), n, balance)
    rows = pool.set_index("id").loc[chosen].reset_index()
    return [{c: _token_ids(r[c]) if c.endswith("token_ids") else r[c] for c in MIX_COLUMNS}
            for r in rows.to_dict("records")]


def _token_ids(value) -> list[int] | None:
    """Exact token ids as plain ints (DuckDB gives numpy arrays), or None for a full-text pair."""
    if value is None or isinstance(value, float):  # null, or NaN from pandas
        return None
    return [int(v) for v in value]
