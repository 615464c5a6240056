"""The ``sources`` group materialized on the tiny profile."""

import json

import dagster as dg
import pytest

from phi4_assets.defs import sources
from phi4_assets.defs.resources import build_resources
from phi4_assets.models.ref import ModelRef

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
