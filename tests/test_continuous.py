"""``models.continuous.RunningBatch``: rows that join a running batch between steps and leave it
when they end, each row still its prompt's own greedy continuation (``generate()`` on the prompt
alone), on the tiny random model in float32 (where padding and batching do not change the
outcome)."""

from __future__ import annotations


import pytest
import torch

from phi4_assets.models.continuous import RunningBatch
from phi4_assets.models.decode import stop_ids
from phi4_assets.models.generation import chat_prompt
from phi4_assets.models.sampling import TopKTopPSampling

QUESTIONS = ["Hi.", "What is the capital of France?", "Name three colours of the rainbow, please.", "Why not?",
             "Tell me a story about a very small dragon who lived in a teapot."]


@pytest.fixture(scope="module")
def policy(stopping_policy):
    """The tiny model that ends some turns (``conftest.stopping_policy``)."""
    return stopping_policy


def _ids(tokenizer, question: str) -> list[int]:
    return tokenizer(chat_prompt(tokenizer, question), add_special_tokens=False)["input_ids"]


def _alone(model, tokenizer, ids: list[int], max_new: int) -> tuple[list[int], bool]:
    prompt = torch.tensor([ids])
    out = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=max_new,
                         pad_token_id=tokenizer.pad_token_id)[0, len(ids):].tolist()
    eos = tokenizer.eos_token_id
    return (out[:out.index(eos)], True) if eos in out else (out, False)


def test_rows_joining_between_steps_are_each_their_prompts_own_continuation(policy):
    model, tokenizer = policy
    prompts = [_ids(tokenizer, q) for q in QUESTIONS]
    budgets = [14, 9, 12, 10, 6]
    expected = {i: _alone(model, tokenizer, p, b) for i, (p, b) in enumerate(zip(prompts, budgets))}
    assert len({len(p) for p in prompts}) == len(prompts)
    batch = RunningBatch(model, stop_ids(model, tokenizer), pad_token_id=tokenizer.pad_token_id)
    # Two rows start; a longer prompt joins after 3 steps, two shorter ones after 5.
    joins = {0: [0, 1], 3: [4], 5: [2, 3]}
    ended, sizes, lengths, step = {}, [], [], 0
    while step in joins or len(batch):
        if step in joins:
            assert batch.join([prompts[i] for i in joins[step]], [budgets[i] for i in joins[step]], joins[step]) == []
        sizes.append(len(batch))
        lengths.append(batch.mask.shape[1])
        for row in batch.step():
            ended[row.tag] = (row.token_ids, row.finished, step)
        step += 1
    assert {i: (t, f) for i, (t, f, _) in ended.items()} == expected
    assert any(f for _, f, _ in ended.values()) and not all(f for _, f, _ in ended.values())
    # Rows were answered as they ended, not when the batch drained.
    assert len({s for _, _, s in ended.values()}) > 1
    # Each row is in the batch from the step it joined to the step it ended, and in no other.
    joined = {i: at for at, rows in joins.items() for i in rows}
    assert sizes == [sum(joined[i] <= s <= ended[i][2] for i in ended) for s in range(len(sizes))]
    assert sizes[:4] == [2, 2, 2, 3]
    # The batch is never longer than its longest live row: padding left by rows that left is cut.
    assert lengths[-1] <= max(len(prompts[i]) + budgets[i] for i in ended)
    assert not len(batch) and batch.cache is None


def test_a_row_without_budget_ends_at_once_and_choosers_are_per_row(policy):
    model, tokenizer = policy
    prompts = [_ids(tokenizer, q) for q in QUESTIONS[:3]]
    batch = RunningBatch(model, stop_ids(model, tokenizer), pad_token_id=tokenizer.pad_token_id)
    sampled = TopKTopPSampling(0.9, 50, 1.0).draw
    torch.manual_seed(0)
    done = batch.join(prompts, [8, 0, 8], ["greedy", "none", "sampled"], choosers=[lambda logits: logits.argmax(-1), sampled, sampled])
    assert [r.tag for r in done] == ["none"] and not done[0].token_ids and len(batch) == 2
    ended = {}
    while len(batch):
        for row in batch.step():
            ended[row.tag] = row.token_ids
    # The greedy row is its prompt's own greedy continuation beside a sampled one, which differs.
    assert ended["greedy"] == _alone(model, tokenizer, prompts[0], 8)[0]
    assert ended["sampled"] != _alone(model, tokenizer, prompts[2], 8)[0]
