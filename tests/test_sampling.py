"""``models.sampling.TopKTopPSampling``: transformers' sampling distribution (temperature, top-k,
top-p) drawn over the top k instead of the whole vocabulary."""

import pytest
import torch
from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from phi4_assets.models.sampling import TopKTopPSampling, repeat_rows


def _transformers_probs(scores: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    warped = TopKLogitsWarper(top_k)(None, TemperatureLogitsWarper(temperature)(None, scores.clone()))
    if top_p < 1.0:
        warped = TopPLogitsWarper(top_p)(None, warped)
    return warped.softmax(dim=-1)


@pytest.mark.parametrize("temperature, top_k, top_p", [(0.8, 50, 0.95), (0.7, 50, 1.0), (0.2, 50, 0.5),
                                                       (1.0, 5, 0.9)])
def test_the_candidates_carry_transformers_own_probabilities(temperature, top_k, top_p):
    """Over 16 rows of random logits on a 2,000-token vocabulary: every token's probability is the
    one transformers' warpers give it (the same support, the same values to float rounding)."""
    scores = torch.randn(16, 2000, generator=torch.Generator().manual_seed(0)) * 3
    ids, probs = TopKTopPSampling(temperature, top_k, top_p).candidates(scores)
    ours = torch.zeros(16, 2000).scatter_(-1, ids, probs)
    expected = _transformers_probs(scores, temperature, top_k, top_p)
    assert torch.equal(ours > 0, expected > 0)
    assert torch.allclose(ours, expected, atol=1e-6)
    if top_p < 1.0:  # the rule did cut something (else this case would test top-k alone)
        assert int((expected > 0).sum()) < 16 * top_k


def test_top_p_zero_keeps_the_most_probable_token_only():
    scores = torch.tensor([[0.1, 2.0, 1.9, -1.0]])
    ids, probs = TopKTopPSampling(0.7, 50, 0.0).candidates(scores)
    assert ids[0, 0] == 1 and probs[0].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_it_draws_one_candidate_per_row_and_the_seed_reproduces_it():
    """The returned scores are 0 at one token and -inf elsewhere (greedy generate() takes that
    token), the token is always one with probability > 0, and over 4,000 draws from two
    candidates of 0.75 / 0.25 the frequencies are within 4 standard errors (~0.027)."""
    sampler = TopKTopPSampling(1.0, 50, 1.0)
    scores = torch.full((4000, 6), float("-inf"))
    scores[:, 2], scores[:, 4] = torch.log(torch.tensor(0.75)), torch.log(torch.tensor(0.25))
    torch.manual_seed(7)
    out = sampler(None, scores)
    assert torch.equal((out == 0).sum(dim=-1), torch.ones(4000, dtype=torch.long))
    assert torch.isinf(out).sum() == 4000 * 5
    drawn = out.argmax(dim=-1)
    assert set(drawn.tolist()) == {2, 4}
    assert abs((drawn == 2).float().mean().item() - 0.75) < 4 * (0.75 * 0.25 / 4000) ** 0.5
    torch.manual_seed(7)
    assert torch.equal(sampler(None, scores).argmax(dim=-1), drawn)


def test_bad_settings_are_refused_and_rows_repeat_in_place():
    with pytest.raises(ValueError, match="temperature"):
        TopKTopPSampling(0.0)
    with pytest.raises(ValueError, match="top_p"):
        TopKTopPSampling(0.7, top_p=1.5)
    assert repeat_rows(torch.tensor([[1, 2], [3, 4]]), 2).tolist() == [[1, 2], [1, 2], [3, 4], [3, 4]]
