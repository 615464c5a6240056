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
  none built in), an upper bound where the tokens are (``estimate_cost``).

It reads the warehouse, the teacher cache and the profile; it calls nothing and writes nothing.
Inputs are read as they are now: if the selection also re-materializes an input (say
``policy_answer_samples`` with another seed), the requests downstream of it may differ.
Run-config overrides from the launchpad (``samples``, ``generator``, ``chat_prompts``) are not
seen; the profile's values are used.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from .evaluation.graders import LLMGrader
from .hallucination import decision, rules
from .hallucination import requests as hreq
from .judge import requests as judge_requests
from .sft_data import chat_prompt_selection, response_request
from .duckdb_files import connection
from .duckdb_files import stored_columns
from .estimate_cost import PromptCounter, cost_summary, cost_usd, price_hint, prompt_counter, usd
from .lineage import SCHEMA
from .profiles import Profile, load_profile
from .settings import Paths
from .teacher import ChatRequest

@dataclass(frozen=True)
class GraphAsset:
    """What the estimate needs to know of one asset of the definitions."""
    name: str
    group: str
    teacher: bool  # it takes the teacher resource
    sharded: bool  # partitioned by seed shards


@dataclass
class Plan:
    """What one asset would ask the teacher, for one partition and task (internal)."""

    asset: str
    partition: str | None
    task: str
    generator: str
    max_tokens: int | None = None
    requests: list[ChatRequest] | None = None  # exact
    bound: int | None = None  # upper bound on requests, when not exact
    basis: str = ""


@dataclass
class Line:
    asset: str
    partition: str | None
    task: str
    generator: str
    requests: int | None
    requests_basis: str  # "exact" | "upper bound" | "unknown" | "none"
    calls: int | None
    cached: int | None
    to_call: int | None
    tokens_per_call: float | None
    tokens: int | None
    tokens_basis: str  # of the completion tokens: "measured" | "upper bound" | "unknown" | "none"
    tokens_note: str = ""
    note: str = ""
    prompt_tokens: int | None = None
    prompt_basis: str = "unknown"  # "counted" | "approximation" | "measured" | "unknown" | "none"
    completion_tokens: int | None = None
    cost: float | None = None  # USD; of the completion tokens alone where prompt_tokens is None
    unpriced: list[str] = field(default_factory=list)  # models asked without a teacher_prices entry

    @property
    def tokens_are_upper_bound(self) -> bool:
        return self.tokens_basis == "upper bound" or (
            self.tokens is not None and (self.requests_basis == "upper bound" or self.cached is None))

    @property
    def tokens_are_partial(self) -> bool:
        """``tokens`` (and ``cost``) leave out prompt tokens nobody could count."""
        return bool(self.tokens) and self.prompt_tokens is None


@dataclass
class Estimate:
    profile: str
    teacher: str | None  # the cache identity of the teacher (None: unknown)
    teacher_note: str
    priced_model: str = ""  # the teacher's model name in teacher_prices
    price: dict[str, float] | None = None  # its price (None: not set)
    prompt_note: str = ""  # which tokenizer counts prompt tokens, or why none does
    lines: list[Line] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # selected assets without teacher calls: why

    def totals(self) -> dict:
        def total(name):
            values = [getattr(line, name) for line in self.lines]
            return {"value": sum(v for v in values if v is not None), "complete": all(v is not None for v in values)}
        def counted(name):  # tokens and cost: also incomplete where prompt tokens are left out
            out = total(name)
            out["complete"] = out["complete"] and not any(line.tokens_are_partial for line in self.lines)
            return out
        return {"requests": total("requests"), "calls": total("calls"), "cached": total("cached"),
                "to_call": total("to_call"), "tokens": counted("tokens"), "prompt_tokens": total("prompt_tokens"),
                "completion_tokens": total("completion_tokens"),
                "tokens_upper_bound": any(line.tokens_are_upper_bound for line in self.lines),
                "cost": counted("cost"), "cost_upper_bound": any(line.tokens_are_upper_bound and line.cost
                                                      for line in self.lines)}

    def to_json(self) -> dict:
        return {"profile": self.profile, "teacher": self.teacher, "teacher_note": self.teacher_note,
                "priced_model": self.priced_model, "price": self.price, "prompt_note": self.prompt_note,
                "lines": [{**asdict(line), "tokens_upper_bound": line.tokens_are_upper_bound,
                           "tokens_partial": line.tokens_are_partial} for line in self.lines],
                "no_teacher_calls": self.skipped, "totals": self.totals()}


