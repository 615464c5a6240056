"""The ``sources`` group materialized on the tiny profile, and the bounded reading of the
source files (a seed file dropped by a user cannot hang, swamp or crash a reader)."""

import json
import os
import signal
from contextlib import contextmanager

import dagster as dg
import pytest

from phi4_assets.defs import sources
from phi4_assets.defs.resources import build_resources
from phi4_assets.models.ref import ModelRef
from phi4_assets.sources import records, schemas
from phi4_assets.sources.records import SourceError, read_records

TABLES = [sources.trivia_seeds, sources.mcq_questions, sources.math_problems, sources.code_problems,
          sources.safety_prompts, sources.chat_prompts, sources.eval_sets]
CHECKS = [sources.eval_sets_decontaminated, sources.trivia_seeds_distinct]


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_source_group_materializes_on_tiny(state):
    result = dg.materialize([*TABLES, sources.base_model, *CHECKS], resources=build_resources())
    assert check_results(result) == {"eval_sets_decontaminated": True, "trivia_seeds_distinct": True}
    materializations = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
    counts = {m.asset_key.path[-1]: m.metadata["dagster/row_count"].value
              for m in materializations if "dagster/row_count" in m.metadata}
    assert counts == {"trivia_seeds": 12, "mcq_questions": 12, "math_problems": 24, "code_problems": 12,
                      "safety_prompts": 24, "chat_prompts": 12, "eval_sets": 12 * 2 + 12 + 12 + 12 + 24,
                      "base_model": 1}

    evals = result.output_for_node("eval_sets")
    assert set(evals["benchmark"]) == {"simpleqa", "mcq", "math", "code", "safety"}
    simpleqa = evals[evals["benchmark"] == "simpleqa"]
    assert simpleqa["bogus"].sum() == 12 and simpleqa[simpleqa["bogus"]]["answer"].isna().all()
    assert evals[evals["benchmark"] == "code"]["id"].map(lambda t: int(t.split("/")[1]) % 2 == 0).all()

    ref = ModelRef.from_frame(result.output_for_node("base_model"))
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(ref.path)
    tokenizer = AutoTokenizer.from_pretrained(ref.path)
    assert model.config.num_hidden_layers == 2 and tokenizer.eos_token == "<|im_end|>"
    assert ref.name == "base_model" and ref.base_model == "tiny-random-llama"


def test_tables_land_in_duckdb_and_rematerializing_is_stable(state):
    import duckdb

    first = dg.materialize([sources.trivia_seeds], resources=build_resources())
    second = dg.materialize([sources.trivia_seeds], resources=build_resources())
    versions = [r.get_asset_materialization_events()[0].event_specific_data.materialization.tags[
        "dagster/data_version"] for r in (first, second)]
    assert versions[0] == versions[1]
    with duckdb.connect(str(state.warehouse), read_only=True) as con:
        rows = con.execute("select id, aliases from phi4.trivia_seeds order by id").fetchall()
    assert len(rows) == 12 and isinstance(rows[0][1], list)


def test_contaminated_training_data_fails_the_blocking_check(state, tmp_path, monkeypatch):
    evals = [json.loads(line) for line in (state.data_dir / "eval" / "simpleqa.jsonl").read_text().splitlines()]
    leaked = evals[0]
    trivia = [json.loads(line) for line in (state.data_dir / "seeds" / "trivia.jsonl").read_text().splitlines()][:5]
    # The same fact in other words: same key, mostly the same content words.
    trivia.append({"id": "trivia-leak", "question": leaked["question"].replace("?", " exactly?"),
                   "answer": leaked["answer"], "aliases": [], "topic": leaked["topic"], "difficulty": "hard"})
    path = tmp_path / "trivia.jsonl"
    path.write_text("\n".join(json.dumps(t) for t in trivia) + "\n")
    config = tmp_path / "phi4.toml"
    config.write_text(f'[profile]\nsource_limit = 100\n[profile.data_files]\ntrivia = "{path}"\n')
    monkeypatch.setenv("PHI4_CONFIG", str(config))

    result = dg.materialize([*TABLES, *CHECKS], resources=build_resources(), raise_on_error=False)
    assert check_results(result)["eval_sets_decontaminated"] is False
    evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == "eval_sets_decontaminated")
    assert evaluation.metadata["overlaps"].value == 1
    assert "trivia-leak" in evaluation.metadata["examples"].value


def test_a_malformed_seed_file_fails_with_file_line_and_field(state, tmp_path, monkeypatch):
    path = tmp_path / "trivia.jsonl"
    path.write_text('{"id": "t1", "question": "Q?", "answer": "A", "aliases": [], "topic": "history", '
                    '"difficulty": "easy"}\n{"id": "t2", "question": "Q2?", "answer": 3, "aliases": [], '
                    '"topic": "history", "difficulty": "easy"}\n')
    config = tmp_path / "phi4.toml"
    config.write_text(f'[profile.data_files]\ntrivia = "{path}"\n')
    monkeypatch.setenv("PHI4_CONFIG", str(config))
    with pytest.raises(Exception, match=r"trivia.jsonl:2: field 'answer': expected a non-empty string, got 3"):
        dg.materialize([sources.trivia_seeds], resources=build_resources())


def test_shipped_data_is_decontaminated_at_full_size(state, tmp_path, monkeypatch):
    config = tmp_path / "phi4.toml"
    config.write_text("[profile]\nsource_limit = 1000000\nmath_train = 320\nmath_eval = 120\n")
    monkeypatch.setenv("PHI4_CONFIG", str(config))
    result = dg.materialize([*TABLES, *CHECKS], resources=build_resources(), raise_on_error=False)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations["eval_sets_decontaminated"].passed, evaluations["eval_sets_decontaminated"].metadata
    assert evaluations["eval_sets_decontaminated"].metadata["training_rows"].value > 1500
    assert evaluations["trivia_seeds_distinct"].passed


