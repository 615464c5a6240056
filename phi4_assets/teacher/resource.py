"""The one teacher resource: every generation, grading and judging call goes through here.

Built on the official ``openai`` client, with the client's own retries off (``max_retries=0``):
each call retries itself (``call.py``), with backoff honouring Retry-After, on 408/409/429/5xx,
timeouts, dropped connections and malformed 2xx bodies, and counts every HTTP request it makes
(a reply's ``attempts``). Any exception from one call becomes a failed reply for that request;
it never fails its siblings. Every reply is journaled before the next one is awaited
(``runner.py``, ``cache.py``). With no ``base_url`` it starts the embedded endpoint over the
model directory the caller names, on a free loopback port, and stops it at teardown.

This module is the resource itself: its configuration, the client and embedded server it
holds, and how requests are keyed. The batch and its counts are in ``batch.py``, the batch
runner in ``runner.py``, one call and its retries in ``call.py``; their names are importable
from here too.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import dagster as dg
import openai
from pydantic import Field, PrivateAttr

from .batch import TeacherBatch, Validator
from .cache import TeacherCache
from .call import RetryPolicy, call_with_retries
from .batched_server import BatchedServer
from .embedded import DEFAULT_KV_CACHE_TOKENS, EmbeddedServer, model_dir_identity
from .runner import check_failure_share, run_batch
from .types import ChatRequest, TeacherReply, call_key

if TYPE_CHECKING:
    from ..config.profiles import Profile
    from ..config.settings import Paths

log = logging.getLogger(__name__)


# Room per request for its prompt in the embedded server's KV cache. The pipeline's longest prompt
# is a judge prompt: with the longest shipped chat prompt and two 400-word candidates (over three
# times small's judge_response_tokens) it measured 1,247 tokens of SmolLM2's tokenizer.
EMBEDDED_PROMPT_TOKENS = 2048


class TeacherResource(dg.ConfigurableResource):
    """An OpenAI-compatible chat endpoint with a persistent call cache."""

    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL; none starts the embedded server.")
    model: str | None = Field(default=None, description="Model name at the endpoint (e.g. gpt-4o).")
    api_key: str | None = Field(default=None, description="API key; set it as EnvVar('OPENAI_API_KEY').")
    temperature: float = 0.7
    max_tokens: int = 256
    max_concurrency: int = Field(default=8, description="Requests in flight at once.")
    timeout_s: float = Field(default=120.0, description="Seconds one HTTP attempt may take.")
    max_retries: int = Field(default=4, description="Retries after the first attempt, on 408, 409, 429, 5xx, "
                                                    "timeouts, dropped connections and malformed 2xx bodies.")
    retry_backoff_s: float = Field(default=0.5, description="First wait between attempts where the server sends no "
                                                            "Retry-After; doubled per retry (at most 8 s, minus up "
                                                            "to 25% jitter). A Retry-After of up to 120 s is honoured, "
                                                            "a longer one ends the retries.")
    max_failure_share: float | None = Field(
        default=None, description="Fail the batch, at the end and after every answered call is cached, where "
                                  "more than this share (0-1) of its distinct calls failed or were rejected by "
                                  "the task's validator; None: never.")
    max_error_share: float | None = Field(
        default=None, description="Fail the batch, at the end and after every answered call is cached, where "
                                 "more than this share (0-1) of its distinct calls got no reply at all (an error "
                                 "after every retry: the endpoint down, a connection refused); None: never. "
                                 "Unlike a rejected reply, which a task's rules replace, a call without a reply "
                                 "leaves a hole in the data.")
    structured_outputs: bool = Field(default=False, description="Send JSON schemas as response_format.")
    max_tokens_param: str = Field(
        default="auto", description="How the completion limit is sent: 'max_completion_tokens' (OpenAI's current "
                                    "name; newer OpenAI models reject 'max_tokens'), 'max_tokens' (vLLM, llama.cpp, "
                                    "transformers serve), or 'auto': the first for api.openai.com, else the second.")
    cache_path: str = Field(description="DuckDB file of every call made.")
    flush_every: int = Field(default=16, description="Ignored, kept so older configurations load: every reply is "
                                                     "journaled as it arrives.")
    embedded_dtype: str = "auto"
    embedded_server: str = Field(
        default="batched", description="Which server the embedded teacher runs: 'batched' (teacher.batched_server, "
                                       "over the pipeline's decode loop: 1.27x the completion tokens/s of transformers "
                                       "serve on 2 CPU cores, BENCHMARKS.md) or 'transformers' (transformers serve "
                                       "--continuous-batching).")
    log_dir: str | None = None

    _server: EmbeddedServer | BatchedServer | None = PrivateAttr(default=None)
    _client: openai.OpenAI | None = PrivateAttr(default=None)
    _client_url: str | None = PrivateAttr(default=None)

    @classmethod
    def from_profile(cls, profile: "Profile", paths: "Paths") -> "TeacherResource":
        """The teacher a profile configures: its endpoint (none: the embedded server), model and
        request settings; the API key from ``OPENAI_API_KEY``, read when the resource is used."""
        return cls(
            base_url=profile.teacher_base_url, model=profile.teacher_model,
            api_key=dg.EnvVar("OPENAI_API_KEY") if os.environ.get("OPENAI_API_KEY") else None,
            temperature=profile.teacher_temperature, max_tokens=profile.teacher_max_tokens,
            max_concurrency=profile.teacher_max_concurrency, timeout_s=profile.teacher_timeout_s,
            max_retries=profile.teacher_max_retries, structured_outputs=profile.teacher_structured_outputs,
            max_tokens_param=profile.teacher_max_tokens_param, max_failure_share=profile.teacher_max_failure_share,
            max_error_share=profile.teacher_max_error_share, embedded_server=profile.teacher_embedded_server,
            cache_path=str(paths.teacher_cache), log_dir=str(paths.cache_dir / "logs"))

    # -- lifecycle ---------------------------------------------------------------------------
    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._client is not None:
            self._client.close()
            self._client = None
            self._client_url = None

    @property
    def embedded(self) -> bool:
        return not self.base_url

    def embedded_kv_cache_tokens(self) -> int:
        """The embedded server's KV cache: room for every request in flight at once, each with a
        prompt of up to ``EMBEDDED_PROMPT_TOKENS`` and its ``max_tokens``."""
        return max(DEFAULT_KV_CACHE_TOKENS, self.max_concurrency * (EMBEDDED_PROMPT_TOKENS + self.max_tokens))

    def cache(self) -> TeacherCache:
        return TeacherCache(self.cache_path)

    def model_identity(self, serve_model: str | None = None) -> str:
        """What the cache keys on: the endpoint's model name, or the served weights' digest."""
        if not self.embedded:
            return self.model or "default"
        if not serve_model:
            raise ValueError("the embedded teacher needs the model directory to serve (serve_model=...)")
        return f"embedded:{model_dir_identity(serve_model)}"

    def _endpoint(self, serve_model: str | None) -> tuple[openai.OpenAI, str]:
        if self.embedded:
            wanted = str(Path(serve_model).resolve())
            if self._server is None or self._server.model_dir != wanted:
                if self._server is not None:
                    self._server.stop()
                self._server = self._embedded_server(wanted).start()
            url, model_name = self._server.base_url, self._server.model_name
        else:
            url, model_name = self.base_url, self.model or "default"
        if self._client is None or self._client_url != url:
            if self._client is not None:
                self._client.close()
            self._client = openai.OpenAI(base_url=url, api_key=self.api_key or "not-needed",
                                         timeout=self.timeout_s, max_retries=0)  # _call retries and counts
            self._client_url = url
        return self._client, model_name

    def _embedded_server(self, model_dir: str) -> EmbeddedServer | BatchedServer:
        """The embedded server over ``model_dir`` (not started), of the configured kind."""
        log_path = Path(self.log_dir) / "embedded-teacher.log" if self.log_dir else None
        if self.embedded_server == "batched":
            log.info("starting the embedded teacher (the batched server) over %s", model_dir)
            # One batch can hold every request in flight.
            return BatchedServer(model_dir, dtype=self.embedded_dtype, log_path=log_path,
                                 max_batch=self.max_concurrency)
        if self.embedded_server == "transformers":
            log.info("starting the embedded teacher (transformers serve) over %s", model_dir)
            return EmbeddedServer(model_dir, dtype=self.embedded_dtype, log_path=log_path,
                                  kv_cache_tokens=self.embedded_kv_cache_tokens())
        raise ValueError(f"embedded_server must be batched or transformers; got {self.embedded_server!r}")

    # -- calls -------------------------------------------------------------------------------
    def _params(self, request: ChatRequest) -> dict:
        params = {
            "temperature": self.temperature if request.temperature is None else request.temperature,
            "max_tokens": request.max_tokens or self.max_tokens,
        }
        if request.seed is not None:
            params["seed"] = request.seed
        if request.json_schema is not None and self.structured_outputs:
            params["response_format"] = {"type": "json_schema", "json_schema": {**request.json_schema, "strict": True}}
        return params

    def complete(self, requests: Sequence[ChatRequest], *, serve_model: str | None = None,
                 logger: Any = None, progress_every_s: float = 10.0,
                 validate: Validator | None = None) -> TeacherBatch:
        """Answer every request, from the cache where possible, concurrently otherwise.

        Replies come back in request order. A failed call (after retries, whatever the exception)
        is a reply with ``error`` set, never an exception. Identical requests are sent once.
        Every reply is journaled as it arrives, before the next one is awaited.

        ``validate(request, reply) -> None | reason`` is the task's own parser: it sees every
        answered reply (fresh or cached); a reason marks the reply ``rejected_reason`` in the
        batch and in the cache, so it is no cache hit and the next run asks again (a cached reply
        it rejects is asked again in this run). An exception from it is a rejection too.

        With ``max_failure_share`` set, raises ``TeacherFailureShareExceeded`` at the end (after
        the journal is folded into the cache) where a larger share of the distinct calls has no
        usable reply; with ``max_error_share`` set, likewise where a larger share got no reply.
        """
        started = time.monotonic()
        check_failure_share(self.max_failure_share)
        check_failure_share(self.max_error_share)
        limit_name = self.limit_param()  # a configuration error fails here, not as N failed replies
        model_id = self.model_identity(serve_model)

        def connect():
            client, wire_model = self._endpoint(serve_model)
            return lambda key, request, params: self._call(client, wire_model, key, request, params, limit_name)

        return run_batch(requests, model_id=model_id, key_of=lambda request: self.request_key(request, model_id),
                         identity_of=lambda request: self._request_identity(request, model_id),
                         cache=self.cache(), connect=connect, max_concurrency=self.max_concurrency,
                         max_failure_share=self.max_failure_share, max_error_share=self.max_error_share,
                         logger=logger or log,
                         progress_every_s=progress_every_s, validate=validate, started=started)

    def request_key(self, request: ChatRequest, model_id: str) -> tuple[str, dict]:
        """The cache key of ``request`` and the parameters sent with it; ``model_id`` is
        ``model_identity(...)``. ``complete`` and ``phi4 estimate`` both key requests this way."""
        params = self._params(request)
        return call_key(self._request_identity(request, model_id), request.wire_messages(), params), params

    def _request_identity(self, request: ChatRequest, model_id: str) -> str:
        """The cache identity of one request: another model at the same endpoint, or the resource's."""
        if request.model is None or request.model == self.model:
            return model_id
        if self.embedded:
            raise ValueError(f"the embedded teacher serves one model; {request.model!r} needs a configured endpoint "
                             "(PHI4_TEACHER_BASE_URL)")
        return request.model

    def limit_param(self) -> str:
        """The name the completion-token limit is sent under (see ``max_tokens_param``)."""
        if self.max_tokens_param not in ("auto", "max_tokens", "max_completion_tokens"):
            raise ValueError(f"max_tokens_param must be auto, max_tokens or max_completion_tokens; "
                             f"got {self.max_tokens_param!r}")
        if self.max_tokens_param != "auto":
            return self.max_tokens_param
        host = urlparse(self.base_url).hostname or "" if self.base_url else ""
        return "max_completion_tokens" if host == "api.openai.com" or host.endswith(".openai.com") else "max_tokens"

    def _call(self, client: openai.OpenAI, wire_model: str, key: str, request: ChatRequest, params: dict,
              limit_name: str = "max_tokens") -> TeacherReply:
        """One call with its retries; never raises (but for KeyboardInterrupt / SystemExit)."""
        retry = RetryPolicy(self.max_retries, self.retry_backoff_s, openai.APIStatusError, openai.APIConnectionError)
        return call_with_retries(client, wire_model, key, request, params, limit_name, retry)
