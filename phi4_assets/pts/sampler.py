"""Sampling the policy for PTS: one response with its token log-probabilities, and batches of
rollouts from a context prefilled once and its KV cache repeated (``models.decode``).

Contexts are token ids end to end (question chat-formatted once, prefixes as the response's own
ids), never re-tokenized from decoded text, so token boundaries cannot shift.

Rollouts sample through ``models.sampling.TopKTopPSampling`` (transformers' distribution, without
its sort of the whole vocabulary every step). The responses the search reads are sampled the same
way, several problems per batch (``responses``), with each token's log-probability under that
distribution (``draw_scored``); ``sample_response`` samples one through transformers' own path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.decode import Decoded, decode, stop_ids
from ..models.sampling import TopKTopPSampling, model_top_k


@dataclass(frozen=True)
class Rollout:
    token_ids: tuple[int, ...]  # the sampled continuation, end-of-turn excluded
    first_token: int | None
    finished: bool


@dataclass(frozen=True)
class SampledResponse:
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]  # of each sampled token under the sampling distribution


def distinct_responses(sampled: list[SampledResponse], k: int) -> list[tuple[int, SampledResponse]]:
    """(context index, response) for the distinct responses among each context's ``k``, which
    follow one another in ``sampled``; a response identical to an earlier one of its context is
    left out (it would be searched again for the same pivots)."""
    out, seen = [], set()
    for j, response in enumerate(sampled):
        if (j // k, response.token_ids) not in seen:
            seen.add((j // k, response.token_ids))
            out.append((j // k, response))
    return out


def chat_prompt_ids(tokenizer, question: str) -> list[int]:
    """The question chat-formatted once, as token ids, generation prompt included (every
    sampler's ``prompt_ids``)."""
    ids = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                        tokenize=True, return_dict=False)
    return list(ids["input_ids"] if isinstance(ids, dict) else ids)


