"""The PTS rollout sampler (``RolloutSampler.rollouts``) against plain, uncached references on the
tiny random model, in float32.

``rollouts`` prefills the context once per batch, repeats its KV cache to the batch size, and
drops a row from the batch when it ends (``models.decode``). What is checked:

* greedy (``top_p=0``: top-p filtering keeps only the most probable token, so the one sample
  drawn is the argmax): every rollout is, token for token, the argmax continuation of a full
  forward pass over the whole sequence at each step, and uncached ``model.generate(do_sample=False)``;
* sampling with a seed: the rollouts are exactly the rows an uncached reference samples after
  ``torch.manual_seed(seed)`` with the same batch sizes: a full forward pass over every live row's
  whole sequence at each step, one draw over the rows still decoding. The prefill draws no random
  numbers and both draw one multinomial per step over the same shape, so only the logits could
  differ, and in float32 they differ by rounding alone (a sample could flip only if a uniform draw
  fell within ~1e-6 of a bucket edge: for the fixed seeds here it does not, and the outcome is
  deterministic). Rollouts stop at the end-of-turn token, which is excluded;
* the first sampled token (the step decoded from the shared cache) follows softmax(logits / T)
  over the 50 most probable tokens, the logits from a full uncached forward pass (see
  ``test_first_tokens_follow_the_models_softmax`` for the tolerance).

The distribution is checked on the tiny model itself; greedy and seeded decoding on copies of it
that can end their turn (see the fixtures), so that stopping at the end-of-turn token is covered.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from phi4_assets.models.generation import load_policy
from phi4_assets.models.sampling import TopKTopPSampling, model_top_k
from phi4_assets.pts.sampler import Rollout, RolloutSampler

# The sampler sets no top_k, so generate() applies transformers' default (the tiny model's
# generation config sets none): only the 50 most probable tokens can be sampled.
HF_DEFAULT_TOP_K = 50


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    model, tokenizer = load_policy(str(tiny_model_dir), dtype="float32")
    return model, tokenizer


@pytest.fixture(scope="module")
def ending_policy(policy):
    """A copy of the tiny model that can end its turn. Its pad token is its end-of-turn token, so
    the random init zeroes that embedding row (``padding_idx``), which the tied output layer shares:
    the end-of-turn logit is exactly 0, never among the top 50, and no rollout would ever finish.
    A small random row instead makes it likely in some contexts and not in others."""
    model, tokenizer = policy
    model = copy.deepcopy(model)
    eos = tokenizer.eos_token_id
    weight = model.get_input_embeddings().weight
    assert weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()  # tied: one row for both
    assert not weight[eos].any()
    with torch.no_grad():
        weight[eos] = torch.randn(weight.shape[1], generator=torch.Generator().manual_seed(0)) * 0.1
    return model, tokenizer


@pytest.fixture(scope="module")
def greedy_policy(policy):
    """A copy of the tiny model with its own random output layer. The tied tiny model greedily
    repeats its last token whatever came before (that token's own embedding dominates its
    logits), so a greedy comparison on it could not tell a wrong context from the right one; with
    an untied output layer the argmax depends on the whole context (dropping or repeating a
    context token changes the continuations below). Its end-of-turn row is 8 times louder than
    the rest, so that one of them ends its turn mid-way."""
    model, tokenizer = policy
    model = copy.deepcopy(model)
    head = torch.randn(model.get_output_embeddings().weight.shape, generator=torch.Generator().manual_seed(0)) * 0.02
    head[tokenizer.eos_token_id] *= 8
    model.get_output_embeddings().weight = torch.nn.Parameter(head)
    assert head.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    return model, tokenizer


def _context(tokenizer, question: str, prefix: str = "") -> list[int]:
    ids = RolloutSampler(None, tokenizer).prompt_ids(question)
    return ids + (tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else [])


def _strip(row: list[int], eos: int) -> tuple[tuple[int, ...], bool]:
    """The continuation up to the first end-of-turn token (excluded), and whether there was one."""
    return (tuple(row[:row.index(eos)]), True) if eos in row else (tuple(row), False)


def _check_shapes(rollouts: list[Rollout], n: int, max_new: int, eos: int, vocab: int) -> None:
    assert len(rollouts) == n
    for r in rollouts:
        assert r.first_token == (r.token_ids[0] if r.token_ids else None)
        assert eos not in r.token_ids and all(0 <= t < vocab for t in r.token_ids)
        # An unfinished rollout used every slot; a finished one spent one on the end-of-turn token.
        assert len(r.token_ids) < max_new if r.finished else len(r.token_ids) == max_new


# -- greedy -------------------------------------------------------------------------------------------


def _greedy_loop(model, context: list[int], max_new: int, eos: int) -> tuple[tuple[int, ...], bool]:
    """Argmax decoding with a full forward pass over the whole sequence at every step: no cache."""
    seq = list(context)
    with torch.inference_mode():
        for _ in range(max_new):
            token = int(model(torch.tensor([seq]), use_cache=False).logits[0, -1].argmax())
            if token == eos:
                return tuple(seq[len(context):]), True
            seq.append(token)
    return tuple(seq[len(context):]), False


def test_greedy_rollouts_are_the_uncached_argmax_continuation(greedy_policy):
    model, tokenizer = greedy_policy
    eos, max_new = tokenizer.eos_token_id, 16
    sampler = RolloutSampler(model, tokenizer, temperature=0.7, top_p=0.0, max_new_tokens=max_new, batch_size=2)
    seen = []
    for prefix in ("The answer is", "Paris"):
        context = _context(tokenizer, "What is the capital of France?", prefix)
        rollouts = sampler.rollouts(context, 3, seed=0)  # batches of 2 and 1, each prefilled once
        _check_shapes(rollouts, 3, max_new, eos, model.config.vocab_size)
        expected = _greedy_loop(model, context, max_new, eos)
        ids = torch.tensor([context])
        generated = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, use_cache=False,
                                   max_new_tokens=max_new, pad_token_id=tokenizer.pad_token_id)
        assert _strip(generated[0, len(context):].tolist(), eos) == expected, prefix
        assert [(r.token_ids, r.finished) for r in rollouts] == [expected] * 3, prefix
        seen.append(expected)
    # Both ways a rollout ends are covered: the end-of-turn token (after some tokens), and the limit.
    assert [(len(tokens) > 0, finished) for tokens, finished in seen] == [(True, True), (True, False)]


def test_packed_rollouts_of_several_contexts_are_each_contexts_own_argmax_continuation(greedy_policy):
    """``rollouts_many`` left-pads contexts of different lengths into one batch: each
    context's rollouts must still be its own uncached argmax continuation (a wrong mask or position
    would let the padding or a neighbour change them), in context order, whatever the packing."""
    model, tokenizer = greedy_policy
    eos, max_new = tokenizer.eos_token_id, 16
    contexts = [_context(tokenizer, "What is the capital of France?", "Paris"),
                _context(tokenizer, "Name a colour."),
                _context(tokenizer, "What is the capital of France?", "The answer is")]
    assert len({len(c) for c in contexts}) == 3
    expected = [_greedy_loop(model, c, max_new, eos) for c in contexts]
    for batch_rows in (6, 4, 1):  # all three contexts in one call, two then one, one at a time
        sampler = RolloutSampler(model, tokenizer, temperature=0.7, top_p=0.0, max_new_tokens=max_new)
        groups = sampler.rollouts_many(contexts, 2, seed=0, batch_rows=batch_rows)
        for rollouts in groups:
            _check_shapes(rollouts, 2, max_new, eos, model.config.vocab_size)
        assert [[(r.token_ids, r.finished) for r in g] for g in groups] == [[e, e] for e in expected], batch_rows
        assert sampler.sampled_tokens == 2 * sum(len(tokens) for tokens, _ in expected)


def test_packed_seeded_rollouts_reproduce_and_stay_within_the_budget(ending_policy):
    model, tokenizer = ending_policy
    eos = tokenizer.eos_token_id
    contexts = [_context(tokenizer, "What is the capital of France?", "The capital"), _context(tokenizer, "Hi.")]
    sampler = RolloutSampler(model, tokenizer, temperature=0.7, top_p=0.95, max_new_tokens=96)
    groups = sampler.rollouts_many(contexts, 5, seed=3, max_new_tokens=10)
    assert len(groups) == 2
    for rollouts in groups:
        _check_shapes(rollouts, 5, 10, eos, model.config.vocab_size)
    assert len({r.token_ids for g in groups for r in g}) == 10  # ten different samples
    assert sampler.rollouts_many(contexts, 5, seed=3, max_new_tokens=10) == groups
    assert sampler.rollouts_many(contexts, 5, seed=4, max_new_tokens=10) != groups


# -- sampling with a seed ------------------------------------------------------------------------------


def _uncached_samples(model, tokenizer, context, batches, seed, temperature, top_p, max_new):
    """What the sampler must return, and the slots it decodes: each batch of rows decoded with a
    full forward pass over every live row's whole sequence at each step (no cache), one draw per
    step over the rows still decoding (a row leaves when it samples the end-of-turn token)."""
    choice = TopKTopPSampling(temperature, model_top_k(model), top_p)
    eos = tokenizer.eos_token_id
    torch.manual_seed(seed)
    rows, slots = [], 0
    for b in batches:
        seqs, ended, live = [list(context) for _ in range(b)], [False] * b, list(range(b))
        for _ in range(max_new):
            with torch.inference_mode():
                logits = model(torch.tensor([seqs[i] for i in live]), use_cache=False).logits[:, -1]
            still = []
            for i, token in zip(live, choice.draw(logits.float()).tolist()):
                slots += 1
                if token == eos:
                    ended[i] = True
                else:
                    seqs[i].append(token)
                    still.append(i)
            live = still
            if not live:
                break
        rows += [(tuple(seq[len(context):]), e) for seq, e in zip(seqs, ended)]
    return rows, slots


@pytest.mark.parametrize("question, prefix, mixed", [
    ("What is the capital of France?", "The capital", True),
    (None, None, False),  # a one-token context: nothing to prefill, the cache starts empty
], ids=["chat-prefix", "one-token"])
def test_seeded_rollouts_are_the_uncached_samples_of_that_seed(ending_policy, question, prefix, mixed):
    model, tokenizer = ending_policy
    eos, max_new = tokenizer.eos_token_id, 12
    context = _context(tokenizer, question, prefix) if question else [tokenizer.bos_token_id]
    sampler = RolloutSampler(model, tokenizer, temperature=0.7, top_p=0.95, batch_size=3)  # max_new_tokens 96
    rollouts = sampler.rollouts(context, 7, seed=11, max_new_tokens=max_new)  # batches of 3, 3 and 1
    _check_shapes(rollouts, 7, max_new, eos, model.config.vocab_size)

    expected, slots = _uncached_samples(model, tokenizer, context, [3, 3, 1], 11, 0.7, 0.95, max_new)
    assert [(r.token_ids, r.finished) for r in rollouts] == expected
    assert sampler.sampled_tokens == sum(len(r.token_ids) for r in rollouts) and sampler.slot_tokens == slots
    assert len({r.token_ids for r in rollouts}) == 7  # seven different samples, not one repeated
    if mixed:  # rollouts that ended their turn mid-way, and ones cut at the token limit
        assert any(r.finished and r.token_ids for r in rollouts) and any(not r.finished for r in rollouts)

    assert sampler.rollouts(context, 7, seed=11, max_new_tokens=max_new) == rollouts  # the seed reproduces
    assert sampler.rollouts(context, 7, seed=12, max_new_tokens=max_new) != rollouts


# -- the sampled distribution ------------------------------------------------------------------------


def _chi2_critical(df: int, z: float) -> float:
    """The upper quantile of chi-square with ``df`` degrees of freedom at the standard normal
    quantile ``z`` (Wilson-Hilferty; within 1% of the exact value for df near 50)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def test_first_tokens_follow_the_models_softmax(policy):
    """1000 one-token rollouts at T=0.2 against softmax(logits / 0.2) over the top 50 logits of a
    full forward pass. The tiny model's logits are flat (the top 50 span ~0.4), so a low
    temperature gives the frequencies a shape to check.

    Tolerances, for a correct sampler: every token is one of the 50 (tokens outside have
    probability exactly 0); Pearson's X^2 over the 50 tokens (every expected count >= 5) follows
    chi-square(49), and the bound is its 1 - 1e-4 quantile (~94.8); the mean logit of the sampled
    tokens is within 4.5 standard errors of its expectation (a normal tail of 7e-6). So a correct
    sampler fails for about 1 seed in 10^4; the seed is fixed, so the outcome is deterministic.
    Power, computed for these logits: sampling at T=1 gives X^2 ~ 160 and z ~ -10, uniformly over
    the 50 gives X^2 ~ 190, at T=0.16 z ~ 5.8 (T=0.25, z ~ -3.6, is not reliably caught); no
    top-50 truncation fails the support check."""
    model, tokenizer = policy
    temperature, n = 0.2, 1000
    assert model.generation_config.top_k is None  # generate() falls back to HF_DEFAULT_TOP_K
    context = _context(tokenizer, "What is the capital of France?", "The capital")
    with torch.inference_mode():
        logits = model(torch.tensor([context]), use_cache=False).logits[0, -1].double()
    top = logits.topk(HF_DEFAULT_TOP_K)
    q = (top.values / temperature).softmax(-1)
    index = {int(t): i for i, t in enumerate(top.indices)}

    sampler = RolloutSampler(model, tokenizer, temperature=temperature, top_p=1.0, max_new_tokens=1, batch_size=500)
    rollouts = sampler.rollouts(context, n, seed=0)
    assert len(rollouts) == n and all(len(r.token_ids) == 1 and not r.finished for r in rollouts)
    outside = [r.first_token for r in rollouts if r.first_token not in index]
    assert outside == [], f"{len(outside)} samples outside the top {HF_DEFAULT_TOP_K}"

    counts = torch.zeros(HF_DEFAULT_TOP_K, dtype=torch.float64)
    for r in rollouts:
        counts[index[r.first_token]] += 1
    expected = n * q
    assert float(expected.min()) >= 5  # the chi-square approximation holds
    x2 = float(((counts - expected) ** 2 / expected).sum())
    assert x2 < _chi2_critical(HF_DEFAULT_TOP_K - 1, 3.719), x2  # z of the 1 - 1e-4 quantile

    mean = float((q * top.values).sum())
    sd = math.sqrt(float((q * (top.values - mean) ** 2).sum()))
    sampled_mean = float((counts * top.values).sum()) / n
    z = (sampled_mean - mean) / (sd / math.sqrt(n))
    assert abs(z) < 4.5, z