# -- inputs ----------------------------------------------------------------------------------------


class Inputs:
    """The current warehouse tables, the shipped sources, the teacher resource and its cache."""

    def __init__(self, profile: Profile, paths: Paths):
        from .defs.resources import build_resources

        self.profile, self.paths = profile, paths
        resources = build_resources(profile.name, paths)
        self.teacher, self.project = resources["teacher"], resources["project"]
        self._frames: dict[str, pd.DataFrame | None] = {}
        self._tables: dict[str, list[str]] | None = None
        self._identity: tuple[str | None, str] | None = None
        self._token_stats: pd.DataFrame | None = None
        self._prompts: PromptCounter | None = None

    # tables
    def table(self, name: str) -> pd.DataFrame | None:
        """A warehouse table as it is now (None: not materialized)."""
        if name not in self._frames:
            self._frames[name] = None
            if self.paths.warehouse.exists():
                with connection(self.paths.warehouse) as con:
                    if self._tables is None:
                        self._tables = stored_columns(con, SCHEMA)
                    if name in self._tables:
                        self._frames[name] = con.execute(f'SELECT * FROM {SCHEMA}."{name}"').fetchdf()
        return self._frames[name]

    def source(self, name: str) -> tuple[pd.DataFrame, str]:
        """A source table: the warehouse's, else what the source asset would make from the shipped files."""
        frame = self.table(name)
        if frame is not None:
            return frame, "warehouse"
        from .defs import sources

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            asset = getattr(sources, name)
            if name == "trivia_seeds":  # the one source that reads the instance (registered seed files)
                import dagster as dg

                home = os.environ.get("DAGSTER_HOME")
                # Registered incoming seed files live in the instance; without one, only the shipped seeds.
                instance = dg.DagsterInstance.get() if home and os.path.isdir(home) else dg.DagsterInstance.ephemeral()
                with dg.build_asset_context(instance=instance) as context:
                    frame = asset(context, project=self.project).value
            else:
                frame = asset(project=self.project).value
        self._frames[name] = frame
        return frame, "data files"

    def shard_questions(self) -> dict[str, pd.DataFrame]:
        """The seed questions of each shard, as the hallucination assets cut them."""
        from .sources.shards import assign_shards, shard_keys

        trivia, _ = self.source("trivia_seeds")
        shards = assign_shards(trivia, self.profile.shard_size, self.profile.hallucination_seeds)
        return {key: trivia[shards == key].sort_values("id").reset_index(drop=True)
                for key in shard_keys(trivia, self.profile.shard_size, self.profile.hallucination_seeds)}

    def base_model_dir(self) -> Path | None:
        """The materialized ``base_model`` directory (None: not materialized, or gone)."""
        base = self.table("base_model")
        path = Path(base.iloc[0]["path"]) if base is not None and len(base) == 1 else None
        return path if path is not None and path.is_dir() else None

    # the teacher
    @property
    def teacher_name(self) -> str:
        """The teacher's model name, as ``teacher_prices`` knows it: the endpoint's model, or
        for the embedded teacher the ``base_model`` it serves."""
        return self.profile.base_model if self.teacher.embedded else (self.teacher.model or "default")

    def model_of(self, request: ChatRequest) -> str:
        """The model name a request is priced at (another model at the endpoint, or the teacher)."""
        return request.model if request.model is not None and request.model != self.teacher.model \
            else self.teacher_name

    def prompts(self) -> PromptCounter:
        """Counts prompt tokens: with the base model's tokenizer, the teacher's own when embedded."""
        if self._prompts is None:
            self._prompts = prompt_counter(self.base_model_dir(), self.teacher.embedded, self.teacher_name)
        return self._prompts

    def identity(self) -> tuple[str | None, str]:
        """The teacher's cache identity, and how it was found."""
        if self._identity is None:
            if not self.teacher.embedded:
                self._identity = (self.teacher.model_identity(), f"configured endpoint {self.teacher.base_url}")
            else:
                path = self.base_model_dir()
                if path is None:
                    self._identity = (None, "embedded teacher over base_model, which is not materialized: its cache "
                                            "identity (a digest of the weights) is unknown, so cache hits are unknown")
                else:
                    self._identity = (self.teacher.model_identity(str(path)), f"embedded teacher over {path}")
        return self._identity

    def key(self, identity: str, request: ChatRequest) -> str:
        """The teacher cache key of a request (as ``TeacherResource.complete`` computes it). A
        request for another model is keyed by that model's name, also where the embedded
        teacher could not serve it (the estimate still counts what it would ask)."""
        if request.model is not None and request.model != self.teacher.model:
            identity, request = request.model, dataclasses.replace(request, model=None)
        return self.teacher.request_key(request, identity)[0]

    def cached(self, keys: list[str]) -> set[str]:
        """The keys the teacher cache answers."""
        from .teacher.cache import TeacherCache

        return set(TeacherCache(self.paths.teacher_cache).lookup(keys)) if keys else set()

    def tokens_per_call(self, task: str, identity: str | None) -> tuple[tuple[float, float] | None, str]:
        """Mean (prompt, completion) tokens of the task's successful cached calls, and what it is."""
        if self._token_stats is None:
            self._token_stats = pd.DataFrame(columns=["model", "task", "n", "prompt", "completion"])
            if self.paths.teacher_cache.exists():
                with connection(self.paths.teacher_cache) as con:
                    if "teacher_calls" in stored_columns(con):
                        self._token_stats = con.execute(
                            "SELECT model, task, count(*) AS n, sum(prompt_tokens) AS prompt, "
                            "sum(completion_tokens) AS completion FROM teacher_calls "
                            "WHERE error IS NULL AND response IS NOT NULL GROUP BY model, task").fetchdf()
        stats = self._token_stats[self._token_stats["task"] == task]
        same = stats[stats["model"] == identity] if identity else stats.iloc[0:0]
        rows, whose = (same, "this teacher") if len(same) else (stats, "any model")
        n = int(rows["n"].sum()) if len(rows) else 0
        total = float(rows["prompt"].fillna(0).sum() + rows["completion"].fillna(0).sum()) if n else 0.0
        if not n or total == 0:
            return None, f"no cached {task} calls with token usage"
        mean_prompt = float(rows["prompt"].fillna(0).sum()) / n
        mean_completion = float(rows["completion"].fillna(0).sum()) / n
        return (mean_prompt, mean_completion), (f"measured: mean {mean_prompt:.0f}+{mean_completion:.0f} tokens "
                                                f"over {n} cached {task} calls ({whose})")


