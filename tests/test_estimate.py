"""``phi4 estimate``: teacher calls and tokens before a run, from the profile, the inputs and the cache."""

import json

import dagster as dg
import duckdb
import pytest

from phi4_assets.cli.main import main
from phi4_assets.defs import hallucination as h
from phi4_assets.defs import hallucination_data as hd
from phi4_assets.defs import judge, sft, sources
from phi4_assets.defs.partitions import register_seed_shards
from phi4_assets.defs.resources import build_resources
from phi4_assets.ops.estimate import estimate, render_text
from phi4_assets.teacher.embedded import model_dir_identity

CONFIG = """\
[profile]
hallucination_seeds = 4
shard_size = 2
answer_samples = 3
sft_chat_prompts = 2
judge_prompts = {chat = 1, safety = 2, keyed = 3}
judge_sources = ["teacher", "gpt-4-turbo", "sft_model"]

[profile.generators]
answer_check = "teacher"
reference_answer = "teacher"
bogus_question = "rules"
refusal = "teacher"
safety_refusal = "teacher"
judge = "teacher"
"""


@pytest.fixture
def config(state, tmp_path, monkeypatch):
    path = tmp_path / "phi4.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("PHI4_CONFIG", str(path))
    return path


def by_key(result) -> dict:
    return {(line.asset, line.partition, line.task): line for line in result.lines}


def _materialized_base_model(state, path) -> None:
    """A ``base_model`` row pointing at ``path``, as the asset writes it."""
    state.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(state.warehouse)) as con:
        con.execute("CREATE SCHEMA phi4")
        con.execute("CREATE TABLE phi4.base_model AS SELECT ? AS path, 'base_model' AS name, 'x' AS base_model, "
                    "'v1' AS data_version, '{}' AS metrics", [str(path)])


