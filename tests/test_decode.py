"""``models.decode.decode``: left-padded batches decoded with ended rows dropped, against
``generate()`` on each prompt alone, on the tiny random model in float32 (where batching does not
change the arithmetic's outcome)."""

from __future__ import annotations


import pytest
import torch
from transformers import DynamicCache

from phi4_assets.models.decode import decode, stop_ids
from phi4_assets.models.generation import chat_prompt

QUESTIONS = ["Hi.", "What is the capital of France?", "Name three colours of the rainbow, please.", "Why not?"]


@pytest.fixture(scope="module")
def policy(stopping_policy):
    """The tiny model that ends some turns (``conftest.stopping_policy``)."""
    return stopping_policy


def _alone(model, tokenizer, prompt: str, max_new: int) -> tuple[list[int], bool]:
    """``generate()``'s greedy continuation of one prompt without padding, end-of-turn excluded."""
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new,
                         pad_token_id=tokenizer.pad_token_id)[0, ids.shape[1]:].tolist()
    eos = tokenizer.eos_token_id
    return (out[:out.index(eos)], True) if eos in out else (out, False)


def _fed_shapes(model):
    """Records the (rows, positions) of the input ids of every forward call."""
    shapes: list[tuple[int, int]] = []
    handle = model.register_forward_pre_hook(
        lambda _m, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    return shapes, handle


def test_each_row_is_its_prompts_own_greedy_continuation_and_leaves_when_it_ends(policy):
    model, tokenizer = policy
    prompts = [chat_prompt(tokenizer, q) for q in QUESTIONS]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert len(set(enc["attention_mask"].sum(-1).tolist())) == len(prompts)  # left padding in every row but one
    max_new = 12
    shapes, handle = _fed_shapes(model)
    try:
        rows = decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=max_new,
                      stop_ids=stop_ids(model, tokenizer))
    finally:
        handle.remove()
    sizes = [r for r, _ in shapes]
    expected = [_alone(model, tokenizer, p, max_new) for p in prompts]
    assert [(r.token_ids, r.finished) for r in rows] == expected
    finished = [len(t) for t, f in expected if f]
    assert finished and len(finished) < len(prompts)  # some rows ended early, some ran to the limit
    # One prefill of every row, then one step per new token with the rows still decoding: a row
    # that ended at step s (its end-of-turn token drawn there) is in no step after it.
    steps = [sum(1 for t, f in expected if not (f and len(t) < s)) for s in range(1, max_new)]
    assert sizes == [len(prompts)] + steps
    assert steps[-1] < len(prompts)


def test_repeats_prefill_each_prompt_once(policy):
    model, tokenizer = policy
    prompts = [chat_prompt(tokenizer, q) for q in QUESTIONS[:2]]
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    shapes, handle = _fed_shapes(model)
    try:
        rows = decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=6,
                      stop_ids={tokenizer.eos_token_id}, repeats=3)
    finally:
        handle.remove()
    sizes = [r for r, _ in shapes]
    single = decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=6,
                    stop_ids={tokenizer.eos_token_id})
    assert rows == [single[0]] * 3 + [single[1]] * 3  # greedy: every copy alike, in prompt order
    assert sizes[0] == 2 and sizes[1] == 6  # the prompts prefilled once, then six rows decode


def test_a_cached_prefix_is_not_fed_again(policy):
    model, tokenizer = policy
    ids = tokenizer(chat_prompt(tokenizer, QUESTIONS[1]), return_tensors="pt", add_special_tokens=False)["input_ids"]
    cache = DynamicCache()
    with torch.inference_mode():
        model(ids[:, :-3], past_key_values=cache, use_cache=True)
    shapes, handle = _fed_shapes(model)
    try:
        rows = decode(model, ids, torch.ones_like(ids), max_new_tokens=5, stop_ids=set(), past_key_values=cache)
    finally:
        handle.remove()
    assert shapes[0] == (1, 3)  # only the positions after the cached ones
    assert [(r.token_ids, r.finished) for r in rows] == [_alone(model, tokenizer, chat_prompt(tokenizer, QUESTIONS[1]),
                                                                5)]


def test_no_budget_or_no_rows_decodes_nothing_and_bad_repeats_are_refused(policy):
    model, tokenizer = policy
    enc = tokenizer([chat_prompt(tokenizer, "Hi.")], return_tensors="pt", add_special_tokens=False)
    rows = decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=0, stop_ids={0}, repeats=2)
    assert [(r.token_ids, r.finished) for r in rows] == [([], False)] * 2
    assert decode(model, enc["input_ids"][:0], enc["attention_mask"][:0], max_new_tokens=4, stop_ids={0}) == []
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=4, stop_ids={0}, repeats=0)
