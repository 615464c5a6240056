"""What materializing some assets would cost in teacher calls and tokens, before running it.

For each teacher-calling asset (and seed shard, for the sharded ones) and each teacher task it
sends, ``estimate`` works out:

- ``requests``: the chat requests the asset would send. ``exact`` where they can be rebuilt
  from its current input tables (or, for source tables not materialized yet, from the shipped
  data files read the way the source assets read them) and the profile; ``upper bound`` where an
  input that decides them is not materialized (e.g. answer checks before the policy samples
  exist: questions x samples, though key matches need no call); ``unknown`` where not even that
  can be said.
- ``calls``: distinct requests (the teacher resource sends identical ones once).
- ``cached``: how many of those the teacher cache already answers, by their exact cache keys
  (None = unknown: the requests are not exact, or the embedded teacher's identity, a digest of
  the ``base_model`` weights it serves, is not known because ``base_model`` is not materialized).
- ``to_call``: calls - cached (None when cached is unknown).
- ``prompt_tokens`` and ``completion_tokens`` of the calls to make (to_call, or every call when
  cached is unknown). Completion: ``measured``, the mean of that task's successful calls in the
  cache (same model where it has some, else any model), else an ``upper bound``, the request's
  ``max_tokens``. Prompt: ``counted`` with the teacher's own tokenizer's chat template (the
  embedded teacher serves ``base_model``), else ``measured`` like completions, else counted with
  the base model's tokenizer as an ``approximation`` (a remote teacher); ``unknown`` where the
  request texts are not known yet or no tokenizer is at hand (``base_model`` not materialized:
  nothing is downloaded). ``tokens``: their sum, or the completion tokens alone where the
  prompt tokens are unknown (said in the note).
- ``cost``: those tokens at the profile's ``teacher_prices`` (USD per 1M tokens, per model;
  none built in), an upper bound where the tokens are (``estimate.cost``).

It reads the warehouse, the teacher cache and the profile; it calls nothing and writes nothing.
Inputs are read as they are now: if the selection also re-materializes an input (say
``policy_answer_samples`` with another seed), the requests downstream of it may differ.
Run-config overrides from the launchpad (``samples``, ``generator``, ``chat_prompts``) are not
seen; the profile's values are used.
"""

from .core import Estimate, GraphAsset, Inputs, Line, Plan
from .plans import PLANNERS, plan_answer_checks, plan_bogus_questions, plan_judge_candidates, plan_judge_ratings
from .plans import plan_mix_pairs, plan_reference_answers, plan_refusals, plan_sft_dataset, plan_stage_evaluations
from .run import estimate, expand_selection, graph, teacher_assets
from .text import render_text

__all__ = ["Estimate", "GraphAsset", "Inputs", "Line", "Plan", "PLANNERS", "estimate", "expand_selection", "graph",
           "render_text", "teacher_assets", "plan_answer_checks", "plan_bogus_questions", "plan_judge_candidates",
           "plan_judge_ratings", "plan_mix_pairs", "plan_reference_answers", "plan_refusals", "plan_sft_dataset",
           "plan_stage_evaluations"]