# -- per-context budgets and scored responses ------------------------------------------------------


def test_packed_rollouts_stop_at_each_contexts_own_budget(greedy_policy):
    """One budget per context (PTS prefixes of different lengths in one batch): each context's
    rollouts are its own argmax continuation cut at its own budget, not the batch's."""
    model, tokenizer = greedy_policy
    eos = tokenizer.eos_token_id
    contexts = [_context(tokenizer, "What is the capital of France?", "Paris"), _context(tokenizer, "Name a colour."),
                _context(tokenizer, "What is the capital of France?", "The answer is")]
    budgets = [3, 16, 7]
    sampler = RolloutSampler(model, tokenizer, temperature=0.7, top_p=0.0, max_new_tokens=96)
    groups = sampler.rollouts_many(contexts, 2, seed=0, max_new_tokens=budgets)
    expected = [_greedy_loop(model, c, b, eos) for c, b in zip(contexts, budgets)]
    assert [[(r.token_ids, r.finished) for r in g] for g in groups] == [[e, e] for e in expected]
    assert [len(t) for t, _ in expected][0] == 3 and not expected[0][1]  # the first was cut at its budget of 3
    assert any(len(t) > 7 for t, _ in expected)  # and another ran past it: the budgets are per context
    with pytest.raises(ValueError, match="2 token budgets for 3 contexts"):
        sampler.rollouts_many(contexts, 2, seed=0, max_new_tokens=[3, 4])


