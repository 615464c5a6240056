"""The policy on vLLM: its OpenAI-compatible completions API, token ids in and out.

Why vLLM for the policy at scale: PTS estimates p(success) at many prefixes of one response, and
each estimate samples N rollouts from question + prefix. Those contexts share everything up to
the prefix, so with ``--enable-prefix-caching`` the server keeps the KV blocks of the question and
of every prefix already seen, and a new estimate pays only for the tokens it adds; the N rollouts
of one estimate are one request with ``n = N`` and share its prefill too. The in-process sampler
does the same for one context at a time (``pts.sampler``); the server does it across prefixes,
problems and concurrent requests, on the GPU, with paged attention.

Requests use only what vLLM documents for ``/v1/completions``: ``prompt`` as token ids (one list,
or a list of lists for a batch), ``n``, ``temperature``, ``top_p``, ``max_tokens``, ``seed``,
``logprobs`` (0: the sampled token's only) and vLLM's ``return_tokens_as_token_ids``, which names
each sampled token ``"token_id:<id>"``. The sampled ids are read from there, never re-tokenized
from text, so token boundaries match the in-process path exactly. Choices come back indexed
``prompt_index * n + j``.

What differs from the in-process sampler: vLLM's log-probabilities are, by default, the model's
raw distribution, not the temperature-scaled one; the search uses them only to choose where to
split a segment (equal log-probability mass), so the pivots it may find are the same and the
order it looks at them can differ. Samples are reproducible per seed on one server, not across
backends.

The served model is always an exact model directory: launched here over the directory
(``vllm_command``), or an endpoint given per model asset (``vllm_endpoints``) whose ``/v1/models``
must list that directory; so the model version recorded with every sample is the directory's,
whichever backend ran.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.served import ServedProcess, ServerStartError
from .generation import Sample

log = logging.getLogger(__name__)

# {model_dir} and {port} are filled in; the served name is the directory itself (the profile's
# ``vllm_command`` default).
DEFAULT_VLLM_COMMAND = ("vllm serve {model_dir} --served-model-name {model_dir} --host 127.0.0.1 --port {port} "
                        "--enable-prefix-caching --seed 0")
TOKEN_ID_PREFIX = "token_id:"


class VllmError(ServerStartError):
    """The vLLM backend cannot serve or read a request: a launch that failed, an endpoint serving
    another directory, a reply without the token ids."""


class VllmServer(ServedProcess):
    """``vllm serve`` (or any command that serves the same API) over one model directory."""

    name = "the vLLM policy server"
    error = VllmError

    def __init__(self, model_dir: str | Path, command: str = DEFAULT_VLLM_COMMAND, log_path: str | Path | None = None,
                 startup_timeout_s: float = 900.0):
        super().__init__(log_path, startup_timeout_s)
        self.model_dir = str(Path(model_dir).resolve())
        self.template = command

    def command(self) -> list[str]:
        try:
            return shlex.split(self.template.format(model_dir=shlex.quote(self.model_dir), port=self.port))
        except (KeyError, IndexError, ValueError) as e:
            raise VllmError(f"vllm_command {self.template!r} cannot be filled in ({type(e).__name__}: {e}): it may "
                            "name only {model_dir} and {port}; write other braces as {{ and }}") from None


def token_ids_of(tokens: Sequence[str]) -> list[int]:
    """The ids in vLLM's ``return_tokens_as_token_ids`` form (``"token_id:123"``)."""
    ids = []
    for token in tokens:
        if not token.startswith(TOKEN_ID_PREFIX):
            raise VllmError(f"expected tokens as {TOKEN_ID_PREFIX}<id> (return_tokens_as_token_ids), got {token!r}: "
                            "the server does not support vLLM's return_tokens_as_token_ids")
        ids.append(int(token[len(TOKEN_ID_PREFIX):]))
    return ids


