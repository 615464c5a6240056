"""The policy engine (``models.engine``): the in-process backend and the vLLM backend through a
loopback server that speaks vLLM's completions API (``tests/vllm_stub.py``, the tiny model
behind it); the same sampling and PTS steps through both."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from phi4_assets.config.profiles import PROFILES
from phi4_assets.models.engine import TransformersPolicy, open_policy, policy_engine
from phi4_assets.models.generation import chat_prompt
from phi4_assets.models.vllm_backend import VllmError, VllmPolicy, token_ids_of
from phi4_assets.pts.estimator import PrefixEstimator, estimate_many
from phi4_assets.pts.search import pivotal_token_search, search_many
from vllm_stub import StubVllm

STUB = Path(__file__).with_name("vllm_stub.py")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stub(tiny_model_dir):
    with StubVllm(tiny_model_dir) as server:
        yield server


@pytest.fixture(params=["transformers", "vllm"])
def engine(request, tiny_model_dir, stub):
    if request.param == "transformers":
        policy = TransformersPolicy(str(tiny_model_dir), device="cpu")
    else:
        policy = VllmPolicy(str(tiny_model_dir), base_url=stub.base_url)
    try:
        yield policy
    finally:
        policy.close()


def test_both_backends_sample_k_answers_per_prompt_within_the_budget(engine):
    prompts = [chat_prompt(engine.tokenizer, q) for q in ("What is 2 + 2?", "Name a colour.", "Who wrote Hamlet?")]
    samples = engine.sample(prompts, 3, temperature=0.8, max_new_tokens=6, batch_rows=6, seed=5)
    assert [len(s) for s in samples] == [3, 3, 3]
    assert all(0 < x.n_tokens <= 6 and isinstance(x.text, str) for per in samples for x in per)
    again = engine.sample(prompts, 3, temperature=0.8, max_new_tokens=6, batch_rows=6, seed=5)
    assert again == samples  # seeded: a re-run reproduces


def test_the_in_process_sampler_decodes_about_batch_rows_sequences_per_call(tiny_model_dir, monkeypatch):
    """``batch_rows // k`` prompts per batch, at least one, whatever k is; each prompt prefilled
    once and decoded k times."""
    from phi4_assets.models import generation

    policy = TransformersPolicy(str(tiny_model_dir), device="cpu")
    calls = []
    decode = generation.decode

    def counting(model, input_ids, attention_mask, **kwargs):
        calls.append((input_ids.shape[0], kwargs["repeats"]))  # (prompts prefilled, rows per prompt)
        return decode(model, input_ids, attention_mask, **kwargs)

    monkeypatch.setattr(generation, "decode", counting)
    prompts = [chat_prompt(policy.tokenizer, f"Name {n} colours.") for n in range(5)]
    assert [len(s) for s in policy.sample(prompts, 2, max_new_tokens=2, batch_rows=4)] == [2] * 5
    assert calls == [(2, 2), (2, 2), (1, 2)]
    calls.clear()
    policy.sample(prompts, 8, max_new_tokens=2, batch_rows=4)  # k above batch_rows: one prompt a batch
    assert calls == [(1, 8)] * 5
    calls.clear()
    policy.sample(prompts, 1, max_new_tokens=2)  # the default: 64 rows, every prompt in one batch here
    assert calls == [(5, 1)]


def test_both_backends_run_the_pts_search_on_token_ids(engine):
    sampler = engine.rollout_sampler(temperature=0.9, max_new_tokens=8, batch_size=4)
    prompt = sampler.prompt_ids("Count to three.")
    response = sampler.sample_response(prompt, seed=1)
    assert 0 < len(response.token_ids) <= 8 and len(response.logprobs) == len(response.token_ids)
    assert all(lp <= 0 for lp in response.logprobs)
    rollouts = sampler.rollouts(prompt + list(response.token_ids[:2]), 5, seed=3, max_new_tokens=4)
    assert len(rollouts) == 5 and all(len(r.token_ids) <= 4 for r in rollouts)
    assert all(r.first_token == (r.token_ids[0] if r.token_ids else None) for r in rollouts)
    assert sampler.sampled_tokens == sum(len(r.token_ids) for r in rollouts)
    # An oracle that succeeds when a rollout's text is even-length: the search runs end to end.
    estimator = PrefixEstimator(sampler, lambda text: len(text) % 2 == 0, prompt, 4, "p1", "v1")
    result = pivotal_token_search(response.token_ids, response.logprobs, estimator, 0.2)
    assert result.calls >= 2 and estimator.rollouts == 4 * len(estimator.by_prefix)
    assert all(0 <= e.p <= 1 for e in estimator.by_prefix.values())
    # Several problems: responses sampled together, searches in lockstep, per-prefix budgets.
    prompts = [sampler.prompt_ids(q) for q in ("Count to three.", "Name a colour.")]
    responses = sampler.responses(prompts, seed=2)
    assert [len(r.logprobs) for r in responses] == [len(r.token_ids) for r in responses]
    assert all(0 < len(r.token_ids) <= 8 for r in responses)
    groups = sampler.rollouts_many([prompts[0], prompts[1] + [5, 6]], 3, seed=4, max_new_tokens=[2, 5])
    assert [len(g) for g in groups] == [3, 3] and all(len(r.token_ids) <= 2 for r in groups[0])
    estimators = [PrefixEstimator(sampler, lambda text: len(text) % 2 == 0, p, 4, f"q{i}", "v1")
                  for i, p in enumerate(prompts)]
    results = search_many([(r.token_ids, r.logprobs) for r in responses],
                          lambda asks: [e.p for e in estimate_many([(estimators[i], responses[i].token_ids[:n])
                                                                    for i, n in asks], seed=0)], 0.2)
    assert [r.calls for r in results] == [len(e.by_prefix) for e in estimators] and all(r.calls >= 2 for r in results)


def test_both_backends_evaluate_greedily(engine, tiny_model_dir):
    from phi4_assets.evaluation.runner import evaluate_model

    prompts = [chat_prompt(engine.tokenizer, q) for q in ("What is 2 + 2?", "Name a colour.", "Who wrote Hamlet?")]
    greedy = engine.greedy(prompts, max_new_tokens=5, batch_size=2)
    assert len(greedy) == 3 and all(0 < s.n_tokens <= 5 for s in greedy)
    assert engine.greedy(prompts, max_new_tokens=5, batch_size=2) == greedy  # greedy: the same every time
    items = [{"id": f"q{i}", "benchmark": "simpleqa", "question": q, "answer": a, "aliases": [], "bogus": False}
             for i, (q, a) in enumerate([("What is the capital of France?", "Paris"), ("Who wrote Hamlet?", "Shakespeare")])]
    per_item, aggregates = evaluate_model(str(tiny_model_dir), items, policy=engine, max_new_tokens={"simpleqa": 6},
                                          n_boot=10)
    assert list(per_item["id"]) == ["q0", "q1"] and set(per_item["grade"]) <= {"A", "B", "C"}
    assert (per_item["response_tokens"] <= 6).all() and len(aggregates) > 0


def test_vllm_requests_carry_token_ids_and_read_token_ids_back(tiny_model_dir, stub):
    policy = VllmPolicy(str(tiny_model_dir), base_url=stub.base_url)
    try:
        sampler = policy.rollout_sampler(temperature=0.7, max_new_tokens=6)
        before = len(stub.requests)
        context = sampler.prompt_ids("Hello?") + [1, 2, 3]
        rollouts = sampler.rollouts(context, 3, seed=11, max_new_tokens=5)
        (request,) = stub.requests[before:]
        assert request["prompt"] == context  # the context's ids as they are, never re-tokenized text
        assert {k: request[k] for k in ("n", "max_tokens", "seed", "temperature", "top_p", "logprobs",
                                        "return_tokens_as_token_ids", "model")} == {
            "n": 3, "max_tokens": 5, "seed": 11, "temperature": 0.7, "top_p": 1.0, "logprobs": 0,
            "return_tokens_as_token_ids": True, "model": str(Path(tiny_model_dir).resolve())}
        # transformers samples with its generation config's top_k (50 by default); so does the request.
        assert request["top_k"] == 50
        # The ids read back are the server's, end-of-turn stripped.
        assert all(policy.tokenizer.eos_token_id not in r.token_ids for r in rollouts)
        assert sampler.params["backend"] == "vllm"  # its estimates have their own memo keys
        # A batch of templated prompts is one request with a list of token-id lists.
        policy.sample([chat_prompt(policy.tokenizer, "a"), chat_prompt(policy.tokenizer, "b")], 2, max_new_tokens=3)
        assert isinstance(stub.requests[-1]["prompt"][0], list) and stub.requests[-1]["n"] == 2
    finally:
        policy.close()


def test_token_ids_must_come_back_as_ids():
    assert token_ids_of(["token_id:5", "token_id:0"]) == [5, 0]
    with pytest.raises(VllmError, match="return_tokens_as_token_ids"):
        token_ids_of(["Hello"])


def test_an_endpoint_serving_another_directory_is_refused(tiny_model_dir, tmp_path):
    with StubVllm(tiny_model_dir, served_name="some-other-model") as other:
        other.server.model_dir = "/models/other"
        with pytest.raises(VllmError, match=r"serves some-other-model, not .*vllm serve"):
            VllmPolicy(str(tiny_model_dir), base_url=other.base_url)


def test_the_vllm_backend_launches_its_server_over_the_directory_and_stops_it(tiny_model_dir, tmp_path):
    record = tmp_path / "requests.jsonl"
    command = (f"{shlex.quote(sys.executable)} {shlex.quote(str(STUB))} {{model_dir}} --port {{port}} "
               f"--record {shlex.quote(str(record))}")
    settings = PROFILES["tiny"].replace(policy_backend="vllm", vllm_command=command, vllm_startup_timeout_s=120)
    with open_policy(str(tiny_model_dir), settings, asset="sft_model", log_dir=tmp_path) as policy:
        server = policy.server
        assert server is not None and server.running
        samples = policy.sample([chat_prompt(policy.tokenizer, "Hi")], 2, max_new_tokens=4)
        assert len(samples[0]) == 2
    assert not server.running
    assert json.loads(record.read_text().splitlines()[0])["n"] == 2
    assert list(tmp_path.glob("phi4-vllm-sft_model-*.log"))


def test_a_launch_command_that_fails_says_what_ran(tiny_model_dir, tmp_path):
    settings = PROFILES["tiny"].replace(policy_backend="vllm", vllm_command="false {model_dir} {port}",
                                        vllm_startup_timeout_s=30)
    with pytest.raises(VllmError, match=r"(?s)exited with code 1.*vllm_command = 'false"):
        policy_engine(str(tiny_model_dir), settings, asset="sft_model", log_dir=tmp_path)


def test_an_endpoint_per_model_asset_is_used_instead_of_a_launch(tiny_model_dir, stub):
    settings = PROFILES["tiny"].replace(policy_backend="vllm", vllm_command="false",
                                        vllm_endpoints={"dpo1_model": stub.base_url})
    with open_policy(str(tiny_model_dir), settings, asset="dpo1_model") as policy:
        assert policy.server is None and policy.sample([chat_prompt(policy.tokenizer, "x")], 1, max_new_tokens=2)


def test_an_asset_samples_through_the_configured_backend(state, tmp_path, monkeypatch):
    """``policy_answer_samples`` on tiny with ``policy_backend = "vllm"``: the asset launches the
    server over ``base_model``'s directory, its rows come from the server's requests, and the
    server is gone after the run."""
    import dagster as dg

    from phi4_assets.defs import hallucination, sources
    from phi4_assets.defs.partitions import seed_shard_keys
    from phi4_assets.defs.resources import build_resources
    from phi4_assets.models.ref import ModelRef
    from scripted import ALL, register_seed_shards, table

    record = tmp_path / "requests.jsonl"
    command = f"{sys.executable} {STUB} {{model_dir}} --port {{port}} --record {record}"
    config = tmp_path / "phi4.toml"
    config.write_text(f'[profile]\npolicy_backend = "vllm"\nvllm_command = "{command}"\nvllm_startup_timeout_s = 120\n')
    monkeypatch.setenv("PHI4_CONFIG", str(config))
    instance = dg.DagsterInstance.ephemeral()
    register_seed_shards(instance)
    resources = build_resources()
    dg.materialize(ALL, selection=[sources.trivia_seeds.key, sources.base_model.key], resources=resources,
                   instance=instance)
    shard = seed_shard_keys()[0]
    dg.materialize(ALL, selection=[hallucination.policy_answer_samples.key], partition_key=shard,
                   resources=resources, instance=instance)
    samples = table(state, "policy_answer_samples")
    base = ModelRef.from_frame(table(state, "base_model"))
    requests = [json.loads(line) for line in record.read_text().splitlines()]
    k = PROFILES["tiny"].answer_samples
    assert len(samples) == k * samples["question_id"].nunique() > 0
    assert {r["model"] for r in requests} == {str(Path(base.path).resolve())} and {r["n"] for r in requests} == {k}
    prompts = sum(len(r["prompt"]) if isinstance(r["prompt"][0], list) else 1 for r in requests)
    assert prompts == samples["question_id"].nunique()  # one id list per question
    assert set(samples["model_version"]) == {base.data_version}
    running = [c for c in Path("/proc").glob("[0-9]*/cmdline") if _reads(c) and str(record) in _reads(c)]
    assert not running  # the server the asset launched was stopped with it


def _reads(path: Path) -> str:
    try:
        return path.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_a_launch_command_that_is_not_installed_or_not_well_formed_says_so(tiny_model_dir, tmp_path):
    missing = PROFILES["tiny"].replace(policy_backend="vllm", vllm_command="no-such-vllm serve {model_dir} {port}")
    with pytest.raises(VllmError, match=r"(?s)could not start \(no-such-vllm.*is vLLM installed"):
        policy_engine(str(tiny_model_dir), missing, asset="sft_model", log_dir=tmp_path)
    braces = PROFILES["tiny"].replace(policy_backend="vllm", vllm_command="vllm serve {model_dir} --x {json}")
    with pytest.raises(VllmError, match="may name only"):
        policy_engine(str(tiny_model_dir), braces, asset="sft_model", log_dir=tmp_path)
    with pytest.raises(TypeError, match="asset must be a model asset's name"):
        policy_engine(str(tiny_model_dir), missing, asset=object())
