"""Group ``hallucination``: the report's App. A.1 data, from policy samples to SFT and DPO data.

Here the generation assets, partitioned by seed shard (policy samples, answer checks, reference
answers, bogus questions, refusals) and their checks; the SFT and DPO data made of every shard
are in ``hallucination_data.py``.
"""

import dagster as dg
import pandas as pd
from pydantic import Field

from .placement import POLICY_STEP_TAGS
from ..core.ids import row_id
from ..core.refusal import expresses_uncertainty
from ..core.text import normalize_question
from ..core.warehouse import frame_of, schema_metadata, table_schema
from ..hallucination import decision, prompts, reference, rules
from ..hallucination import requests as requests_for
from ..models.generation import chat_prompt
from ..models.ref import ModelRef
from ..sources.shards import assign_shards, shard_seed
from ..teacher.resource import TeacherResource
from .common import TEACHER_RETRY, ask_teacher, shares, table_metadata
from .partitions import seed_shards
from .resources import ProjectResource

GROUP = "hallucination"
# One run per shard in a backfill: a shard is the unit of teacher spend and of resumption (a
# failed shard is retried alone), and the assets read one shard at a time (no range support).
SHARDED = dict(group_name=GROUP, partitions_def=seed_shards, pool="duckdb", kinds={"duckdb"},
               backfill_policy=dg.BackfillPolicy.multi_run(1))


def _sharded(schema) -> dict:
    return dict(SHARDED, metadata=schema_metadata(schema, partition_expr="shard"))


# The tables of this group, in graph order (``shard`` is the partition column).
POLICY_ANSWER_SAMPLES = table_schema(
    id="VARCHAR", shard="VARCHAR", question_id="VARCHAR", sample_index="BIGINT", text="VARCHAR", n_tokens="BIGINT",
    finished=("BOOLEAN", "ended with end-of-turn (not cut at the token limit)"), model_version="VARCHAR",
    temperature="DOUBLE")
ANSWER_CHECKS = table_schema(
    id="VARCHAR", shard="VARCHAR", sample_id="VARCHAR", question_id="VARCHAR", sample_index="BIGINT",
    matches_key=("VARCHAR", "True | False | Uncertain"), grader="VARCHAR", teacher_call_id="VARCHAR",
    teacher_raw="VARCHAR", failure="VARCHAR")
REFERENCE_ANSWERS = table_schema(
    id="VARCHAR", shard="VARCHAR", question_id="VARCHAR", answer_text="VARCHAR", generator="VARCHAR",
    teacher_call_id="VARCHAR", teacher_raw="VARCHAR", rejected_reason="VARCHAR")
BOGUS_QUESTIONS = table_schema(
    shard="VARCHAR", question_id="VARCHAR", original="VARCHAR", teacher_call_id="VARCHAR", teacher_raw="VARCHAR",
    teacher_rejected="VARCHAR", bogus_question="VARCHAR", quality=("DOUBLE", "1-5"), method="VARCHAR",
    generator="VARCHAR", drop_reason="VARCHAR", entity=("VARCHAR", "the invented name, where a rule made one"),
    kept="BOOLEAN", id="VARCHAR")
REFUSALS = table_schema(
    id="VARCHAR", shard="VARCHAR", target_id=("VARCHAR", "the question refused: a seed or a bogus question"),
    question_id="VARCHAR", bogus="BOOLEAN", question="VARCHAR", refusal="VARCHAR", generator="VARCHAR",
    teacher_call_id="VARCHAR", teacher_raw="VARCHAR", rejected_reason="VARCHAR")
ALL_SHARDS = dg.AllPartitionMapping()


def _shard_questions(trivia: pd.DataFrame, shard: str, project: ProjectResource) -> pd.DataFrame:
    """The seed questions of one shard (``phi4_assets.sources.shards``), in id order."""
    settings = project.settings()
    shards = assign_shards(trivia, settings.shard_size, settings.hallucination_seeds)
    return trivia[shards == shard].sort_values("id").reset_index(drop=True)


def _generator(project: ProjectResource, task: str, override: str | None) -> str:
    choice = override or project.settings().generators[task]
    if choice not in ("teacher", "rules"):
        raise ValueError(f"{task}: generator must be 'teacher' or 'rules', got {choice!r}")
    return choice


