"""The policy engine: everything that samples from a policy model goes through one of these,
chosen by the profile's ``policy_backend``.

- ``transformers`` (default): in-process, on the profile's ``device`` (``generation``,
  ``pts.sampler``).
- ``vllm``: vLLM's OpenAI-compatible server, launched over the model directory or at a given
  endpoint (``vllm_backend``).

Both give: ``tokenizer`` (the directory's own: chat templates, decoding); ``sample(prompts, k,
...)`` (k samples of each templated prompt, ``generation.sample_responses``'s contract);
``rollout_sampler(...)`` (PTS: a response with log-probabilities and rollouts of a token-id
context); ``greedy(prompts, ...)`` (the evaluation's greedy completions); ``close()``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BACKENDS = ("transformers", "vllm")


class TransformersPolicy:
    """The policy in this process (``generation.load_policy``)."""

    backend = "transformers"

    def __init__(self, model_dir: str, device: str = "auto"):
        from .generation import load_policy

        self.path = str(model_dir)
        self.model, self.tokenizer = load_policy(self.path, device=device)

    def sample(self, prompts: Sequence[str], k: int, **kwargs: Any):
        from .generation import sample_responses

        return sample_responses(self.model, self.tokenizer, prompts, k, **kwargs)

    def greedy(self, prompts: Sequence[str], **kwargs: Any):
        from ..evaluation.runner import greedy_generate

        return greedy_generate(self.model, self.tokenizer, prompts, **kwargs)

    def rollout_sampler(self, *, temperature: float, max_new_tokens: int, top_p: float = 1.0, batch_size: int = 16):
        from ..pts.sampler import RolloutSampler

        return RolloutSampler(self.model, self.tokenizer, temperature=temperature, top_p=top_p,
                              max_new_tokens=max_new_tokens, batch_size=batch_size)

    def close(self) -> None:
        self.model = None


def policy_engine(model_dir: str, settings, *, asset: str | None = None, log_dir: str | Path | None = None):
    """The engine ``settings.policy_backend`` names, over ``model_dir`` (the model asset ``asset``'s
    directory: ``settings.vllm_endpoints`` may name an endpoint already serving it)."""
    if asset is not None and not isinstance(asset, str):
        raise TypeError(f"asset must be a model asset's name, got {type(asset).__name__}")
    if settings.policy_backend == "transformers":
        return TransformersPolicy(model_dir, device=settings.device)
    if settings.policy_backend == "vllm":
        from .vllm_backend import VllmPolicy

        base_url = settings.vllm_endpoints.get(asset) if asset else None
        log_path = Path(log_dir or tempfile.gettempdir()) / f"phi4-vllm-{asset or Path(model_dir).name}-{os.getpid()}.log"
        return VllmPolicy(model_dir, base_url=base_url, command=settings.vllm_command, log_path=log_path,
                          startup_timeout_s=settings.vllm_startup_timeout_s)
    raise ValueError(f"policy_backend must be one of {', '.join(BACKENDS)}; got {settings.policy_backend!r}")


@contextlib.contextmanager
def open_policy(model_dir: str, settings, *, asset: str | None = None,
                log_dir: str | Path | None = None) -> Iterator[Any]:
    """``with open_policy(ref.path, settings, asset="sft_model") as policy: policy.sample(...)``:
    a launched server is stopped on the way out, also after an error."""
    engine = policy_engine(model_dir, settings, asset=asset, log_dir=log_dir)
    try:
        yield engine
    finally:
        engine.close()