# -- what each asset would ask -------------------------------------------------------------------


def _in_shard(frame: pd.DataFrame | None, shard: str) -> pd.DataFrame | None:
    if frame is None or "shard" not in frame.columns:
        return None
    part = frame[frame["shard"] == shard]
    return part if len(part) else None


def _rules(asset: str, partition: str | None, task: str) -> Plan:
    return Plan(asset, partition, task, "rules", requests=[], basis="generator rules: no teacher calls")


def plan_answer_checks(inputs: Inputs, shard: str, questions: pd.DataFrame) -> list[Plan]:
    p = inputs.profile
    if p.generators.get("answer_check") != "teacher":
        return [_rules("answer_checks", shard, "answer_check")]
    trivia, _ = inputs.source("trivia_seeds")
    seeds = trivia.set_index("id")
    samples = _in_shard(inputs.table("policy_answer_samples"), shard)
    plan = Plan("answer_checks", shard, "answer_check", "teacher", max_tokens=hreq.ANSWER_CHECK_TOKENS)
    if samples is None:
        plan.bound = len(questions) * p.answer_samples
        plan.basis = (f"{len(questions)} questions x answer_samples {p.answer_samples}; policy_answer_samples "
                      f"[{shard}] is not materialized (samples that contain the key need no call)")
        return [plan]
    plan.requests = [hreq.answer_check(seeds.loc[s.question_id], s.text) for s in samples.itertuples()
                     if not rules.mentions_key(s.text, hreq.seed_keys(seeds.loc[s.question_id]))]
    plan.basis = (f"{len(samples)} samples in policy_answer_samples [{shard}], "
                  f"{len(samples) - len(plan.requests)} contain the key (no call)")
    return [plan]