def test_before_anything_is_materialized_counts_come_from_the_profile_and_data_files(config, capsys):
    result = estimate(["group:hallucination", "sft_dataset", "judge_candidates", "judge_ratings"])
    lines = by_key(result)
    assert result.teacher is None  # embedded teacher, base_model not built: its cache identity is unknown
    got = {k: (v.requests, v.requests_basis, v.calls, v.cached, v.to_call, v.tokens, v.tokens_basis)
           for k, v in lines.items()}
    assert got == {
        # 2 questions a shard x 3 samples: an upper bound (samples that contain the key need no call)
        ("answer_checks", "000", "answer_check"): (6, "upper bound", 6, None, None, 6 * 24, "upper bound"),
        ("answer_checks", "001", "answer_check"): (6, "upper bound", 6, None, None, 6 * 24, "upper bound"),
        ("reference_answers", "000", "reference_answer"): (2, "exact", 2, None, None, 2 * 64, "upper bound"),
        ("reference_answers", "001", "reference_answer"): (2, "exact", 2, None, None, 2 * 64, "upper bound"),
        ("bogus_questions", "000", "bogus_question"): (0, "none", 0, 0, 0, 0, "none"),
        ("bogus_questions", "001", "bogus_question"): (0, "none", 0, 0, 0, 0, "none"),
        # every real question may need a refusal, and every bogus variant
        ("refusals", "000", "refusal"): (4, "upper bound", 4, None, None, 4 * 80, "upper bound"),
        ("refusals", "001", "refusal"): (4, "upper bound", 4, None, None, 4 * 80, "upper bound"),
        # tiny: 12 harmful safety prompts and their 12 benign look-alikes; sft_response_tokens 16
        ("sft_dataset", None, "sft_chat_response"): (2, "exact", 2, None, None, 2 * 16, "upper bound"),
        ("sft_dataset", None, "sft_benign_answer"): (12, "exact", 12, None, None, 12 * 16, "upper bound"),
        ("sft_dataset", None, "sft_harmful_refusal"): (12, "exact", 12, None, None, 12 * 16, "upper bound"),
        # 1 chat + 2 safety + 3 keyed prompts, from the two endpoint sources (sft_model answers in-process)
        ("judge_candidates", None, "judge_candidate"): (12, "exact", 12, None, None, 12 * 12, "upper bound"),
        # both orders x 6 prompts x 3 source pairs (judge_verdict_tokens 64 on tiny)
        ("judge_ratings", None, "judge"): (36, "upper bound", 36, None, None, 36 * 64, "upper bound"),
    }
    assert "gpt-4-turbo need a configured endpoint" in lines[("judge_candidates", None, "judge_candidate")].note
    assert set(result.skipped) == {"policy_answer_samples", "hallucination_sft_data", "hallucination_dpo_pairs"}
    assert all(line.tokens_are_upper_bound for line in result.lines if line.tokens)
    # no request texts for an upper bound, and no tokenizer before base_model exists: prompts not counted
    checks, answers = lines[("answer_checks", "000", "answer_check")], lines[("reference_answers", "000",
                                                                                 "reference_answer")]
    assert checks.prompt_tokens is None and "request texts are not known yet" in checks.tokens_note
    assert answers.prompt_tokens is None and answers.completion_tokens == 2 * 64 and answers.tokens_are_partial
    assert "base_model is not materialized" in result.prompt_note
    totals = result.totals()
    assert totals["requests"] == {"value": 98, "complete": True}
    assert totals["to_call"] == {"value": 0, "complete": False}

    assert main(["estimate", "--select", "answer_checks,refusals", "--partitions", "001", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(x["asset"], x["partition"], x["requests"], x["requests_basis"], x["tokens_upper_bound"])
            for x in data["lines"]] == [("answer_checks", "001", 6, "upper bound", True),
                                        ("refusals", "001", 4, "upper bound", True)]
    assert data["profile"] == "tiny" and data["teacher"] is None and data["totals"]["calls"]["value"] == 10

    assert main(["estimate", "--select", "answer_checks", "--partitions", "007"]) == 2
    assert "unknown seed shard(s) 007" in capsys.readouterr().err
    assert main(["estimate", "--select", "no_such_asset"]) == 2


def test_embedded_teacher_identity_is_the_served_weights_digest(config, state, tmp_path):
    weights = tmp_path / "base"
    weights.mkdir()
    (weights / "model.safetensors").write_bytes(b"not really weights")
    _materialized_base_model(state, weights)
    result = estimate(["reference_answers"], ["000"])
    assert result.teacher == f"embedded:{model_dir_identity(weights)}"
    (line,) = result.lines
    assert (line.requests, line.calls, line.cached, line.to_call) == (2, 2, 0, 2)  # the cache is empty: all to make
    # no tokenizer in that directory: prompt tokens are not counted, and the estimate says why
    assert line.prompt_tokens is None and "no tokenizer readable" in result.prompt_note


def _metadata(result, asset: str) -> dict:
    return next(e.event_specific_data.materialization.metadata for e in result.get_asset_materialization_events()
                if e.event_specific_data.materialization.asset_key.path[-1] == asset)


def test_after_a_run_the_estimate_matches_what_the_assets_asked_and_finds_it_cached(config, state, stub_teacher):
    """The rebuilt requests are exactly the assets' own: after materializing them, every one is a
    cache hit but those the task's parser could not read (kept in the cache as rejected: the next
    run asks them again), and the counts equal the requests each asset reported."""
    instance = dg.DagsterInstance.ephemeral()
    register_seed_shards(instance)
    resources = build_resources()
    assets = [sources.trivia_seeds, sources.base_model, sources.chat_prompts, sources.safety_prompts,
              sources.math_problems, sources.mcq_questions, h.policy_answer_samples, h.answer_checks,
              h.reference_answers, h.bogus_questions, h.refusals, sft.sft_dataset, hd.hallucination_sft_data,
              judge.judge_candidates, judge.judge_ratings,
              dg.AssetSpec("sft_model"), dg.AssetSpec("dpo1_model")]  # hand-made rows below: no training
    dg.materialize(assets, selection=[a.key for a in assets[:6]], resources=resources, instance=instance)
    shard = dg.materialize(assets, selection=[a.key for a in assets[6:11]], partition_key="000", resources=resources,
                           instance=instance)
    # sft_dataset and the judge group from hand-made upstream rows (no training in this test)
    with duckdb.connect(str(state.warehouse)) as con:
        con.execute("CREATE TABLE phi4.hallucination_sft_data AS SELECT 'hsft-1' AS id, 'Q?' AS prompt, "
                    "'A.' AS completion, 'answer' AS kind, 'trivia-0001' AS question_id, 1.0 AS p_correct, "
                    "'reference-1' AS source_id, 'rules' AS generator")
        for model in ("sft_model", "dpo1_model"):
            con.execute(f"CREATE TABLE phi4.{model} AS SELECT * FROM phi4.base_model")
    later = dg.materialize(assets, selection=[sft.sft_dataset.key, judge.judge_candidates.key,
                                              judge.judge_ratings.key], resources=resources, instance=instance)
    calls_before = stub_teacher.hits

    result = estimate(["answer_checks", "reference_answers", "bogus_questions", "refusals", "sft_dataset",
                       "judge_candidates", "judge_ratings"], ["000"])
    assert stub_teacher.hits == calls_before  # an estimate calls nothing
    assert result.teacher == "stub-teacher"
    lines = by_key(result)
    reported = {asset: _metadata(shard, asset)
                for asset in ("answer_checks", "reference_answers", "bogus_questions", "refusals")}
    reported["judge_ratings"] = _metadata(later, "judge_ratings")
    for asset, meta in reported.items():
        (line,) = [v for k, v in lines.items() if k[0] == asset]
        assert line.requests == meta["teacher_requests"].value, asset
        unreadable = meta["teacher_unusable"].value
        assert line.to_call == unreadable and line.cached == line.calls - unreadable, asset
        assert line.requests_basis == ("none" if asset == "bogus_questions" else "exact"), asset  # rules
    assert reported["judge_ratings"]["teacher_unusable"].value > 0  # the scripted judge's unreadable verdicts
    sft_meta = _metadata(later, "sft_dataset")
    for kind in ("chat_response", "benign_answer", "harmful_refusal"):
        line = lines[("sft_dataset", None, f"sft_{kind}")]
        assert line.requests == sft_meta[f"teacher_{kind}_requests"].value and line.to_call == 0
    candidates = _metadata(later, "judge_candidates")
    line = lines[("judge_candidates", None, "judge_candidate")]
    assert line.to_call == 0 and line.requests == candidates["teacher_teacher_requests"].value + \
        candidates["teacher_gpt-4-turbo_requests"].value
    assert all(line.tokens == 0 for line in result.lines if line.to_call == 0)
    assert all(line.tokens > 0 for line in result.lines if line.to_call)

    # The other shard: its questions are new, so its reference answers are all to make; the stub
    # reported 7 + 3 tokens a call, measured from the cache.
    other = by_key(estimate(["reference_answers", "answer_checks"], ["001"]))
    line = other[("reference_answers", "001", "reference_answer")]
    assert (line.requests, line.cached, line.to_call, line.tokens_per_call, line.tokens, line.tokens_basis) == \
        (2, 0, 2, 10.0, 20, "measured")
    assert not line.tokens_are_upper_bound
    assert other[("answer_checks", "001", "answer_check")].requests_basis == "upper bound"

    text = render_text(estimate(["reference_answers"], ["000", "001"]))
    assert "reference_answers  000        reference_answer  teacher" in text
    assert "measured: mean 7+3 tokens over" in text


def test_the_teacher_assets_come_from_the_definitions_and_each_has_a_planner():
    from phi4_assets.ops import estimate as est

    teacher = est.teacher_assets()
    assert set(teacher) == set(est.PLANNERS)
    assert {"answer_checks", "refusals", "sft_dataset", "judge_ratings"} <= set(teacher)
    assert "policy_answer_samples" not in teacher and est.graph()["answer_checks"].sharded
    assert not est.graph()["judge_ratings"].sharded and est.graph()["judge_ratings"].group == "judge"


def test_llm_grades_of_the_evaluation_are_counted_per_stage(state):
    from phi4_assets.ops import estimate as est
    from phi4_assets.config.profiles import load_profile

    profile = load_profile("tiny")
    paths = state
    rules = est.estimate(["stage_evaluations"], profile=profile, paths=paths)
    assert {line.generator for line in rules.lines} == {"rules"} and len(rules.lines) == 5
    graded = est.estimate(["stage_evaluations"], paths=paths,
                          profile=profile.replace(generators={**profile.generators, "eval_grade": "teacher"}))
    assert [line.partition for line in graded.lines] == ["base", "sft", "dpo1", "dpo2_only", "final"]
    simpleqa = profile.eval_limits["simpleqa"]  # tiny: 4 SimpleQA items per stage
    assert {line.requests for line in graded.lines} == {simpleqa}
    assert all(line.requests_basis == "upper bound" for line in graded.lines)


# -- prompt tokens and cost ----------------------------------------------------------------------


def _requests(shard: str = "000") -> list:
    """The reference-answer requests of ``shard``, as the estimate rebuilds them."""
    from phi4_assets.ops import estimate as est
    from phi4_assets.config.profiles import load_profile
    from phi4_assets.config.settings import Paths

    inputs = est.Inputs(load_profile(), Paths.from_env())
    (plan,) = est.plan_reference_answers(inputs, shard, inputs.shard_questions()[shard])
    return plan.requests


def _template_tokens(model_dir, request) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    return len(tokenizer.apply_chat_template(request.wire_messages(), tokenize=True, add_generation_prompt=True,
                                             return_dict=False))


def test_prompt_tokens_of_the_embedded_teacher_are_counted_with_its_own_tokenizer(config, state, tiny_model_dir,
                                                                                  capsys):
    from phi4_assets.ops.estimate.cost import PromptCounter

    _materialized_base_model(state, tiny_model_dir)
    requests = _requests()
    expected = [_template_tokens(tiny_model_dir, r) for r in requests]
    assert PromptCounter(tiny_model_dir, True, "").count(requests[0].messages) == expected[0]

    result = estimate(["reference_answers"], ["000"])
    (line,) = result.lines
    assert result.prompt_note == "prompt tokens counted with the teacher's tokenizer"
    assert (line.to_call, line.prompt_basis, line.prompt_tokens) == (2, "counted", sum(expected))
    assert (line.completion_tokens, line.tokens) == (2 * 64, sum(expected) + 2 * 64)
    assert not line.tokens_are_partial
    # tiny's embedded teacher serves base_model "tiny-random-llama": no price for it
    assert line.cost is None and line.unpriced == ["tiny-random-llama"]
    assert main(["estimate", "--select", "reference_answers", "--partitions", "000"]) == 0
    assert ('cost: no price for tiny-random-llama (set [profile.teacher_prices."tiny-random-llama"] input/output '
            "in USD per 1M tokens)") in capsys.readouterr().out


def test_a_remote_teacher_is_counted_with_the_base_tokenizer_and_priced_from_the_profile(config, state,
                                                                                        tiny_model_dir, capsys):
    config.write_text(CONFIG.replace("[profile]\n", '[profile]\nteacher_base_url = "http://127.0.0.1:9/v1"\n'
                                                     'teacher_model = "gpt-4o"\n', 1)
                      + '\n[profile.teacher_prices."gpt-4o"]\ninput = 2.5\noutput = 10\n')
    _materialized_base_model(state, tiny_model_dir)
    expected = sum(_template_tokens(tiny_model_dir, r) for r in _requests())

    result = estimate(["reference_answers", "judge_candidates"], ["000"])
    assert result.prompt_note == ("prompt tokens counted with the base model's tokenizer, an approximation for "
                                  "gpt-4o")
    lines = by_key(result)
    line = lines[("reference_answers", "000", "reference_answer")]
    assert (line.prompt_basis, line.prompt_tokens, line.completion_tokens) == ("approximation", expected, 2 * 64)
    assert line.cost == pytest.approx(expected * 2.5 / 1e6 + 2 * 64 * 10 / 1e6, rel=1e-12)
    # judge candidates also ask gpt-4-turbo at the endpoint, which has no price
    candidates = lines[("judge_candidates", None, "judge_candidate")]
    assert candidates.cost is None and candidates.unpriced == ["gpt-4-turbo"]

    assert main(["estimate", "--select", "reference_answers", "--partitions", "000"]) == 0
    text = capsys.readouterr().out
    assert f"~{expected}" in text and "an approximation for gpt-4o" in text
    cost = expected * 2.5 / 1e6 + 2 * 64 * 10 / 1e6
    assert f"cost: at most ${cost:.2g}, at $2.50 / $10.00 per 1M prompt / completion tokens (gpt-4o" in text
    assert "no price for" not in text
    assert main(["estimate", "--select", "reference_answers", "--partitions", "000", "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["cost"] == {"value": pytest.approx(cost, rel=1e-12), "complete": True}
    assert totals["cost_upper_bound"] and totals["prompt_tokens"]["value"] == expected


def test_a_bad_price_table_fails_profile_loading_naming_the_field(state, tmp_path):
    from phi4_assets.config.profiles import load_profile

    path = tmp_path / "prices.toml"
    path.write_text('[profile.teacher_prices."gpt-4o"]\ninput = -1\ncached = 1.25\n'
                    '[profile.teacher_prices.other]\ninput = "free"\noutput = 0\n')
    with pytest.raises(ValueError) as e:
        load_profile("tiny", path)
    message = str(e.value)
    for expected in ("teacher_prices.gpt-4o.input: should be >= 0 (got -1)",
                     "teacher_prices.gpt-4o.cached: unknown price; known: input, output",
                     "teacher_prices.gpt-4o: missing output", "teacher_prices.other.input: Input should be a valid number"):
        assert expected in message
    path.write_text('[profile.teacher_prices."gpt-4o"]\ninput = 2.5\noutput = 10\n')
    assert load_profile("tiny", path).teacher_prices == {"gpt-4o": {"input": 2.5, "output": 10}}
