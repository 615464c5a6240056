"""``teacher.batched_server``: the OpenAI-compatible server over ``models.decode.decode``, started as a
process (``BatchedServer``) and called with the real ``openai`` client, against ``generate()`` on
each prompt alone, on a tiny random model in float32 that ends some of its turns."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import torch

from phi4_assets.models.decode import decode
from phi4_assets.models.generation import chat_prompt, load_policy
from phi4_assets.models.sampling import TopKTopPSampling, model_top_k
from phi4_assets.teacher.batched_server import BatchedServer

# Different lengths (left padding in every row but one); with a budget each, some end their turn.
# (The first and last end theirs after 13 and 7 tokens; the other two run past 30.)
ASKED = [("Hi.", 16), ("What is the capital of France?", 9), ("Name three colours of the rainbow, please.", 12),
         ("Why not?", 10)]


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with its own random output layer and a loud end-of-turn row (the tied tiny
    model repeats its last token and never ends its turn), saved untied with the tokenizer."""
    model, tokenizer = load_policy(str(tiny_model_dir), dtype="float32")
    head = torch.randn(model.get_output_embeddings().weight.shape, generator=torch.Generator().manual_seed(0)) * 0.02
    head[tokenizer.eos_token_id] *= 8
    model.config.tie_word_embeddings = False
    model.get_output_embeddings().weight = torch.nn.Parameter(head)
    out = tmp_path_factory.mktemp("stopping-model")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def policy(model_dir):
    model, tokenizer = load_policy(str(model_dir), dtype="float32")
    assert not torch.equal(model.get_output_embeddings().weight, model.get_input_embeddings().weight)  # untied
    return model, tokenizer


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    # A long batch wait and a batch of len(ASKED): concurrent requests surely share a batch, and
    # the worker stops waiting as soon as that many have arrived.
    with BatchedServer(model_dir, dtype="float32", max_batch=len(ASKED), batch_wait_ms=500,
                       log_path=tmp_path_factory.mktemp("served") / "server.log") as served:
        yield served


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=120) as c:
        yield c


def _alone(model, tokenizer, question: str, max_new: int) -> tuple[str, int, int, bool]:
    """``generate()``'s greedy reply to one chat prompt without padding: (text, prompt tokens,
    completion tokens counting the end-of-turn token, ended its turn)."""
    ids = tokenizer(chat_prompt(tokenizer, question), return_tensors="pt", add_special_tokens=False)["input_ids"]
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new,
                         pad_token_id=tokenizer.pad_token_id)[0, ids.shape[1]:].tolist()
    eos = tokenizer.eos_token_id
    ended = eos in out
    new = out[:out.index(eos)] if ended else out
    return tokenizer.decode(new, skip_special_tokens=True), ids.shape[1], len(new) + ended, ended


def _ask(client, server, question: str, **kwargs):
    return client.chat.completions.create(model=server.model_name, messages=[{"role": "user", "content": question}],
                                          **kwargs)