@dataclass(frozen=True)
class Completion:
    token_ids: tuple[int, ...]  # end-of-turn excluded
    logprobs: tuple[float, ...]
    finished: bool  # stopped on its own (finish_reason "stop"), not at max_tokens


class VllmCompletions:
    """Completions of token-id prompts from one served model directory."""

    def __init__(self, base_url: str, model_dir: str, eos_ids: set[int], timeout_s: float = 600.0,
                 api_key: str | None = None, top_k: int | None = None):
        import openai

        self.model = str(Path(model_dir).resolve())
        self.eos_ids = set(eos_ids)
        self.top_k = top_k
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s,
                                    max_retries=2)
        self.requests = 0
        self.sampled_tokens = 0

    def check_serves(self) -> None:
        """Refuse an endpoint that does not serve this exact directory (lineage would be wrong)."""
        served = [(m.id, getattr(m, "root", None)) for m in self.client.models.list().data]
        if not any(self.model in (name, root) or str(Path(root or "/nonexistent").resolve()) == self.model
                   for name, root in served):
            raise VllmError(f"{self.client.base_url} serves {', '.join(n for n, _ in served) or 'no model'}, not "
                            f"{self.model}: serve that directory there (vllm serve {self.model}) or leave the "
                            "asset out of vllm_endpoints so it is launched")

    def complete(self, prompts: list[list[int]], n: int, *, temperature: float, top_p: float, max_tokens: int,
                 seed: int, logprobs: bool = False) -> list[list[Completion]]:
        """``n`` completions of each token-id prompt, in prompt order."""
        response = self.client.completions.create(
            model=self.model, prompt=prompts if len(prompts) != 1 else prompts[0], n=n, temperature=temperature,
            top_p=top_p, max_tokens=max_tokens, seed=seed, logprobs=0,
            extra_body={"return_tokens_as_token_ids": True, **({"top_k": self.top_k} if self.top_k else {})})
        self.requests += 1
        choices = sorted(response.choices, key=lambda c: c.index)
        if len(choices) != len(prompts) * n:
            raise VllmError(f"asked {len(prompts)} prompts x {n}, got {len(choices)} choices")
        out: list[list[Completion]] = [[] for _ in prompts]
        for choice in choices:
            if choice.logprobs is None or choice.logprobs.tokens is None:
                raise VllmError("the server returned no logprobs.tokens: cannot read the sampled token ids")
            ids = token_ids_of(choice.logprobs.tokens)
            lps = [float(x) if x is not None else 0.0 for x in (choice.logprobs.token_logprobs or [0.0] * len(ids))]
            cut = next((i for i, t in enumerate(ids) if t in self.eos_ids), len(ids))
            self.sampled_tokens += cut
            out[choice.index // n].append(Completion(tuple(ids[:cut]), tuple(lps[:cut]) if logprobs else (),
                                                     choice.finish_reason == "stop"))
        return out

    def close(self) -> None:
        self.client.close()


