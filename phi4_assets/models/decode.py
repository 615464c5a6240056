"""A decode loop that drops the rows that have ended: greedy or sampled, from left-padded batches.

``generate()`` keeps every row of a batch in every step until the longest row ends, so a batch
whose answers are mostly short (a trained model's "I don't know" beside one long answer) pays
the full batch's step cost for every token of its longest row. On a CPU a step's cost grows with
its rows (SmolLM2-135M, 2 threads, context 80: 212 ms for 64 rows, 107 for 32, 70 for 16, 53
for 8; ``bench/decode_shrink.py --step-costs``), so a row that has ended is dropped from the batch and from its KV cache
(``DynamicCache.batch_select_indices``), and the steps after it run on the rows still decoding.
transformers' continuous batching (``generate_batch``), which also frees finished rows, measured
0.48x the padded batches on these CPUs (BENCHMARKS.md); ``bench/decode_shrink.py`` measures this
loop against ``generate()``.

What the loop computes is ``generate()``'s: the prompt is prefilled once (only the last
position's logits are computed), positions follow the attention mask (left padding), each step
feeds the last token; greedy takes the argmax, sampling draws through
``sampling.TopKTopPSampling`` (transformers' distribution). A row ends at a stop token (not kept
in its output) or at its token budget: ``max_new_tokens``, one for the batch or one per prompt
(PTS samples from prefixes of different lengths in one batch, each with the budget its prefix
leaves). A ``choose`` that also returns each drawn token's log-probability
(``TopKTopPSampling.draw_scored``) has them kept per row: ``generate()``'s
``compute_transition_scores`` of the sampled tokens, without keeping every step's scores.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Decoded:
    token_ids: list[int]  # the new tokens, the stop token excluded
    finished: bool  # ended with a stop token (not cut at its token budget)
    logprobs: tuple[float, ...] = ()  # of each new token, where ``choose`` scores its draws


def stop_ids(model, tokenizer) -> set[int]:
    """The tokens that end a row: the tokenizer's end-of-turn and the generation config's."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    stops = {tokenizer.eos_token_id} | set(configured if isinstance(configured, list) else [configured])
    stops.discard(None)
    return stops


def greedy_choice(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=-1)


def prefill(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache, cached: int = 0):
    """Feed a left-padded batch's prompts after the ``cached`` positions the cache already holds;
    (the last position's logits, every position's id: each row's own count of unmasked tokens)."""
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids[:, cached:], attention_mask=attention_mask, position_ids=positions[:, cached:],
                   past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
    return logits, positions


def next_logits(model, tokens: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor, cache):
    """One decode step: each row's new token (rows,) fed at its position; the next logits."""
    return model(input_ids=tokens[:, None], attention_mask=attention_mask, position_ids=positions,
                 past_key_values=cache, use_cache=True).logits[:, -1]


@torch.inference_mode()
def decode(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, max_new_tokens: int | Sequence[int],
           stop_ids: Collection[int], choose: Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, torch.Tensor]]
           = greedy_choice, past_key_values=None, repeats: int = 1) -> list[Decoded]:
    """Decode every row of a left-padded batch until it stops; one ``Decoded`` per row, in order.

    ``repeats``: each prompt row is decoded that many times (k samples of a prompt), rows
    ``i * repeats ... (i + 1) * repeats - 1`` of the result; the prompt is prefilled once and its
    KV cache repeated, where ``generate()`` on repeated rows prefills every copy.

    ``max_new_tokens``: the most new tokens of every row, or a list of one per prompt row.

    ``choose`` maps the last position's logits (rows, vocab) to one token per row (default: the
    argmax; ``sampling.TopKTopPSampling.draw`` samples), or to (tokens, their log-probabilities)
    (``draw_scored``), which each ``Decoded`` then carries. ``past_key_values``: a cache already
    holding the first positions of every row (all rows alike, e.g. a shared context repeated);
    only the positions after it are fed.
    """
    from transformers import DynamicCache

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    prompts = input_ids.shape[0]
    budgets = [int(max_new_tokens)] * prompts if isinstance(max_new_tokens, int) else [int(b) for b in max_new_tokens]
    if len(budgets) != prompts:
        raise ValueError(f"{len(budgets)} token budgets for {prompts} prompt rows")
    budgets = [b for b in budgets for _ in range(repeats)]
    rows = prompts * repeats
    out: list[list[int]] = [[] for _ in range(rows)]
    scores: list[list[float]] = [[] for _ in range(rows)]
    finished = [False] * rows
    live = [r for r in range(rows) if budgets[r] > 0]  # batch row -> original row
    if not live:
        return [Decoded(t, f) for t, f in zip(out, finished)]
    stops = set(stop_ids)
    cache = past_key_values if past_key_values is not None else DynamicCache()
    cached = cache.get_seq_length()
    mask = attention_mask
    logits, positions = prefill(model, input_ids, mask, cache, cached)
    if repeats > 1:
        cache.batch_repeat_interleave(repeats)
        logits, mask, positions = (t.repeat_interleave(repeats, dim=0) for t in (logits, mask, positions))
    next_position = positions[:, -1:] + 1
    if len(live) < rows:  # rows with no budget: never decoded
        index = torch.tensor(live, device=logits.device)
        cache.batch_select_indices(index)
        logits, mask, next_position = logits[index], mask[index], next_position[index]
    while True:
        chosen = choose(logits.float())
        tokens, logprobs = chosen if isinstance(chosen, tuple) else (chosen, None)
        drawn_scores = logprobs.tolist() if logprobs is not None else None
        keep: list[int] = []
        for j, token in enumerate(tokens.tolist()):
            row = live[j]
            if token in stops:
                finished[row] = True
                continue
            out[row].append(token)
            if drawn_scores is not None:
                scores[row].append(drawn_scores[j])
            if len(out[row]) < budgets[row]:
                keep.append(j)
        if not keep:
            break
        if len(keep) < len(live):
            index = torch.tensor(keep, device=tokens.device)
            cache.batch_select_indices(index)
            mask, next_position, tokens = mask[index], next_position[index], tokens[index]
            live = [live[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones(len(live), 1)], dim=-1)
        logits = next_logits(model, tokens, mask, next_position, cache)
        next_position = next_position + 1
    return [Decoded(t, f, tuple(c)) for t, f, c in zip(out, finished, scores)]