def plan_reference_answers(inputs: Inputs, shard: str, questions: pd.DataFrame) -> list[Plan]:
    if inputs.profile.generators.get("reference_answer") != "teacher":
        return [_rules("reference_answers", shard, "reference_answer")]
    requests = [hreq.reference_answer(q) for _, q in questions.iterrows()]
    return [Plan("reference_answers", shard, "reference_answer", "teacher", hreq.REFERENCE_ANSWER_TOKENS, requests,
                 basis=f"one per seed question ({len(questions)})")]


def plan_bogus_questions(inputs: Inputs, shard: str, questions: pd.DataFrame) -> list[Plan]:
    if inputs.profile.generators.get("bogus_question") != "teacher":
        return [_rules("bogus_questions", shard, "bogus_question")]
    requests = [hreq.bogus_question(q) for _, q in questions.iterrows()]
    return [Plan("bogus_questions", shard, "bogus_question", "teacher", hreq.BOGUS_QUESTION_TOKENS, requests,
                 basis=f"one per seed question ({len(questions)})")]


def plan_refusals(inputs: Inputs, shard: str, questions: pd.DataFrame) -> list[Plan]:
    p = inputs.profile
    if p.generators.get("refusal") != "teacher":
        return [_rules("refusals", shard, "refusal")]
    plan = Plan("refusals", shard, "refusal", "teacher", max_tokens=hreq.REFUSAL_TOKENS)
    checks = _in_shard(inputs.table("answer_checks"), shard)
    bogus = _in_shard(inputs.table("bogus_questions"), shard)
    n_real = n_bogus = len(questions)  # upper bounds while an input is not materialized
    why = []
    if checks is not None:
        stats = decision.question_stats(zip(checks["question_id"], checks["matches_key"]))
        n_real = sum(decision.needs_refusal(s) for s in stats.values())
        why.append(f"{n_real} real questions (answer_checks [{shard}])")
    else:
        why.append(f"up to {len(questions)} real questions (answer_checks [{shard}] is not materialized)")
    if bogus is not None:
        n_bogus = int(bogus["kept"].astype(bool).sum())
        why.append(f"{n_bogus} kept bogus questions (bogus_questions [{shard}])")
    else:
        why.append(f"up to {len(questions)} bogus questions (bogus_questions [{shard}] is not materialized)")
    if checks is not None and bogus is not None:
        trivia, _ = inputs.source("trivia_seeds")
        plan.requests = [hreq.refusal(t["question"], t["bogus"])
                         for t in hreq.refusal_targets(trivia.set_index("id"), checks, bogus)]
    else:
        plan.bound = n_real + n_bogus
    plan.basis = "; ".join(why)
    return [plan]


def plan_sft_dataset(inputs: Inputs, _partition: str | None = None) -> list[Plan]:
    p = inputs.profile
    chats, chat_from = inputs.source("chat_prompts")
    safety, safety_from = inputs.source("safety_prompts")
    chats = chat_prompt_selection(chats, p.sft_chat_prompts)

    def plan(kind: str, frame: pd.DataFrame, what: str) -> Plan:
        requests = [response_request(prompt, kind, p.sft_response_tokens) for prompt in frame["prompt"]]
        return Plan("sft_dataset", None, f"sft_{kind}", "teacher", p.sft_response_tokens, requests, basis=what)

    plans = [plan("chat_response", chats, f"{len(chats)} chat prompts (sft_chat_prompts; {chat_from})"),
             plan("benign_answer", safety[safety["kind"] == "benign"].sort_values("id"),
                  f"benign safety prompts ({safety_from})")]
    if p.generators.get("safety_refusal", "rules") == "teacher":
        plans.append(plan("harmful_refusal", safety[safety["kind"] == "harmful"].sort_values("id"),
                          f"harmful safety prompts ({safety_from})"))
    else:
        plans.append(_rules("sft_dataset", None, "sft_harmful_refusal"))
    return plans