# -- reading a seed file: bounded, byte-exact errors -----------------------------------------

SEED = {"id": "s-000", "question": "Which river flows through Lyon besides the Rhone?", "answer": "Saone",
        "aliases": [], "topic": "geography", "difficulty": "medium"}


def seed_line(i: int, **fields) -> str:
    return json.dumps({**SEED, "id": f"s-{i:03d}", "question": f"{SEED['question']} ({i})", **fields},
                      ensure_ascii=False) + "\n"


@contextmanager
def no_hang(seconds: int = 10):
    """Fail instead of hanging (a FIFO opened for reading blocks until a writer comes)."""
    def hung(signum, frame):
        raise TimeoutError(f"still reading after {seconds}s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_only_regular_files_are_read_and_never_opened_otherwise(tmp_path):
    (tmp_path / "adir.jsonl").mkdir()
    with pytest.raises(SourceError, match=r"adir.jsonl: a directory, not a regular file"):
        read_records(tmp_path / "adir.jsonl", schemas.TRIVIA)
    os.mkfifo(tmp_path / "fifo.jsonl")
    with no_hang(), pytest.raises(SourceError, match=r"fifo.jsonl: a FIFO, not a regular file"):
        read_records(tmp_path / "fifo.jsonl", schemas.TRIVIA)
    with pytest.raises(SourceError, match=r"missing.jsonl: file not found \(trivia records\)"):
        read_records(tmp_path / "missing.jsonl", schemas.TRIVIA)


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    path = tmp_path / "big.jsonl"
    path.write_text("".join(seed_line(i) for i in range(40)))
    monkeypatch.setattr(records, "MAX_FILE_BYTES", 1000)
    with pytest.raises(SourceError, match=rf"big.jsonl: {path.stat().st_size} bytes, over the limit of 1000 "
                                          r"\(MAX_FILE_BYTES"):
        read_records(path, schemas.TRIVIA)


def test_a_huge_record_and_overlong_fields_are_refused_naming_line_and_field(tmp_path):
    path = tmp_path / "huge.jsonl"
    with path.open("w") as f:  # a 50 MB record under the file limit: the line limit stops it
        f.write(seed_line(0) + seed_line(1, answer="x" * 50_000_000))
    with pytest.raises(SourceError, match=r"huge.jsonl:2: line over 65536 bytes \(MAX_LINE_BYTES, 64 KiB\)"):
        read_records(path, schemas.TRIVIA)

    cases = {
        "question": (dict(question="Why " + "x" * schemas.MAX_QUESTION_CHARS + "?"),
                     f"{schemas.MAX_QUESTION_CHARS + 5} characters, over the limit of {schemas.MAX_QUESTION_CHARS}"),
        "answer": (dict(answer="y" * (schemas.MAX_ANSWER_CHARS + 1)),
                   f"{schemas.MAX_ANSWER_CHARS + 1} characters, over the limit of {schemas.MAX_ANSWER_CHARS}"),
        "aliases": (dict(aliases=["ok", "z" * (schemas.MAX_ANSWER_CHARS + 1)]),
                    f"item 2: {schemas.MAX_ANSWER_CHARS + 1} characters, over the limit"),
        "id": (dict(id="i" * (schemas.MAX_ID_CHARS + 1)),
               f"{schemas.MAX_ID_CHARS + 1} characters, over the limit of {schemas.MAX_ID_CHARS}"),
    }
    for name, (fields, problem) in cases.items():
        path.write_text(seed_line(0) + seed_line(1, **fields))
        with pytest.raises(SourceError) as error:
            read_records(path, schemas.TRIVIA)
        assert str(error.value).startswith(f"{path}:2: field '{name}': {problem}"), str(error.value)
    path.write_text(seed_line(0, aliases=["a"] * (schemas.MAX_ALIASES + 1)))
    with pytest.raises(SourceError, match=rf"huge.jsonl:1: field 'aliases': {schemas.MAX_ALIASES + 1} items"):
        read_records(path, schemas.TRIVIA)
    path.write_text(seed_line(0) + "[" * 60_000 + "\n")  # under the line limit, too deep for the parser
    with pytest.raises(SourceError, match=r"huge.jsonl:2: not valid JSON"):
        read_records(path, schemas.TRIVIA)


def test_a_bad_byte_is_reported_with_its_line_and_offset(tmp_path):
    path = tmp_path / "latin1.jsonl"
    head = "".join(seed_line(i, question=f"Which river flows through Lyon, question {i} of many?")
                   for i in range(399)).encode()
    bad = seed_line(399, question="Which river flows past Mâcon?").encode("latin-1")
    path.write_bytes(head + bad)
    column = bad.index(b"\xe2")
    offset = len(head) + column
    assert offset > 60_000  # far past the first read buffer
    with pytest.raises(SourceError) as error:
        read_records(path, schemas.TRIVIA)
    assert str(error.value) == (f"{path}:400: not UTF-8 text (invalid continuation byte: byte 0xe2 at offset "
                                f"{offset} in the file, {column} in the line)")


def test_a_byte_order_mark_opening_the_file_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + (seed_line(0) + seed_line(1)).encode())
    assert [r["id"] for r in read_records(path, schemas.TRIVIA)] == ["s-000", "s-001"]
    path.write_bytes(seed_line(0).encode() + b"\xef\xbb\xbf" + seed_line(1).encode())  # only at the start
    with pytest.raises(SourceError, match=r"bom.jsonl:2: not valid JSON"):
        read_records(path, schemas.TRIVIA)