def _batches(server) -> list[int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/stats", timeout=10) as r:
        return json.load(r)["batches"]


def _post(server, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(f"{server.base_url}/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_concurrent_greedy_requests_share_a_batch_and_each_is_generate_alone(server, client, policy):
    model, tokenizer = policy
    before = _batches(server)
    with ThreadPoolExecutor(len(ASKED)) as pool:
        # One asks with max_completion_tokens, the others with max_tokens.
        replies = list(pool.map(lambda qa: _ask(client, server, qa[0], temperature=0,
                                                **{"max_completion_tokens" if qa[1] == 9 else "max_tokens": qa[1]}),
                                ASKED))
    assert _batches(server)[len(before):] == [len(ASKED)]  # decoded together, in one call
    expected = [_alone(model, tokenizer, q, n) for q, n in ASKED]
    assert {e[3] for e in expected} == {True, False}  # some ended their turn, some were cut
    for reply, (text, prompt_tokens, completion_tokens, ended), (_, max_new) in zip(replies, expected, ASKED):
        assert reply.object == "chat.completion" and reply.model == server.model_name
        assert len(reply.choices) == 1 and reply.choices[0].message.role == "assistant"
        assert reply.choices[0].message.content == text
        assert reply.choices[0].finish_reason == ("stop" if ended else "length")
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (
            prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)
        if not ended:
            assert completion_tokens == max_new  # cut at its own budget


def test_greedy_and_sampled_requests_share_a_batch_and_seeded_draws_reproduce(server, client, policy):
    model, tokenizer = policy

    def round_trip(order) -> list[str]:
        before = _batches(server)
        asks = [dict(temperature=0), dict(temperature=0.9, top_p=0.95, seed=7), dict(temperature=0),
                dict(temperature=0.9, top_p=0.95, seed=8)]
        with ThreadPoolExecutor(len(asks)) as pool:
            replies = dict(zip(order, pool.map(
                lambda i: _ask(client, server, ASKED[i][0], max_tokens=8, **asks[i]), order)))
        assert _batches(server)[len(before):] == [4]  # one batch; greedy and sampled rows drawn apart
        return [replies[i].choices[0].message.content for i in range(4)]

    # Sent in opposite orders (they arrive in either): the same set, the same draws.
    first, second = round_trip([0, 1, 2, 3]), round_trip([3, 2, 1, 0])
    assert first == second  # the same set of seeded requests: the same draws
    for i in (0, 2):
        assert first[i] == _alone(model, tokenizer, ASKED[i][0], 8)[0]

    # A seeded request alone is the decode loop's draw after torch.manual_seed(seed), every time.
    replies = [_ask(client, server, ASKED[1][0], max_tokens=10, temperature=0.8, top_p=0.9, seed=3) for _ in range(2)]
    ids = tokenizer(chat_prompt(tokenizer, ASKED[1][0]), return_tensors="pt", add_special_tokens=False)["input_ids"]
    torch.manual_seed(3)
    row = decode(model, ids, torch.ones_like(ids), max_new_tokens=10, stop_ids={tokenizer.eos_token_id},
                 choose=TopKTopPSampling(0.8, model_top_k(model), 0.9).draw)[0]
    text = tokenizer.decode(row.token_ids, skip_special_tokens=True)
    assert [r.choices[0].message.content for r in replies] == [text, text]


def test_refused_and_failed_requests_get_openai_errors_and_the_server_keeps_serving(server, client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="another-model", messages=[{"role": "user", "content": "Hi."}])
    assert e.value.body["type"] == "invalid_request_error" and "another-model" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError, match="'n' must be 1"):
        _ask(client, server, "Hi.", n=2)
    with pytest.raises(openai.BadRequestError, match="streaming is not supported"):
        _ask(client, server, "Hi.", stream=True)

    good = {"model": server.model_name, "messages": [{"role": "user", "content": "Hi."}], "max_tokens": 3}
    status, body = _post(server, json.dumps({**good, "max_tokens": "ten"}).encode())
    assert status == 400 and body["error"]["param"] == "max_tokens" and "'max_tokens' must be an integer" in \
        body["error"]["message"]
    status, body = _post(server, json.dumps({**good, "messages": "Hi."}).encode())
    assert status == 400 and body["error"]["param"] == "messages"
    status, body = _post(server, b"{not json")
    assert status == 400 and "not JSON" in body["error"]["message"]
    # A failure inside decode (this temperature turns every logit into +-inf: no distribution to
    # draw from) is a 500 for its batch.
    status, body = _post(server, json.dumps({**good, "temperature": 1e-300}).encode())
    assert status == 500 and body["error"]["type"] == "server_error" and "RuntimeError" in body["error"]["message"]

    assert server.running
    reply = _ask(client, server, "Hi.", temperature=0, max_tokens=3, response_format={"type": "json_object"},
                 frequency_penalty=None)
    assert reply.choices[0].finish_reason in ("stop", "length") and reply.usage.completion_tokens <= 3


def test_models_lists_the_served_directory_and_the_command_pins_it(server, client, model_dir):
    resolved = str(Path(model_dir).resolve())
    with urllib.request.urlopen(f"{server.base_url}/models", timeout=10) as r:
        assert json.load(r) == {"object": "list", "data": [{"id": resolved, "object": "model", "owned_by": "local",
                                                            "root": resolved}]}
    assert [m.id for m in client.models.list()] == [resolved] == [server.model_name]
    command = server.command()
    assert command[1:5] == ["-m", "phi4_assets.teacher.batched_server", resolved, "--port"]
    assert command[command.index("--max-batch") + 1] == str(len(ASKED))