def _judge_prompts(inputs: Inputs) -> list[dict]:
    """The prompts ``judge_candidates`` answers, as the asset picks them."""
    from .judge.candidates import judge_prompts

    frames = [inputs.source(n)[0] for n in ("chat_prompts", "safety_prompts", "trivia_seeds", "math_problems",
                                           "mcq_questions")]
    return judge_prompts(inputs.profile.judge_prompts, inputs.profile.pts_problems, *frames)


def plan_judge_candidates(inputs: Inputs, _partition: str | None = None) -> list[Plan]:
    from .judge import candidates as cand

    p = inputs.profile
    endpoint = [s for s in p.judge_sources if cand.source_kind(s) == "endpoint"]
    in_process = [s for s in p.judge_sources if cand.source_kind(s) == "model"]
    note = f"; {', '.join(in_process)} answer in-process (no teacher calls)" if in_process else ""
    others = [s for s in endpoint if s != "teacher"]
    if others and inputs.teacher.embedded:
        note += (f"; the embedded teacher serves one model, so {', '.join(others)} need a configured endpoint "
                 "(this run would fail)")
    judge_prompts = _judge_prompts(inputs)
    requests = [judge_requests.candidate(q["prompt"], s, p.judge_response_tokens)
                for s in endpoint for q in judge_prompts]
    return [Plan("judge_candidates", None, "judge_candidate", "teacher", p.judge_response_tokens, requests,
                 basis=f"{len(judge_prompts)} prompts x {len(endpoint)} endpoint sources ({', '.join(endpoint) or '-'})"
                       f"{note}")]


def plan_judge_ratings(inputs: Inputs, _partition: str | None = None) -> list[Plan]:
    from .judge import candidates as cand

    p = inputs.profile
    if p.generators.get("judge", "teacher") != "teacher":
        return [_rules("judge_ratings", None, "judge")]
    plan = Plan("judge_ratings", None, "judge", "teacher", p.judge_verdict_tokens)
    frame = inputs.table("judge_candidates")
    if frame is None:
        n_prompts = len(_judge_prompts(inputs))
        k = len(p.judge_sources)
        n_pairs = n_prompts * math.comb(k, 2)
        if p.judge_teacher_pairs is not None:
            n_pairs = min(n_pairs, p.judge_teacher_pairs)
        plan.bound = 2 * n_pairs
        plan.basis = (f"2 orders x {n_pairs} pairs ({n_prompts} prompts x C({k}, 2) source pairs, at most "
                      f"judge_teacher_pairs = {p.judge_teacher_pairs}); judge_candidates is not materialized "
                      "(failed or empty candidates are not judged)")
        return [plan]
    candidates = frame.astype(object).where(frame.notna(), None).to_dict("records")
    pairs = cand.comparisons(candidates)
    judged = [pairs[i] for i in cand.teacher_sample(pairs, p.judge_teacher_pairs)]
    plan.requests = [r for a, b in judged for r in judge_requests.verdicts(a, b, p.judge_verdict_tokens)]
    plan.basis = (f"2 orders x {len(judged)} of the {len(pairs)} candidate pairs in judge_candidates "
                  f"(judge_teacher_pairs = {p.judge_teacher_pairs})")
    return [plan]


def plan_stage_evaluations(inputs: Inputs, _partition: str | None = None) -> list[Plan]:
    """SimpleQA grades by the LLM grader (one call per item with a non-empty response), per stage."""
    from .evaluation.report import STAGES
    from .evaluation.runner import select_items

    p = inputs.profile
    if p.generators.get("eval_grade", "rules") != "teacher":
        return [_rules("stage_evaluations", stage, "simpleqa_grade") for stage in STAGES]
    items, items_from = inputs.source("eval_sets")
    n = int((select_items(items, p.eval_limits)["benchmark"] == "simpleqa").sum())
    return [Plan("stage_evaluations", stage, "simpleqa_grade", "teacher", LLMGrader.max_tokens, bound=n,
                 basis=f"{n} SimpleQA items ({items_from}, eval_limits); an empty response needs no call")
            for stage in STAGES]