def test_responses_carry_the_log_probabilities_of_the_sampling_distribution(ending_policy):
    """``responses`` samples one response per context in one batch; each token's log-probability
    is log softmax(logits / T) over the top 50 of a full uncached forward pass at that position
    (what ``compute_transition_scores(normalize_logits=True)`` gives for transformers' sampling)."""
    model, tokenizer = ending_policy
    temperature = 0.7
    contexts = [_context(tokenizer, "What is the capital of France?", "The capital"), _context(tokenizer, "Hi.")]
    sampler = RolloutSampler(model, tokenizer, temperature=temperature, top_p=1.0, max_new_tokens=12)
    responses = sampler.responses(contexts, seed=5)
    assert len(responses) == 2 and sampler.responses(contexts, seed=5) == responses
    for context, response in zip(contexts, responses):
        assert 0 < len(response.token_ids) <= 12 and len(response.logprobs) == len(response.token_ids)
        with torch.inference_mode():
            logits = model(torch.tensor([context + list(response.token_ids)]), use_cache=False).logits[0].float()
        for i, (token, logprob) in enumerate(zip(response.token_ids, response.logprobs)):
            values, ids = (logits[len(context) + i - 1] / temperature).topk(HF_DEFAULT_TOP_K)
            assert token in ids.tolist()
            expected = float(values.log_softmax(-1)[ids.tolist().index(token)])
            assert logprob == pytest.approx(expected, abs=1e-4), (i, token)


def test_distinct_responses_leave_out_a_problems_repeated_response():
    from phi4_assets.pts.sampler import SampledResponse, distinct_responses

    a, b, c = (SampledResponse(ids, (-1.0,) * len(ids)) for ids in ((1, 2), (1, 3), (7,)))
    # three responses a context, two contexts: context 0 repeats a, context 1 samples a too (kept)
    assert distinct_responses([a, b, a, a, c, c], 3) == [(0, a), (0, b), (1, a), (1, c)]
    assert distinct_responses([a, a], 1) == [(0, a), (1, a)]
