"""Sampling the policy in-process: many chat prompts, several samples each, in batches.

Left-padded batches of ``batch_rows // k`` prompts, each prompt prefilled once and sampled k
times (``decode.decode``: a row leaves the batch when it ends) through
``sampling.TopKTopPSampling`` (transformers' distribution without its sort of the vocabulary);
about ``batch_rows`` sequences decode together whatever k is (``bench/sampling_batch.py``: a
call of 8 rows is overhead-bound on a CPU, 64 is not), on the profile's ``device`` (``auto``: a
GPU where one is visible), bf16 on a GPU or a CPU with native bf16, fp32 otherwise. Seeded per
batch, so a re-run on the same device reproduces.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core.hardware import preferred_dtype_name, resolve_device
from .decode import decode, stop_ids
from .sampling import TopKTopPSampling, model_top_k

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    text: str
    n_tokens: int
    finished: bool  # ended with the end-of-turn token (not cut at max_new_tokens)


def load_policy(model_dir: str, dtype: str | None = None, device: str = "auto"):
    """(model, tokenizer) for generation: the model on ``device`` (``resolve_device``) in ``dtype``
    (default: ``preferred_dtype_name`` for that device), in eval mode; the tokenizer pads left."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    dtype = dtype or preferred_dtype_name(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).to(device)
    model.eval()
    return model, tokenizer


def chat_prompt(tokenizer, user_message: str, system: str | None = None) -> str:
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user_message}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def sample_responses(model, tokenizer, prompts: Sequence[str], k: int, *, temperature: float = 0.8,
                     top_p: float = 0.95, max_new_tokens: int = 48, batch_rows: int = 64, seed: int = 0,
                     logger: Any = None) -> list[list[Sample]]:
    """``k`` sampled completions for each already-templated prompt, in prompt order;
    ``batch_rows // k`` prompts (at least one) per batch."""
    import torch

    logger = logger or log
    out: list[list[Sample]] = []
    eos_ids = stop_ids(model, tokenizer)
    generated = 0
    started = time.monotonic()
    last_report = started
    batch_prompts = max(1, batch_rows // k)
    sampler = TopKTopPSampling(temperature, model_top_k(model), top_p)
    for b, start in enumerate(range(0, len(prompts), batch_prompts)):
        batch = list(prompts[start:start + batch_prompts])
        enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        torch.manual_seed(seed * 1_000_003 + b)
        rows = decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=max_new_tokens,
                      stop_ids=eos_ids, choose=sampler.draw, repeats=k)
        for p in range(len(batch)):
            samples = []
            for row in rows[p * k:(p + 1) * k]:
                generated += len(row.token_ids)
                samples.append(Sample(tokenizer.decode(row.token_ids, skip_special_tokens=True).strip(),
                                      len(row.token_ids), row.finished))
            out.append(samples)
        if time.monotonic() - last_report > 10 or start + batch_prompts >= len(prompts):
            elapsed = time.monotonic() - started
            logger.info(f"sampled {len(out)}/{len(prompts)} prompts x {k}: {generated} tokens, "
                        f"{generated / max(elapsed, 1e-9):.1f} tok/s")
            last_report = time.monotonic()
    return out
