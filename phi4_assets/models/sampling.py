"""Temperature + top-k + top-p sampling for ``generate()`` that costs a top-k, not a sort of the
vocabulary.

transformers' sampling path sorts every row's whole vocabulary for top-p and draws with
``torch.multinomial`` over the whole vocabulary: on a CPU, for 64 rows of SmolLM2's 49,152
tokens, about 260 ms and 70-80 ms a step (one thread) beside a forward pass of about 200 ms. Its
top-k warper (50 by default) has already left at most 50 candidates by then, so the sort and the
draw can run over those 50: ``TopKTopPSampling`` is a logits processor that scales by the
temperature, keeps the top k, applies the top-p rule over them, draws one of them with the
global torch generator (so ``torch.manual_seed`` reproduces it), and returns scores that are 0
at the drawn token and -inf elsewhere; ``generate()`` runs greedy (``do_sample=False``), so its
argmax takes exactly the drawn token. The distribution is transformers' own (temperature, then
top-k, then top-p with the same rule; ``tests/test_sampling.py`` compares them).

The pipeline's own decode loop (``decode.decode``) calls ``draw`` directly (one token id per row);
as a logits processor it serves ``generate()`` (``sampling_kwargs``; the benchmarks compare the
two), where greedy ``generate()`` returns one sequence per input row, so a caller wanting k
samples of a prompt repeats its rows k times (``repeat_rows``). Scores returned by ``generate()`` with this
processor are the one-hot ones: a caller that needs the log-probability of what was sampled
calls ``draw_scored`` from the decode loop (``RolloutSampler.responses``).
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor, LogitsProcessorList

DEFAULT_TOP_K = 50  # transformers' default where the model's generation config sets none


class TopKTopPSampling(LogitsProcessor):
    def __init__(self, temperature: float, top_k: int = DEFAULT_TOP_K, top_p: float = 1.0):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 to sample, got {temperature}")
        if not 0 <= top_p <= 1:
            raise ValueError(f"top_p must be in [0, 1] (0: the most probable token only), got {top_p}")
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p

    def candidates(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(token ids, probabilities) of each row's candidates, most probable first: the top k of
        ``scores / temperature``, renormalized, with the top-p rule applied (a candidate is dropped
        where the candidates above it already hold ``top_p`` of the mass; the first is always kept)."""
        k = min(self.top_k, scores.shape[-1]) if self.top_k else scores.shape[-1]
        values, ids = (scores.float() / self.temperature).topk(k, dim=-1)
        probs = values.softmax(dim=-1)
        if self.top_p < 1.0:
            drop = probs.cumsum(dim=-1) - probs >= self.top_p
            drop[..., 0] = False
            probs = probs.masked_fill(drop, 0.0)
            probs = probs / probs.sum(dim=-1, keepdim=True)
        return ids, probs

    def draw(self, scores: torch.Tensor) -> torch.Tensor:
        """One token id per row, drawn from its candidates with the global torch generator."""
        return self.draw_scored(scores)[0]

    def draw_scored(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``draw``'s token ids and the log-probability of each under the sampling distribution
        (temperature, top-k, top-p: what ``generate()``'s ``compute_transition_scores`` gives with
        ``normalize_logits=True``)."""
        ids, probs = self.candidates(scores)
        picked = torch.multinomial(probs, 1)
        return ids.gather(-1, picked).squeeze(-1), probs.gather(-1, picked).squeeze(-1).log()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        drawn = self.draw(scores)[:, None]
        return torch.full_like(scores, float("-inf")).scatter_(-1, drawn, 0.0)


def model_top_k(model) -> int:
    """The top-k transformers' sampling would use for ``model``: its generation config's, else 50."""
    top_k = getattr(getattr(model, "generation_config", None), "top_k", None)
    return DEFAULT_TOP_K if top_k is None else top_k


def sampling_kwargs(model, temperature: float, top_p: float = 1.0) -> dict:
    """``generate()`` keyword arguments that sample through ``TopKTopPSampling`` with the model's
    top-k (one sequence per input row: repeat the rows for several samples)."""
    return {"do_sample": False, "num_beams": 1,
            "logits_processor": LogitsProcessorList([TopKTopPSampling(temperature, model_top_k(model), top_p)])}


def repeat_rows(tensor: torch.Tensor, k: int) -> torch.Tensor:
    """Each row ``k`` times in a row (what ``num_return_sequences=k`` does to the inputs)."""
    return tensor.repeat_interleave(k, dim=0)