class VllmRolloutSampler:
    """``pts.sampler.RolloutSampler``'s interface over ``VllmCompletions``: a response with its
    log-probabilities, and ``n`` rollouts of a context in one request (the server shares the
    context's prefill among them and caches it for the next prefix)."""

    def __init__(self, completions: VllmCompletions, tokenizer, temperature: float = 0.7, top_p: float = 1.0,
                 max_new_tokens: int = 96, batch_size: int = 16):
        self.completions = completions
        self.tokenizer = tokenizer
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size  # unused: the server batches
        self.eos = tokenizer.eos_token_id
        self.sampled_tokens = 0
        self.slot_tokens = 0  # the server decodes no padding slots: equal to sampled_tokens

    @property
    def params(self) -> dict:
        """What an estimate's memo key holds: the in-process sampler's, plus the backend (another
        sampler: its estimates are not reused for this one's, nor this one's for it)."""
        return {"temperature": self.temperature, "top_p": self.top_p, "max_new_tokens": self.max_new_tokens,
                "backend": "vllm"}

    def prompt_ids(self, question: str) -> list[int]:
        from ..pts.sampler import chat_prompt_ids

        return chat_prompt_ids(self.tokenizer, question)

    def sample_response(self, context: list[int], seed: int):
        from ..pts.sampler import SampledResponse

        (c,), = self.completions.complete([list(context)], 1, temperature=self.temperature, top_p=self.top_p,
                                          max_tokens=self.max_new_tokens, seed=seed, logprobs=True)
        return SampledResponse(c.token_ids, c.logprobs)

    def rollouts(self, context: list[int], n: int, seed: int, max_new_tokens: int | None = None):
        from ..pts.sampler import Rollout

        max_new = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        (done,) = self.completions.complete([list(context)], n, temperature=self.temperature, top_p=self.top_p,
                                            max_tokens=max_new, seed=seed)
        tokens = sum(len(c.token_ids) for c in done)
        self.sampled_tokens += tokens
        self.slot_tokens += tokens
        return [Rollout(c.token_ids, c.token_ids[0] if c.token_ids else None, c.finished) for c in done]

    def rollouts_many(self, contexts: list[list[int]], n: int, seed: int,
                      max_new_tokens: int | list[int] | None = None, batch_rows: int = 64, logger=None):
        """``n`` rollouts of each context (one token budget for all, or one per context), one
        request per context (the server batches them)."""
        budgets = (max_new_tokens if isinstance(max_new_tokens, list) else [max_new_tokens] * len(contexts))
        if len(budgets) != len(contexts):
            raise ValueError(f"{len(budgets)} token budgets for {len(contexts)} contexts")
        return [self.rollouts(c, n, seed=seed * 1_000_003 + i, max_new_tokens=b)
                for i, (c, b) in enumerate(zip(contexts, budgets))]

    def responses(self, contexts: list[list[int]], seed: int, batch_rows: int = 64):
        """One response of each context with its log-probabilities, ``batch_rows`` prompts a
        request (seeded ``seed * 1_000_003 + request index``)."""
        from ..pts.sampler import SampledResponse

        out = []
        for b, start in enumerate(range(0, len(contexts), batch_rows)):
            for (c,) in self.completions.complete([list(x) for x in contexts[start:start + batch_rows]], 1,
                                                  temperature=self.temperature, top_p=self.top_p,
                                                  max_tokens=self.max_new_tokens, seed=seed * 1_000_003 + b,
                                                  logprobs=True):
                self.sampled_tokens += len(c.token_ids)
                self.slot_tokens += len(c.token_ids)
                out.append(SampledResponse(c.token_ids, c.logprobs))
        return out

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)


def _top_k(model_dir: str) -> int | None:
    """The top-k transformers' ``generate`` samples with for this directory (its generation
    config's, 50 by default), sent to vLLM (whose default is none) so both backends sample from
    the same distribution."""
    from transformers import GenerationConfig

    try:
        top_k = GenerationConfig.from_pretrained(model_dir).top_k
    except OSError:
        top_k = None
    return top_k if top_k is not None else GenerationConfig._get_default_generation_params()["top_k"]


def _generation_eos(model_dir: str) -> set[int]:
    """The end-of-sequence ids of the directory's generation config (the in-process path stops
    at these too)."""
    from transformers import GenerationConfig

    try:
        eos = GenerationConfig.from_pretrained(model_dir).eos_token_id
    except OSError:
        return set()
    return set(eos if isinstance(eos, list) else [eos]) - {None}