def _rejection(reply, *rules_failed) -> str | None:
    """Why a teacher reply is rejected (an error, or the first failed rule), or None."""
    if not reply.ok:
        return f"teacher error: {reply.error}"
    return next((reason for failed, reason in rules_failed if failed(reply.text)), None)


class GeneratorConfig(dg.Config):
    generator: str | None = Field(default=None, description="'teacher' or 'rules'; default from the profile.")


class SamplingConfig(dg.Config):
    samples: int | None = Field(default=None, description="Samples per question (profile default).")
    temperature: float | None = None
    max_new_tokens: int | None = None
    seed: int = 0


# -- policy samples and answer checks ------------------------------------------------------


@dg.asset(**_sharded(POLICY_ANSWER_SAMPLES), code_version="3", op_tags=POLICY_STEP_TAGS)
def policy_answer_samples(context: dg.AssetExecutionContext, config: SamplingConfig, project: ProjectResource,
                          trivia_seeds: pd.DataFrame, base_model: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """k sampled answers per seed question from the policy (``base_model``)."""
    settings = project.settings()
    k = config.samples or settings.answer_samples
    temperature = config.temperature if config.temperature is not None else settings.answer_temperature
    max_new = config.max_new_tokens or settings.answer_max_tokens
    shard = context.partition_key
    questions = _shard_questions(trivia_seeds, shard, project)
    policy = ModelRef.from_frame(base_model)
    with project.policy(policy.path, "base_model") as engine:
        texts = [chat_prompt(engine.tokenizer, q) for q in questions["question"]]
        context.log.info(f"shard {shard}: sampling {k} answers for {len(texts)} questions from {policy.path}")
        samples = engine.sample(texts, k, temperature=temperature, max_new_tokens=max_new,
                                seed=config.seed + shard_seed(shard), logger=context.log)
    rows = []
    for (_, q), per_question in zip(questions.iterrows(), samples):
        for i, s in enumerate(per_question):
            rows.append({"id": row_id("sample", policy.data_version, q["id"], i, temperature, max_new, config.seed),
                         "shard": shard, "question_id": q["id"], "sample_index": i, "text": s.text,
                         "n_tokens": s.n_tokens, "finished": s.finished, "model_version": policy.data_version,
                         "temperature": temperature})
    frame = frame_of(rows, POLICY_ANSWER_SAMPLES)
    return dg.Output(frame, metadata=table_metadata(
        frame, ["question_id", "sample_index", "text"], questions=len(questions), samples_per_question=k,
        tokens=int(frame["n_tokens"].sum()) if len(frame) else 0))


def grade_samples(context: dg.AssetExecutionContext, teacher: TeacherResource, generator: str,
                  samples: pd.DataFrame, trivia_seeds: pd.DataFrame, serve_model: ModelRef):
    """Grade policy samples (id, question_id, sample_index, text) against the seed keys: a
    normalised match of the key or an alias is True without a teacher call; the rest go to the
    teacher (``generator`` "teacher": grade equivalence to the key, do not solve) or to the rules
    (True / Uncertain / False). Returns (rows, teacher batch, teacher requests sent); each row:
    sample_id, question_id, sample_index, matches_key, grader, teacher_call_id, teacher_raw, failure."""
    seeds = trivia_seeds.set_index("id")
    samples = samples.reset_index(drop=True)
    keyed = [rules.mentions_key(s.text, requests_for.seed_keys(seeds.loc[s.question_id]))
             for s in samples.itertuples()]
    to_teacher = [i for i, hit in enumerate(keyed) if not hit] if generator == "teacher" else []
    requests = [requests_for.answer_check(seeds.loc[samples.iloc[i]["question_id"]], samples.iloc[i]["text"])
                for i in to_teacher]
    batch = ask_teacher(context, teacher, requests, serve_model, validate=prompts.answer_check_problem)
    replies = dict(zip(to_teacher, batch.replies))
    rows = []
    for i, s in samples.iterrows():
        grade, grader, call_id, raw, failure = None, "rules", None, None, None
        if keyed[i]:
            grade, grader = "True", "rules:key_match"
        elif i in replies:
            reply = replies[i]
            call_id, raw = reply.call_id, reply.text
            try:
                if not reply.ok:
                    raise prompts.ReplyError(reply.error or "no reply")
                grade, grader = prompts.parse_answer_check(reply.text), batch.model
            except prompts.ReplyError as e:
                failure = str(e)
        if grade is None:
            grade = rules.grade_sample(s["text"], requests_for.seed_keys(seeds.loc[s["question_id"]]))
        rows.append({"sample_id": s["id"], "question_id": s["question_id"], "sample_index": int(s["sample_index"]),
                     "matches_key": grade, "grader": grader, "teacher_call_id": call_id, "teacher_raw": raw,
                     "failure": failure})
    return rows, batch, len(requests)


def graded_samples(checks: pd.DataFrame, samples: pd.DataFrame) -> dict[str, list[decision.Sample]]:
    """Question id -> its samples with their grades (``answer_checks`` joined to the sample texts)."""
    text = samples.set_index("id")["text"]
    out: dict[str, list[decision.Sample]] = {}
    for c in checks.itertuples():
        out.setdefault(c.question_id, []).append(
            decision.Sample(c.sample_id, int(c.sample_index), text[c.sample_id], c.matches_key))
    return out


@dg.asset(**_sharded(ANSWER_CHECKS), code_version="1", retry_policy=TEACHER_RETRY,
          check_specs=[dg.AssetCheckSpec("answer_checks_parse_failures", asset="answer_checks",
                                         description="Teacher grades that failed to parse stay under the limit.")])
def answer_checks(context: dg.AssetExecutionContext, config: GeneratorConfig, project: ProjectResource,
                  teacher: TeacherResource, policy_answer_samples: pd.DataFrame, trivia_seeds: pd.DataFrame,
                  base_model: pd.DataFrame):
    """Each sample graded against the key: ``matches_key`` True / False / Uncertain (``grade_samples``)."""
    generator = _generator(project, "answer_check", config.generator)
    samples = policy_answer_samples.reset_index(drop=True)
    graded, batch, n_requests = grade_samples(context, teacher, generator, samples, trivia_seeds,
                                              ModelRef.from_frame(base_model))
    rows = [{"id": row_id("check", s["id"], g["grader"], g["teacher_call_id"]), "shard": s["shard"], **g}
            for (_, s), g in zip(samples.iterrows(), graded)]
    frame = frame_of(rows, ANSWER_CHECKS)
    stats = decision.question_stats(zip(frame["question_id"], frame["matches_key"]))
    p = pd.Series([s.p_correct for s in stats.values()], dtype=float)
    failures = int(frame["failure"].notna().sum())
    failure_share = failures / n_requests if n_requests else 0.0
    limit = project.settings().max_failure_share
    yield dg.Output(frame, metadata=table_metadata(
        frame, ["question_id", "sample_index", "matches_key", "grader"],
        grades=frame["matches_key"].value_counts().to_dict(), graders=shares(frame["grader"]),
        teacher_failures=failures, p_correct_mean=float(p.mean()) if len(p) else 0.0,
        p_correct_histogram={f"{b:.2f}": int((p.round(2) == round(b, 2)).sum()) for b in sorted(p.round(2).unique())},
        **batch.stats.as_metadata()))
    yield dg.AssetCheckResult(check_name="answer_checks_parse_failures", passed=failure_share <= limit,
                              metadata={"failure_share": round(failure_share, 3), "limit": limit,
                                        "teacher_requests": n_requests})


# -- what the teacher (or the rules) writes ------------------------------------------------


@dg.asset(**_sharded(REFERENCE_ANSWERS), code_version="2", retry_policy=TEACHER_RETRY)
def reference_answers(context: dg.AssetExecutionContext, config: GeneratorConfig, project: ProjectResource,
                      teacher: TeacherResource, trivia_seeds: pd.DataFrame,
                      base_model: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """A natural-language correct answer per seed question. A teacher reply stands only if it
    contains the key or an alias and is neither an echo of the prompt, nor hedged, nor cut off
    (``hallucination.reference.reference_problem``, whose reason is ``rejected_reason``); a
    rejected reply is replaced by the rules template answer. The reply's finish reason is kept
    in the teacher cache, so a cached reply is judged exactly as a fresh one."""
    generator = _generator(project, "reference_answer", config.generator)
    questions = _shard_questions(trivia_seeds, context.partition_key, project)
    requests = [requests_for.reference_answer(q) for _, q in questions.iterrows()] if generator == "teacher" else []
    batch = ask_teacher(context, teacher, requests, ModelRef.from_frame(base_model))
    rows = []
    for i, q in questions.iterrows():
        text, made_by, call_id, raw, rejected = None, "rules", None, None, None
        if requests:
            reply = batch.replies[i]
            call_id, raw = reply.call_id, reply.text
            rejected = _rejection(reply) or reference.reference_problem(
                reply.text, requests_for.seed_keys(q), q["question"], reply.finish_reason)
            if rejected is None:
                text, made_by = reply.text.strip(), batch.model
        if text is None:
            text = rules.template_reference_answer(q["id"], q["answer"])
        rows.append({"id": row_id("reference", q["id"], text), "shard": context.partition_key,
                     "question_id": q["id"], "answer_text": text, "generator": made_by,
                     "teacher_call_id": call_id, "teacher_raw": raw, "rejected_reason": rejected})
    frame = frame_of(rows, REFERENCE_ANSWERS)
    return dg.Output(frame, metadata=table_metadata(
        frame, ["question_id", "answer_text", "generator"], generators=shares(frame["generator"]),
        teacher_rejected=int(frame["rejected_reason"].notna().sum()),
        rejected_reasons=frame["rejected_reason"].value_counts().to_dict(), **batch.stats.as_metadata()))


@dg.asset(**_sharded(BOGUS_QUESTIONS), code_version="2", retry_policy=TEACHER_RETRY)
def bogus_questions(context: dg.AssetExecutionContext, config: GeneratorConfig, project: ProjectResource,
                    teacher: TeacherResource, trivia_seeds: pd.DataFrame,
                    base_model: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """A plausible but unanswerable variant of each seed question, with a 1-5 quality rating.

    Every row is kept in the table with ``kept`` and, when dropped, ``drop_reason``:
    same_as_original, matches_seed_question, low_quality, no_rule_applies."""
    settings = project.settings()
    generator = _generator(project, "bogus_question", config.generator)
    questions = _shard_questions(trivia_seeds, context.partition_key, project)
    all_seed_questions = {normalize_question(q) for q in trivia_seeds["question"]}
    requests = [requests_for.bogus_question(q) for _, q in questions.iterrows()] if generator == "teacher" else []
    batch = ask_teacher(context, teacher, requests, ModelRef.from_frame(base_model), validate=prompts.bogus_problem)

    def problem(original: str, candidate: str, quality: int) -> str | None:
        if normalize_question(candidate) == normalize_question(original):
            return "same_as_original"
        if normalize_question(candidate) in all_seed_questions:
            return "matches_seed_question"
        if quality < settings.bogus_min_quality:
            return "low_quality"
        return None

    rows = []
    for i, q in questions.iterrows():
        row = {"shard": context.partition_key, "question_id": q["id"], "original": q["question"],
               "teacher_call_id": None, "teacher_raw": None, "teacher_rejected": None}
        candidate = None
        if requests:
            reply = batch.replies[i]
            row.update(teacher_call_id=reply.call_id, teacher_raw=reply.text)
            try:
                if not reply.ok:
                    raise prompts.ReplyError(reply.error or "no reply")
                text, quality = prompts.parse_bogus(reply.text)
                reason = problem(q["question"], text, quality)
                if reason:
                    row["teacher_rejected"] = reason
                else:
                    candidate = dict(bogus_question=text, quality=quality, method="teacher", generator=batch.model)
            except prompts.ReplyError as e:
                row["teacher_rejected"] = f"unparseable: {e}"
        if candidate is None:
            found = rules.perturb_question(q["question"], q["id"])
            if found is None:
                candidate = dict(bogus_question=None, quality=None, method=None, generator="rules",
                                 drop_reason="no_rule_applies")
            else:
                candidate = dict(bogus_question=found.question, quality=found.quality, method=found.method,
                                 generator="rules", entity=found.replacement)
                candidate["drop_reason"] = problem(q["question"], found.question, found.quality)
        row.update(candidate)
        row.setdefault("drop_reason", None)
        row.setdefault("entity", None)
        row["kept"] = row["drop_reason"] is None
        row["id"] = row_id("bogus", q["id"], row["bogus_question"], row["generator"])
        rows.append(row)
    frame = frame_of(rows, BOGUS_QUESTIONS)
    return dg.Output(frame, metadata=table_metadata(
        frame, ["question_id", "bogus_question", "method", "quality", "kept"], kept=int(frame["kept"].sum()),
        dropped=frame["drop_reason"].value_counts().to_dict(), methods=frame["method"].value_counts().to_dict(),
        generators=shares(frame["generator"]), **batch.stats.as_metadata()))


@dg.asset(**_sharded(REFUSALS), code_version="1", retry_policy=TEACHER_RETRY)
def refusals(context: dg.AssetExecutionContext, config: GeneratorConfig, project: ProjectResource,
             teacher: TeacherResource, trivia_seeds: pd.DataFrame, answer_checks: pd.DataFrame,
             bogus_questions: pd.DataFrame, base_model: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Refusals for every kept bogus question and every real question the policy was sampled on.

    Every real question needs one: where the policy is usually wrong it is the SFT target; where
    it was wrong at least once it is the chosen side of "refusal > wrong answer"; and where it was
    right at least once it is the rejected side of "answer > refusal" (App. A.1), the pair that
    keeps the model answering what it knows. A refusal never guesses: one that contains the key
    or expresses no uncertainty is rejected and replaced by the rules."""
    generator = _generator(project, "refusal", config.generator)
    targets = requests_for.refusal_targets(trivia_seeds.set_index("id"), answer_checks, bogus_questions)
    requests = [requests_for.refusal(t["question"], t["bogus"]) for t in targets] if generator == "teacher" else []
    batch = ask_teacher(context, teacher, requests, ModelRef.from_frame(base_model))
    rows = []
    for i, t in enumerate(targets):
        text, made_by, call_id, raw, rejected = None, "rules", None, None, None
        if requests:
            reply = batch.replies[i]
            call_id, raw = reply.call_id, reply.text
            rejected = _rejection(reply, (lambda r: bool(t["keys"]) and rules.mentions_key(r, t["keys"]),
                                          "contains the answer key"),
                                  (lambda r: not expresses_uncertainty(r), "expresses no uncertainty"))
            if rejected is None:
                text, made_by = reply.text.strip(), batch.model
        if text is None:
            text = rules.template_refusal(t["target_id"], t["topic"], t["entity"], bogus=t["bogus"])
        rows.append({"id": row_id("refusal", t["target_id"], text), "shard": context.partition_key,
                     "target_id": t["target_id"], "question_id": t["question_id"], "bogus": t["bogus"],
                     "question": t["question"], "refusal": text, "generator": made_by, "teacher_call_id": call_id,
                     "teacher_raw": raw, "rejected_reason": rejected})
    frame = frame_of(rows, REFUSALS)
    return dg.Output(frame, metadata=table_metadata(
        frame, ["target_id", "bogus", "refusal", "generator"], real=int((~frame["bogus"]).sum()),
        bogus=int(frame["bogus"].sum()), generators=shares(frame["generator"]),
        teacher_rejected=frame["rejected_reason"].value_counts().to_dict(), **batch.stats.as_metadata()))


# -- checks on the outputs ------------------------------------------------------------------


@dg.asset_check(asset=refusals, additional_ins={"trivia_seeds": dg.AssetIn("trivia_seeds")},
                description="No refusal contains the answer key of its question.")
def refusals_never_answer(refusals: pd.DataFrame, trivia_seeds: pd.DataFrame) -> dg.AssetCheckResult:
    seeds = trivia_seeds.set_index("id")
    leaking = [r.id for r in refusals.itertuples()
               if not r.bogus and rules.mentions_key(r.refusal, requests_for.seed_keys(seeds.loc[r.question_id]))]
    return dg.AssetCheckResult(passed=not leaking, metadata={"refusals": len(refusals), "leaking": len(leaking)})


@dg.asset_check(asset=bogus_questions, description="Every kept bogus question differs from its original.")
def bogus_questions_differ(bogus_questions: pd.DataFrame) -> dg.AssetCheckResult:
    kept = bogus_questions[bogus_questions["kept"]]
    same = int(sum(normalize_question(a) == normalize_question(b)
                   for a, b in zip(kept["original"], kept["bogus_question"])))
    return dg.AssetCheckResult(passed=len(kept) > 0 and same == 0, metadata={"kept": len(kept), "same": same})


# The generation assets, one run per shard (the seed generation schedule's target).
SHARDED_ASSETS = [policy_answer_samples, answer_checks, reference_answers, bogus_questions, refusals]