def plan_mix_pairs(asset: str) -> Callable:
    """``dpo1_mix_pairs`` / ``dpo2_mix_pairs``: the starting model's samples of the stage's half of
    the real questions, graded like ``answer_checks`` (those that contain the key need no call)."""
    from .preference_mix import stage_half

    def plan(inputs: Inputs, _partition: str | None = None) -> list[Plan]:
        p = inputs.profile
        if p.generators.get("answer_check") != "teacher":
            return [_rules(asset, None, "answer_check")]
        questions = pd.concat(list(inputs.shard_questions().values()) or [pd.DataFrame(columns=["id"])])
        n = len(stage_half(list(questions["id"]), asset.split("_")[0]))
        return [Plan(asset, None, "answer_check", "teacher", max_tokens=hreq.ANSWER_CHECK_TOKENS,
                     bound=n * p.answer_samples,
                     basis=f"{n} questions (the stage's half of the seeds) x answer_samples {p.answer_samples}; "
                           f"the samples are drawn when the stage's starting model exists")]
    return plan


PLANNERS: dict[str, Callable] = {
    "dpo1_mix_pairs": plan_mix_pairs("dpo1_mix_pairs"), "dpo2_mix_pairs": plan_mix_pairs("dpo2_mix_pairs"),
    "answer_checks": plan_answer_checks, "reference_answers": plan_reference_answers,
    "bogus_questions": plan_bogus_questions, "refusals": plan_refusals, "sft_dataset": plan_sft_dataset,
    "judge_candidates": plan_judge_candidates, "judge_ratings": plan_judge_ratings,
    "stage_evaluations": plan_stage_evaluations,
}


# -- the estimate ----------------------------------------------------------------------------------


def _line(inputs: Inputs, plan: Plan) -> Line:
    identity, _ = inputs.identity()
    todo: list[ChatRequest] | None = None  # the distinct requests still to call, where they are known
    if plan.requests is not None:
        requests, basis = len(plan.requests), "exact" if plan.requests or plan.generator == "teacher" else "none"
        distinct = {inputs.key(identity or "?", r): r for r in plan.requests}
        calls = len(distinct)
        hits = inputs.cached(list(distinct)) if identity and distinct else (set() if not distinct else None)
        cached = len(hits) if hits is not None else None
        todo = [r for key, r in distinct.items() if hits is None or key not in hits]
    elif plan.bound is not None:
        requests, basis, calls, cached = plan.bound, "upper bound", plan.bound, None
    else:
        requests, basis, calls, cached = None, "unknown", None, None
    if plan.generator == "rules":
        basis = "none"
    to_call = calls - cached if calls is not None and cached is not None else None
    counted = to_call if to_call is not None else calls
    line = Line(plan.asset, plan.partition, plan.task, plan.generator, requests, basis, calls, cached, to_call,
                None, None, "unknown", note=plan.basis)
    if counted == 0:
        line.tokens = line.prompt_tokens = line.completion_tokens = 0
        line.tokens_basis = line.prompt_basis = "none"
        line.cost = 0.0
        return line
    measured, measured_note = inputs.tokens_per_call(plan.task, identity)
    if counted is None or (measured is None and plan.max_tokens is None):
        return line
    if measured is not None:
        completion, line.tokens_basis, notes = measured[1], "measured", [measured_note]
    else:
        completion, line.tokens_basis = float(plan.max_tokens), "upper bound"
        notes = [f"upper bound: max_tokens {plan.max_tokens} completion tokens a call"]
    # Prompt tokens: the teacher's own tokenizer, else measured means, else the base model's tokenizer.
    counter, prompts = inputs.prompts(), None
    if todo is not None and (counter.exact or measured is None):
        counts = [counter.count(r.messages) for r in todo]
        if None not in counts:
            prompts, line.prompt_basis = counts, "counted" if counter.exact else "approximation"
            notes.append("prompt tokens counted (the teacher's tokenizer)" if counter.exact else
                         "prompt tokens approximate (the base model's tokenizer)")
    if prompts is None and measured is not None:
        prompts, line.prompt_basis = [measured[0]] * counted, "measured"
    if prompts is None:
        notes.append("prompt tokens unknown (the request texts are not known yet)" if todo is None else
                     "prompt tokens not counted (no tokenizer)")
    line.completion_tokens = round(completion * counted)
    line.prompt_tokens = round(sum(prompts)) if prompts is not None else None
    line.tokens = line.completion_tokens + (line.prompt_tokens or 0)
    line.tokens_per_call = line.tokens / counted
    if to_call is None:
        notes.append("every call counted (cache hits unknown)")
    line.tokens_note = "; ".join(notes)
    # The cost, per model: judge candidates may ask other models at the endpoint.
    models = [inputs.model_of(r) for r in todo] if todo is not None else [inputs.teacher_name] * counted
    line.cost, line.unpriced = cost_usd(inputs.profile.teacher_prices,
                                        zip(models, prompts or [0] * counted, [completion] * counted))
    return line


