"""What row lineage follows: each table's id columns and the tables they point into (``EDGES``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass




SCHEMA = "phi4"
VIEW = "lineage_edges"
TEACHER_CALLS = "teacher_calls"
PTS_ESTIMATES = "pts_estimates"
EXTERNAL_KEYS = {TEACHER_CALLS: "call_id", PTS_ESTIMATES: "key"}
EXTERNAL_STORES = {TEACHER_CALLS: "teacher_cache", PTS_ESTIMATES: "pts_memo"}
PARTITION_COLUMNS = ("shard", "domain")


@dataclass(frozen=True)
class Edge:
    child: str
    column: str
    parents: tuple[str, ...]
    parent_key: str = "id"
    when: tuple[str, tuple] | None = None  # (child column, values): the edge holds only for those rows


SOURCES = ("trivia_seeds", "math_problems", "mcq_questions", "code_problems", "chat_prompts", "safety_prompts",
           "eval_sets")
PTS_PROBLEMS = ("math_problems", "mcq_questions", "trivia_seeds", "code_problems")
JUDGE_PROMPTS = ("chat_prompts", "safety_prompts", "trivia_seeds", "math_problems", "mcq_questions")
CALL = (TEACHER_CALLS,)
MIXED = ("source", ("hallucination", "safety"))

EDGES: tuple[Edge, ...] = (
    # pts: pair -> pivot -> PTS estimates at its prefix and after its token (the rollouts) and the problem
    Edge("pts_dpo_pairs", "pivot_id", ("pivotal_tokens",)),
    Edge("pts_dpo_pairs", "id", ("dpo1_mix_pairs",), when=MIXED),  # the mixed-in pairs
    Edge("pivotal_tokens", "estimate_key", (PTS_ESTIMATES,), parent_key="key"),
    Edge("pivotal_tokens", "after_estimate_key", (PTS_ESTIMATES,), parent_key="key"),  # the pivot token's rollouts
    Edge("pivotal_tokens", "problem_id", PTS_PROBLEMS),
    # judge: pair -> rating (two judge calls, both orders) -> candidates -> teacher call and prompt
    Edge("judge_dpo_pairs", "rating_id", ("judge_ratings",)),
    Edge("judge_dpo_pairs", "chosen_candidate_id", ("judge_candidates",)),
    Edge("judge_dpo_pairs", "rejected_candidate_id", ("judge_candidates",)),
    Edge("judge_dpo_pairs", "id", ("dpo2_mix_pairs",), when=MIXED),
    # mix pairs: -> reference answer / refusal / SFT answer, and the question or safety prompt (the
    # starting model's samples are in the row: grades, rejected_full)
    *(e for mix in ("dpo1_mix_pairs", "dpo2_mix_pairs") for e in (
        Edge(mix, "chosen_from", ("reference_answers", "refusals", "sft_dataset")),
        Edge(mix, "rejected_from", ("refusals",)),  # null where it is the model's own response
        Edge(mix, "problem_id", ("trivia_seeds", "bogus_questions", "safety_prompts")))),
    Edge("judge_ratings", "candidate_a_id", ("judge_candidates",)),
    Edge("judge_ratings", "candidate_b_id", ("judge_candidates",)),
    Edge("judge_ratings", "call_ab_id", CALL, "call_id"),
    Edge("judge_ratings", "call_ba_id", CALL, "call_id"),
    Edge("judge_candidates", "teacher_call_id", CALL, "call_id"),
    Edge("judge_candidates", "prompt_id", JUDGE_PROMPTS),
    # hallucination: pair / SFT row -> reference answer, refusal, policy sample, the answer checks
    # that gave p_correct -> teacher calls -> seed question
    Edge("hallucination_dpo_pairs", "chosen_from", ("reference_answers", "refusals", "policy_answer_samples")),
    Edge("hallucination_dpo_pairs", "rejected_from", ("refusals", "policy_answer_samples")),
    Edge("hallucination_dpo_pairs", "question_id", ("answer_checks",), parent_key="question_id"),
    Edge("hallucination_dpo_pairs", "question_id", ("trivia_seeds",)),
    Edge("hallucination_sft_data", "source_id", ("reference_answers", "refusals")),
    Edge("hallucination_sft_data", "question_id", ("answer_checks",), parent_key="question_id",
         when=("kind", ("answer", "refusal"))),
    Edge("hallucination_sft_data", "question_id", ("trivia_seeds",)),
    Edge("refusals", "teacher_call_id", CALL, "call_id"),
    Edge("refusals", "target_id", ("bogus_questions",), when=("bogus", (True,))),
    Edge("refusals", "question_id", ("answer_checks",), parent_key="question_id", when=("bogus", (False,))),
    Edge("refusals", "question_id", ("trivia_seeds",)),
    Edge("bogus_questions", "teacher_call_id", CALL, "call_id"),
    Edge("bogus_questions", "question_id", ("trivia_seeds",)),
    Edge("reference_answers", "teacher_call_id", CALL, "call_id"),
    Edge("reference_answers", "question_id", ("trivia_seeds",)),
    Edge("answer_checks", "sample_id", ("policy_answer_samples",)),
    Edge("answer_checks", "teacher_call_id", CALL, "call_id"),
    Edge("answer_checks", "question_id", ("trivia_seeds",)),
    Edge("policy_answer_samples", "question_id", ("trivia_seeds",)),
    # sft: row -> chat / safety prompt or hallucination SFT row, and its teacher call
    Edge("sft_dataset", "source_id", ("chat_prompts", "safety_prompts", "hallucination_sft_data")),
    Edge("sft_dataset", "teacher_call_id", CALL, "call_id"),
)

# Tables searched first for an id: the most downstream first, so a pair shows its whole chain.
SEARCH_ORDER = tuple(dict.fromkeys([e.child for e in EDGES] + [p for e in EDGES for p in e.parents
                                                                  if p not in EXTERNAL_KEYS]))


class UnknownId(LookupError):
    """No table (nor the teacher cache or the PTS memo) holds the id."""


# -- connections -----------------------------------------------------------------------------


def active_links(tables: dict[str, list[str]]) -> Iterator[tuple[Edge, str]]:
    """(edge, parent table) for every link of ``EDGES`` that the existing warehouse tables allow.

    A child table needs ``id``, the edge's column and its ``when`` column; a warehouse parent
    needs ``id`` and the parent key. External parents (teacher cache, PTS memo) always count."""
    for edge in EDGES:
        columns = set(tables.get(edge.child, ()))
        if not {"id", edge.column} <= columns or (edge.when and edge.when[0] not in columns):
            continue
        for parent in edge.parents:
            if parent in EXTERNAL_KEYS or {"id", edge.parent_key} <= set(tables.get(parent, ())):
                yield edge, parent