class VllmPolicy:
    """The policy on a vLLM server: launched over ``model_dir`` with ``command``, or at
    ``base_url`` (which must serve that directory). ``close()`` stops what it launched."""

    backend = "vllm"

    def __init__(self, model_dir: str, *, base_url: str | None = None, command: str = DEFAULT_VLLM_COMMAND,
                 log_path: str | Path | None = None, startup_timeout_s: float = 900.0, timeout_s: float = 600.0):
        from transformers import AutoTokenizer

        self.path = str(Path(model_dir).resolve())
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.server: VllmServer | None = None
        if base_url is None:
            log.info("starting the vLLM policy server over %s", self.path)
            self.server = VllmServer(self.path, command, log_path=log_path, startup_timeout_s=startup_timeout_s)
            try:
                self.server.start()
            except VllmError as e:
                raise VllmError(f"{e}\n(vllm_command = {command!r}; is vLLM installed where the asset runs?)") from e
            base_url = self.server.base_url
        self.completions: VllmCompletions | None = None
        try:  # whatever fails from here on, a server launched above is stopped
            eos = ({self.tokenizer.eos_token_id} | _generation_eos(self.path)) - {None}
            self.completions = VllmCompletions(base_url, self.path, eos, timeout_s=timeout_s, top_k=_top_k(self.path))
            self.completions.check_serves()
        except BaseException:
            self.close()
            raise

    def sample(self, prompts: Sequence[str], k: int, *, temperature: float = 0.8, top_p: float = 0.95,
               max_new_tokens: int = 48, batch_rows: int = 64, seed: int = 0, logger: Any = None) -> list[list[Sample]]:
        """``generation.sample_responses``'s contract: ``k`` samples of each templated prompt,
        ``batch_rows // k`` prompts a request."""
        return self._texts(prompts, k, max(1, batch_rows // k), temperature=temperature, top_p=top_p,
                           max_new_tokens=max_new_tokens, seed=seed, logger=logger, label=f"sampled x {k}")

    def greedy(self, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int = 8, logger: Any = None,
               label: str = "") -> list[Sample]:
        """``evaluation.runner.greedy_generate``'s contract: one greedy completion per prompt
        (temperature 0), in prompt order; ``batch_size`` prompts a request."""
        return [per[0] for per in self._texts(prompts, 1, batch_size, temperature=0.0, top_p=1.0,
                                              max_new_tokens=max_new_tokens, seed=0, logger=logger,
                                              label=f"{label}: greedy")]

    def _texts(self, prompts: Sequence[str], n: int, batch: int, *, temperature: float, top_p: float,
               max_new_tokens: int, seed: int, logger: Any, label: str) -> list[list[Sample]]:
        """``n`` completions of each templated prompt as ``Sample``s, ``batch`` prompts a request
        (seeded ``seed * 1_000_003 + batch index``, as ``sample_responses``)."""
        out: list[list[Sample]] = []
        started, before = time.monotonic(), self.completions.sampled_tokens
        for b, start in enumerate(range(0, len(prompts), batch)):
            ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[start:start + batch]]
            for per_prompt in self.completions.complete(ids, n, temperature=temperature, top_p=top_p,
                                                        max_tokens=max_new_tokens, seed=seed * 1_000_003 + b):
                out.append([Sample(self.tokenizer.decode(list(c.token_ids), skip_special_tokens=True).strip(),
                                   len(c.token_ids), c.finished) for c in per_prompt])
        elapsed, tokens = max(time.monotonic() - started, 1e-9), self.completions.sampled_tokens - before
        (logger or log).info(f"{label}: {len(out)} prompts on vLLM, {tokens} tokens, {tokens / elapsed:.1f} tok/s")
        return out

    def rollout_sampler(self, *, temperature: float, max_new_tokens: int, top_p: float = 1.0,
                        batch_size: int = 16) -> VllmRolloutSampler:
        return VllmRolloutSampler(self.completions, self.tokenizer, temperature=temperature, top_p=top_p,
                                  max_new_tokens=max_new_tokens, batch_size=batch_size)

    def close(self) -> None:
        if getattr(self, "completions", None) is not None:
            self.completions.close()
            self.completions = None
        if self.server is not None:
            self.server.stop()
            self.server = None