@cache
def graph() -> dict[str, GraphAsset]:
    """Every asset of the definitions (``phi4_assets.definitions``; loading them takes seconds):
    its group, whether it takes the teacher resource, whether it is partitioned by seed shards.
    The teacher-calling assets are read from here, never listed again."""
    from .definitions import defs

    out = {}
    for assets in defs.assets or []:
        partitions = getattr(assets, "partitions_def", None)
        sharded = getattr(partitions, "name", None) == "seed_shards"
        for key in assets.keys:
            name = key.to_user_string()
            out[name] = GraphAsset(name, assets.group_names_by_key.get(key, "default"),
                                   "teacher" in assets.required_resource_keys, sharded)
    return out


def teacher_assets() -> list[str]:
    return sorted(name for name, a in graph().items() if a.teacher)


def expand_selection(select: list[str]) -> list[str]:
    """Asset names from names and ``group:NAME`` (groups from the Dagster definitions)."""
    groups = {name: a.group for name, a in graph().items()}
    names: list[str] = []
    for item in select:
        if item.startswith("group:"):
            members = sorted(name for name, group in groups.items() if group == item.split(":", 1)[1])
            if not members:
                raise ValueError(f"no asset in {item!r}; groups: {', '.join(sorted(set(groups.values())))}")
            names += members
        elif item in groups:
            names.append(item)
        else:
            raise ValueError(f"unknown asset {item!r}; the teacher-calling assets: {', '.join(teacher_assets())}")
    return list(dict.fromkeys(names))


def estimate(select: list[str], partitions: list[str] | None = None, profile: Profile | None = None,
             paths: Paths | None = None) -> Estimate:
    """The teacher calls and tokens of materializing ``select`` (asset names or ``group:NAME``),
    in the given seed shards (default: all) for the sharded assets."""
    profile = profile or load_profile()
    paths = paths or Paths.from_env()
    names = expand_selection(select)
    inputs = Inputs(profile, paths)
    identity, identity_note = inputs.identity()
    result = Estimate(profile=profile.name, teacher=identity, teacher_note=identity_note,
                      priced_model=inputs.teacher_name, price=profile.teacher_prices.get(inputs.teacher_name))
    assets = graph()
    shards = inputs.shard_questions() if any(assets[n].teacher and assets[n].sharded for n in names) else {}
    if partitions and shards:
        unknown = [k for k in partitions if k not in shards]
        if unknown:
            raise ValueError(f"unknown seed shard(s) {', '.join(unknown)}; shards: {', '.join(shards)}")
    for name in names:
        if not assets[name].teacher:
            result.skipped[name] = "makes no teacher calls"
            continue
        if name not in PLANNERS:
            raise ValueError(f"{name} takes the teacher resource but the estimate has no planner for it")
        if assets[name].sharded:
            plans = [plan for key, questions in shards.items() if not partitions or key in partitions
                     for plan in PLANNERS[name](inputs, key, questions)]
        else:
            plans = PLANNERS[name](inputs, None)
        result.lines += [_line(inputs, plan) for plan in plans]
    result.prompt_note = inputs.prompts().note
    return result


