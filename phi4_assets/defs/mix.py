"""The "unknown + safety" pairs of each DPO stage, drawn from the model the stage trains:
``dpo1_mix_pairs`` (group pts, from ``sft_model``) and ``dpo2_mix_pairs`` (group judge, from
``dpo1_model``), both made by ``mix_pairs``.

Why not the base model's pairs: App. A.1 decides "answer > refusal" or "refusal > wrong" from how
often the policy gets a question right. A stage that starts from a model which already declines
what it does not know must not be pushed further toward declining on those questions, and a
question it now gets right must get its "answer > refusal" pair. So each stage re-samples its
starting model on its own questions (the seeds split in two halves by hash, so the stages share no
pair), grades the samples like ``answer_checks`` (``grade_samples``), and builds the A.1 pairs with
the reference answers and refusals already written. It also samples its starting model on its half
of the bogus questions that have a refusal: every answer there that commits to something is wrong,
so "bogus refusal > that answer" is A.1's "refusal > wrong" (``decision.bogus_pairs``; graded by the
rules, as a bogus question has no key for the teacher to check against), except an answer that names
the key of the real question the bogus one was perturbed from. The safety pairs come from the same model's
responses to the stage's half of the safety prompts (``sft.data.safety_pairs``). The pair tables of
the stages (``pts_dpo_pairs``, ``judge_dpo_pairs``) take their dose from here
(``training.mix.stage_mix``)."""

from collections import Counter

import dagster as dg
import pandas as pd

from ..models.generation import chat_prompt
from ..hallucination import decision
from ..hallucination.requests import seed_keys
from ..core.ids import row_id
from ..models.ref import ModelRef
from ..training.mix import stage_half
from .resources import ProjectResource
from ..sft.data import safety_pairs
from ..teacher.resource import TeacherResource
from ..core.warehouse import frame_of, schema_metadata, table_schema
from .common import table_metadata
from .placement import POLICY_STEP_TAGS
from .hallucination import ALL_SHARDS, grade_samples, graded_samples

MIX_PAIRS = table_schema(
    id="VARCHAR", prompt="VARCHAR", chosen="VARCHAR", rejected="VARCHAR",
    chosen_token_ids=("INTEGER[]", "hallucination pairs: the exact first tokens (no end-of-turn); safety: null"),
    rejected_token_ids="INTEGER[]", source=("VARCHAR", "hallucination | safety"),
    kind=("VARCHAR", "answer_over_refusal | refusal_over_wrong | bogus_refusal_over_answer | "
                     "safety_refuse_over_comply | benign_answer_over_refusal"),
    problem_id=("VARCHAR", "the trivia seed, bogus question or safety prompt"),
    p_correct=("DOUBLE", "the starting model's share of right samples (hallucination pairs)"),
    grades=("VARCHAR", "the starting model's samples of the question: True / False / Uncertain counts"),
    chosen_from=("VARCHAR", "the reference_answers, refusals or sft_dataset row of the chosen side (null: a rules "
                            "refusal template, or the starting model's own answer where the reference answer's "
                            "first tokens do not give the answer)"),
    rejected_from=("VARCHAR", "the refusals row of the rejected side (null: a rules refusal template, or the "
                              "starting model's own response: rejected_full)"),
    rejected_full=("VARCHAR", "the starting model's whole response where it is the rejected side (on a bogus "
                              "question, sampled to 4 x dpo_tokens tokens: only its opening decides)"),
    model_version=("VARCHAR", "the starting model the samples came from"))


def _grades(samples: list[decision.Sample]) -> str:
    return " / ".join(f"{g} {sum(s.grade == g for s in samples)}" for g in ("True", "False", "Uncertain"))