class RolloutSampler:
    def __init__(self, model, tokenizer, temperature: float = 0.7, top_p: float = 1.0, max_new_tokens: int = 96,
                 batch_size: int = 16):
        self.model = model
        self.tokenizer = tokenizer
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.eos = tokenizer.eos_token_id
        self.sampled_tokens = 0  # continuation tokens generated (for throughput reports)
        self.slot_tokens = 0  # batch slots decoded, finished rows included
        self.stops = stop_ids(model, tokenizer)
        self.choice = TopKTopPSampling(temperature, model_top_k(model), top_p)

    @property
    def params(self) -> dict:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens}

    def prompt_ids(self, question: str) -> list[int]:
        return chat_prompt_ids(self.tokenizer, question)

    def _strip(self, row: list[int]) -> tuple[tuple[int, ...], bool]:
        for i, t in enumerate(row):
            if t == self.eos or t == self.tokenizer.pad_token_id and i > 0 and row[i - 1] == self.eos:
                return tuple(row[:i]), True
        return tuple(row), False

    @torch.inference_mode()
    def sample_response(self, context: list[int], seed: int) -> SampledResponse:
        torch.manual_seed(seed)
        ids = torch.tensor([context], device=self.model.device)
        out = self.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                  temperature=self.temperature, top_p=self.top_p, max_new_tokens=self.max_new_tokens,
                                  pad_token_id=self.tokenizer.pad_token_id, output_scores=True,
                                  return_dict_in_generate=True)
        scores = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)[0]
        new = out.sequences[0, len(context):].tolist()
        tokens, _ = self._strip(new)
        return SampledResponse(tokens, tuple(float(s) for s in scores[:len(tokens)]))

    def _rollout(self, row: Decoded) -> Rollout:
        self.sampled_tokens += len(row.token_ids)
        self.slot_tokens += len(row.token_ids) + row.finished  # the steps the row was in its batch
        tokens = tuple(row.token_ids)
        return Rollout(tokens, tokens[0] if tokens else None, row.finished)

    @torch.inference_mode()
    def rollouts(self, context: list[int], n: int, seed: int, max_new_tokens: int | None = None) -> list[Rollout]:
        """``n`` sampled continuations of ``context`` of at most ``max_new_tokens`` (default: the
        sampler's), ``batch_size`` rows at a time; the context is prefilled once per batch and its KV
        cache repeated (``models.decode``)."""
        max_new = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        torch.manual_seed(seed)
        ctx = torch.tensor([context], device=self.model.device)
        out: list[Rollout] = []
        while len(out) < n:
            b = min(self.batch_size, n - len(out))
            rows = decode(self.model, ctx, torch.ones_like(ctx), max_new_tokens=max_new, stop_ids=self.stops,
                          choose=self.choice.draw, repeats=b)
            out.extend(self._rollout(row) for row in rows)
        return out

    def _padded(self, contexts: list[list[int]]):
        return self.tokenizer.pad({"input_ids": [list(c) for c in contexts]}, padding_side="left",
                                  return_tensors="pt").to(self.model.device)

    @torch.inference_mode()
    def rollouts_many(self, contexts: list[list[int]], n: int, seed: int,
                      max_new_tokens: int | list[int] | None = None, batch_rows: int = 64,
                      logger=None) -> list[list[Rollout]]:
        """``n`` sampled continuations of each of ``contexts`` (different questions or prefixes:
        no shared prefix to cache), several contexts per batch: ``batch_rows // n`` of them (at
        least one), left-padded, each prefilled once, seeded ``seed * 1_000_003 + batch index``.
        ``max_new_tokens``: one budget for all, or one per context. A batch of 12 rows is
        overhead-bound on a CPU and one of 64 is not (``bench/sampling_batch.py``)."""
        budgets = self._budgets(contexts, max_new_tokens)
        per_call = max(1, batch_rows // n)
        out: list[list[Rollout]] = []
        for b, start in enumerate(range(0, len(contexts), per_call)):
            batch = contexts[start:start + per_call]
            enc = self._padded(batch)
            torch.manual_seed(seed * 1_000_003 + b)
            rows = decode(self.model, enc["input_ids"], enc["attention_mask"],
                          max_new_tokens=budgets[start:start + per_call], stop_ids=self.stops,
                          choose=self.choice.draw, repeats=n)
            out.extend([self._rollout(row) for row in rows[i * n:(i + 1) * n]] for i in range(len(batch)))
            if logger is not None:
                logger.info(f"rollouts: {len(out)}/{len(contexts)} contexts x {n}, {self.sampled_tokens} tokens sampled")
        return out

    @torch.inference_mode()
    def responses(self, contexts: list[list[int]], seed: int, batch_rows: int = 64) -> list[SampledResponse]:
        """One sampled response of each context with its tokens' log-probabilities under the
        sampling distribution, ``batch_rows`` contexts a batch, seeded ``seed * 1_000_003 + batch
        index``; what ``sample_response`` returns for one, without its per-step vocabulary scores."""
        out: list[SampledResponse] = []
        for b, start in enumerate(range(0, len(contexts), batch_rows)):
            enc = self._padded(contexts[start:start + batch_rows])
            torch.manual_seed(seed * 1_000_003 + b)
            for row in decode(self.model, enc["input_ids"], enc["attention_mask"], max_new_tokens=self.max_new_tokens,
                              stop_ids=self.stops, choose=self.choice.draw_scored):
                self.sampled_tokens += len(row.token_ids)
                self.slot_tokens += len(row.token_ids) + row.finished
                out.append(SampledResponse(tuple(row.token_ids), row.logprobs))
        return out

    def _budgets(self, contexts: list[list[int]], max_new_tokens: int | list[int] | None) -> list[int]:
        if max_new_tokens is None or isinstance(max_new_tokens, int):
            return [self.max_new_tokens if max_new_tokens is None else max_new_tokens] * len(contexts)
        if len(max_new_tokens) != len(contexts):
            raise ValueError(f"{len(max_new_tokens)} token budgets for {len(contexts)} contexts")
        return list(max_new_tokens)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)