# -- text ------------------------------------------------------------------------------------------


def _fmt(value, unknown: str = "?") -> str:
    if value is None:
        return unknown
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)


def _marked(value, *, partial: bool = False, upper_bound: bool = False, mark: str = "", money: bool = False,
            approximate: bool = False) -> str:
    """A table cell: ``?`` unknown, ``~`` approximate, ``+?`` more not counted, ``(max)`` an upper bound."""
    if value is None:
        return "?"
    return (f"{'~' if approximate else ''}{usd(value) if money else _fmt(value)}{'+?' if partial else ''}{mark}"
            f"{' (max)' if upper_bound and value else ''}")


def render_text(result: Estimate) -> str:
    priced = result.price is not None
    header = ["asset", "partition", "task", "generator", "requests", "calls", "cached", "to call", "prompt",
              "completion", "tokens", *(["cost"] if priced else [])]
    rows = []
    for line in result.lines:
        requests = _fmt(line.requests) + {"upper bound": " (max)", "unknown": ""}.get(line.requests_basis, "")
        bound = line.tokens_are_upper_bound
        prompt = "-" if line.prompt_basis == "none" else _marked(
            line.prompt_tokens, approximate=line.prompt_basis == "approximation",
            mark=" (meas.)" if line.prompt_basis == "measured" else "")
        completion = "-" if line.tokens_basis == "none" else _marked(
            line.completion_tokens, upper_bound=bound, mark=" (meas.)" if line.tokens_basis == "measured" else "")
        partial = line.tokens_are_partial
        rows.append([line.asset, line.partition or "-", line.task, line.generator, requests, _fmt(line.calls),
                     _fmt(line.cached), _fmt(line.to_call), prompt, completion,
                     _marked(line.tokens, partial=partial, upper_bound=bound),
                     *([_marked(line.cost, partial=partial, upper_bound=bound, money=True)] if priced else [])])
    totals = result.totals()

    def total(name: str, upper_bound: bool = False, money: bool = False, approximate: bool = False) -> str:
        t = totals[name]
        return _marked(t["value"], partial=not t["complete"], upper_bound=upper_bound, money=money,
                       approximate=approximate)

    rows.append(["total", "", "", "", *(total(k) for k in ("requests", "calls", "cached", "to_call")),
                 total("prompt_tokens", approximate=any(line.prompt_basis == "approximation" for line in result.lines)),
                 total("completion_tokens", totals["tokens_upper_bound"]),
                 total("tokens", totals["tokens_upper_bound"]),
                 *([total("cost", totals["cost_upper_bound"], money=True)] if priced else [])])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = [f"profile {result.profile}; teacher {result.teacher or 'unknown'} ({result.teacher_note})",
           result.prompt_note, ""]
    for i, row in enumerate([header, *rows]):
        if i == len(rows):
            out.append("  ".join("-" * w for w in widths))
        out.append("  ".join(str(c).ljust(w) if j < 4 else str(c).rjust(w) for j, (c, w) in enumerate(zip(row, widths)))
                   .rstrip())
    out.append("")
    out.append(cost_summary(result.priced_model, result.price, totals["cost"]["value"], totals["cost"]["complete"],
                            totals["cost_upper_bound"]))
    unpriced = dict.fromkeys(m for line in result.lines for m in line.unpriced if m != result.priced_model)
    out += [price_hint(model) for model in unpriced]
    out.append("(max): an upper bound. ?: unknown. +?: more not counted. ~: counted with another model's "
               "tokenizer. (meas.): the mean of cached calls.")
    out.append("Requests, per line:")
    for line in result.lines:
        where = f"{line.asset} [{line.partition}]" if line.partition else line.asset
        tokens = f"; tokens: {line.tokens_note}" if line.tokens_note else ""
        out.append(f"  {where} {line.task}: {line.requests_basis}: {line.note}{tokens}")
    if result.skipped:
        out.append(f"no teacher calls: {', '.join(result.skipped)}")
    return "\n".join(out)