def mix_pairs(name: str, *, group: str, start: str, stage: str) -> dg.AssetsDefinition:
    """The mix pair asset ``name`` of DPO ``stage`` ("dpo1" / "dpo2"), sampled from the model asset ``start``."""

    @dg.asset(name=name, group_name=group, pool="duckdb", kinds={"pytorch", "duckdb"}, code_version="6",
              op_tags=POLICY_STEP_TAGS,
              metadata=schema_metadata(MIX_PAIRS),
              check_specs=[dg.AssetCheckSpec(f"{name}_follow_a1", asset=name, description=(
                  "A.1's rule over the starting model's own grades: \"answer > refusal\" only for a question it "
                  "got right at least once (or, with a1_known_from_base, the base model did), \"refusal > wrong\" "
                  "only for one it got wrong at least once."))],
              description=f"The hallucination and safety pairs mixed into DPO {stage}, from ``{start}``'s own "
                          f"samples on the stage's half of the seed questions and safety prompts.",
              ins={"start": dg.AssetIn(start), "reference_answers": dg.AssetIn(partition_mapping=ALL_SHARDS),
                   "refusals": dg.AssetIn(partition_mapping=ALL_SHARDS),
                   "answer_checks": dg.AssetIn(partition_mapping=ALL_SHARDS)})
    def _mix_pairs(context: dg.AssetExecutionContext, project: ProjectResource, teacher: TeacherResource,
                   start: pd.DataFrame, base_model: pd.DataFrame, trivia_seeds: pd.DataFrame,
                   reference_answers: pd.DataFrame, refusals: pd.DataFrame, safety_prompts: pd.DataFrame,
                   sft_dataset: pd.DataFrame, answer_checks: pd.DataFrame):
        settings = project.settings()
        policy = ModelRef.from_frame(start)
        with project.policy(policy.path, policy.name) as engine:  # a launched server stops on the way out
            tokenizer = engine.tokenizer

            def encode(text: str) -> list[int]:
                return tokenizer(text, add_special_tokens=False)["input_ids"]
            # A.1 over the starting model: the stage's half of the questions A.1 wrote a refusal for.
            real = refusals[~refusals["bogus"]] if len(refusals) else refusals
            qids = stage_half(real["target_id"], stage)
            seeds = trivia_seeds.set_index("id")
            k = settings.answer_samples
            context.log.info(f"{name}: sampling {policy.path} {k}x on {len(qids)} questions")
            samples = engine.sample([chat_prompt(tokenizer, seeds.loc[q]["question"]) for q in qids], k,
                                    temperature=settings.answer_temperature,
                                    max_new_tokens=settings.answer_max_tokens, seed=1, logger=context.log)
            frame = pd.DataFrame([{"id": row_id("mixsample", policy.data_version, q, i), "question_id": q,
                                   "sample_index": i, "text": s.text}
                                  for q, per_question in zip(qids, samples) for i, s in enumerate(per_question)],
                                 columns=["id", "question_id", "sample_index", "text"])
            graded, batch, n_requests = grade_samples(context, teacher, settings.generators["answer_check"], frame,
                                                      trivia_seeds, ModelRef.from_frame(base_model))
            by_question = graded_samples(pd.DataFrame(graded), frame)
            full_text = dict(zip(frame["id"], frame["text"]))
            # The base model's A.1 grades (``answer_checks``): with ``a1_known_from_base``, a question it
            # got right counts as known even where this model now declines it every time.
            base = decision.question_stats(zip(answer_checks["question_id"], answer_checks["matches_key"])) \
                if settings.a1_known_from_base else {}
            known = {q for q in qids if q in base and base[q].n_correct >= 1}
            rows, tally = [], Counter()
            for row in decision.a1_pairs(
                    questions={q: seeds.loc[q]["question"] for q in qids}, samples=by_question,
                    answers={r.question_id: (r.answer_text, r.id) for r in reference_answers.itertuples()},
                    refusals={r.target_id: (r.refusal, r.id) for r in real.itertuples()},
                    encode=encode,
                    decode=tokenizer.decode, n_tokens=settings.dpo_tokens,
                    keys={q: seed_keys(seeds.loc[q]) for q in qids}, tally=tally, known=known):
                qid, sample = row.pop("question_id"), full_text.get(row["rejected_from"])
                if row["chosen_from"] in full_text:  # the model's own right answer, not a reference answer
                    row["chosen_from"] = None
                rows.append({**row, "source": "hallucination", "problem_id": qid, "grades": _grades(by_question[qid]),
                             "rejected_from": None if sample is not None else row["rejected_from"],
                             "rejected_full": sample})
            # Bogus questions over the starting model: only the opening of a sample decides a pair, so
            # samples stop after a few times the pair's tokens.
            bogus = refusals[refusals["bogus"]] if len(refusals) else refusals
            bogus_ids = stage_half(bogus["target_id"], stage)
            bogus_text = dict(zip(bogus["target_id"], bogus["question"]))
            context.log.info(f"{name}: sampling {policy.path} {k}x on {len(bogus_ids)} bogus questions")
            bogus_samples = engine.sample(
                [chat_prompt(tokenizer, bogus_text[b]) for b in bogus_ids], k,
                temperature=settings.answer_temperature,
                max_new_tokens=min(settings.answer_max_tokens, 4 * settings.dpo_tokens), seed=1, logger=context.log)
            for b, per_question in zip(bogus_ids, bogus_samples):
                texts = [(row_id("mixsample", policy.data_version, b, i), s.text) for i, s in enumerate(per_question)]
                full_text.update(texts)
                by_question[b] = decision.graded_bogus_samples(bogus_text[b], texts)
            bogus_tally = Counter()
            for row in decision.bogus_pairs(
                    {b: bogus_text[b] for b in bogus_ids}, {b: by_question[b] for b in bogus_ids},
                    {r.target_id: (r.refusal, r.id) for r in bogus.itertuples()},
                    encode=encode, decode=tokenizer.decode, n_tokens=settings.dpo_tokens, tally=bogus_tally,
                    original_keys={r.target_id: seed_keys(seeds.loc[r.question_id]) for r in bogus.itertuples()
                                   if r.question_id in seeds.index}):
                qid = row.pop("question_id")
                rows.append({**row, "source": "hallucination", "problem_id": qid, "grades": _grades(by_question[qid]),
                             "rejected_from": None, "rejected_full": full_text[row["rejected_from"]]})
            # Safety over the starting model: its own response to each of the stage's safety prompts.
            half = set(stage_half(safety_prompts["id"], stage))
            prompts = [p for p in safety_prompts.sort_values("id").to_dict("records") if p["id"] in half]
            context.log.info(f"{name}: sampling {policy.path}'s response to {len(prompts)} safety prompts")
            responses = engine.sample([chat_prompt(tokenizer, p["prompt"]) for p in prompts], 1,
                                      temperature=0.7, max_new_tokens=settings.judge_response_tokens, seed=0,
                                      logger=context.log)
        benign = sft_dataset[sft_dataset["kind"] == "benign_answer"]
        for row in safety_pairs(prompts, {r.source_id: (r.completion, r.id) for r in benign.itertuples()},
                                {p["id"]: s[0].text for p, s in zip(prompts, responses)}):
            rows.append({**row, "source": "safety", "problem_id": row.pop("prompt_id"), "chosen_token_ids": None,
                         "rejected_token_ids": None, "p_correct": None, "grades": None,
                         "chosen_from": None if row["chosen_from"] in ("rules", "policy") else row["chosen_from"],
                         "rejected_from": None,  # a rules template or the model's own response
                         "rejected_full": row["rejected"] if row["rejected_from"] == "policy" else None})
        for row in rows:
            row["id"] = row_id("mixpair", stage, policy.data_version, row["kind"], row["problem_id"], row["chosen"],
                               row["rejected"])
            row["model_version"] = policy.data_version
        out = frame_of(rows, MIX_PAIRS)
        yield dg.Output(out, metadata=table_metadata(
            out, ["kind", "prompt", "chosen", "rejected", "grades"],
            pairs_by_kind=out["kind"].value_counts().to_dict() or {"none": 0}, model=policy.path,
            questions=len(qids), bogus_questions=len(bogus_ids), safety_prompts=len(prompts),
            a1_known_from_base=settings.a1_known_from_base, known_from_base=len(known),
            answer_check_requests=n_requests, a1_pairs_tally=dict(tally) or {"none": 0},
            bogus_pairs_tally=dict(bogus_tally) or {"none": 0},
            **batch.stats.as_metadata(),
            sample_grades=pd.Series([g["matches_key"] for g in graded]).value_counts().to_dict() or {"none": 0}))
        against = [r["id"] for r in rows if r["source"] == "hallucination" and not decision.follows_a1(
            r["kind"], by_question[r["problem_id"]], known=r["problem_id"] in known)]
        yield dg.AssetCheckResult(check_name=f"{name}_follow_a1", passed=not against, metadata={
            "hallucination_pairs": sum(r["source"] == "hallucination" for r in rows), "against_a1": len(against),
            "ids": ", ".join(against[:10])})

    return _mix_pairs


dpo1_mix_pairs = mix_pairs("dpo1_mix_pairs", group="pts", start="sft_model", stage="dpo1")
dpo2_mix_pairs = mix_pairs("dpo2_mix_pairs", group="judge", start="dpo1_model", stage="dpo2")
