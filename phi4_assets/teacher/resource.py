"""The one teacher resource: every generation, grading and judging call goes through here.

Built on the official ``openai`` client (its retries with backoff cover 429, 5xx, timeouts
and dropped connections). With no ``base_url`` it starts the embedded endpoint over the
model directory the caller names, on a free loopback port, and stops it at teardown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dagster as dg
import openai
from pydantic import Field, PrivateAttr

from ..ids import content_hash, file_digest
from .cache import CallRecord, TeacherCache
from .embedded import EmbeddedServer
from .types import ChatRequest, TeacherReply, call_key

log = logging.getLogger(__name__)


@dataclass
class TeacherStats:
    requests: int = 0
    unique_calls: int = 0
    cache_hits: int = 0
    calls_made: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0
    by_task: dict[str, int] = field(default_factory=dict)

    def as_metadata(self, prefix: str = "teacher_") -> dict[str, Any]:
        return {f"{prefix}{k}": v for k, v in {
            "requests": self.requests, "calls_made": self.calls_made, "cache_hits": self.cache_hits,
            "errors": self.errors, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "wall_s": round(self.wall_s, 2)}.items()}


@dataclass
class TeacherBatch:
    replies: list[TeacherReply]
    stats: TeacherStats
    model: str


_DIGESTS: dict[str, str] = {}
_DIGESTS_LOCK = threading.Lock()


def model_dir_identity(model_dir: str | Path) -> str:
    """A cache identity for a served model directory: a digest of its weights."""
    path = Path(model_dir).resolve()
    with _DIGESTS_LOCK:
        if str(path) not in _DIGESTS:
            weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
            _DIGESTS[str(path)] = content_hash([file_digest(w) for w in weights] or [str(path)])
        return _DIGESTS[str(path)]


class TeacherResource(dg.ConfigurableResource):
    """An OpenAI-compatible chat endpoint with a persistent call cache."""

    base_url: str | None = Field(default=None, description="OpenAI-compatible base URL; none starts the embedded server.")
    model: str | None = Field(default=None, description="Model name at the endpoint (e.g. gpt-4o).")
    api_key: str | None = Field(default=None, description="API key; set it as EnvVar('OPENAI_API_KEY').")
    temperature: float = 0.7
    max_tokens: int = 256
    max_concurrency: int = Field(default=8, description="Requests in flight at once.")
    timeout_s: float = 120.0
    max_retries: int = Field(default=4, description="Retries with backoff on 429, 5xx, timeouts, connection errors.")
    structured_outputs: bool = Field(default=False, description="Send JSON schemas as response_format.")
    max_tokens_param: str = Field(
        default="auto", description="How the completion limit is sent: 'max_completion_tokens' (OpenAI's current "
                                    "name; newer OpenAI models reject 'max_tokens'), 'max_tokens' (vLLM, llama.cpp, "
                                    "transformers serve), or 'auto': the first for api.openai.com, else the second.")
    cache_path: str = Field(description="DuckDB file of every call made.")
    flush_every: int = Field(default=16, description="Replies written to the cache per flush.")
    embedded_dtype: str = "auto"
    log_dir: str | None = None

    _server: EmbeddedServer | None = PrivateAttr(default=None)
    _client: openai.OpenAI | None = PrivateAttr(default=None)
    _client_url: str | None = PrivateAttr(default=None)

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
                log_path = Path(self.log_dir) / "embedded-teacher.log" if self.log_dir else None
                log.info("starting the embedded teacher (transformers serve) over %s", wanted)
                self._server = EmbeddedServer(wanted, dtype=self.embedded_dtype, log_path=log_path).start()
            url, model_name = self._server.base_url, self._server.model_name
        else:
            url, model_name = self.base_url, self.model or "default"
        if self._client is None or self._client_url != url:
            if self._client is not None:
                self._client.close()
            self._client = openai.OpenAI(base_url=url, api_key=self.api_key or "not-needed",
                                         timeout=self.timeout_s, max_retries=self.max_retries)
            self._client_url = url
        return self._client, model_name

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
                 logger: Any = None, progress_every_s: float = 10.0) -> TeacherBatch:
        """Answer every request, from the cache where possible, concurrently otherwise.

        Replies come back in request order. A failed call (after retries) is a reply with
        ``error`` set, never an exception. Identical requests are sent once.
        """
        logger = logger or log
        started = time.monotonic()
        model_id = self.model_identity(serve_model)
        stats = TeacherStats(requests=len(requests))
        keyed: list[tuple[str, ChatRequest, dict]] = []
        for request in requests:
            key, params = self.request_key(request, model_id)
            keyed.append((key, request, params))
            stats.by_task[request.task] = stats.by_task.get(request.task, 0) + 1
        unique = {key: (request, params) for key, request, params in keyed}
        stats.unique_calls = len(unique)

        cache = self.cache()
        replies: dict[str, TeacherReply] = cache.lookup(list(unique))
        stats.cache_hits = len(replies)
        todo = [key for key in unique if key not in replies]
        if todo:
            client, wire_model = self._endpoint(serve_model)
            logger.info(f"teacher {model_id}: {len(todo)} calls to make, {stats.cache_hits} cached "
                        f"(concurrency {self.max_concurrency})")
            pending: list[CallRecord] = []
            done = 0
            last_report = time.monotonic()
            try:
                with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
                    futures = {pool.submit(self._call, client, wire_model, key, *unique[key]): key for key in todo}
                    for future in as_completed(futures):
                        key = futures[future]
                        reply = future.result()
                        replies[key] = reply
                        request, params = unique[key]
                        pending.append(CallRecord(reply=reply, model=self._request_identity(request, model_id),
                                                  task=request.task,
                                                  request={"messages": request.wire_messages(), **params}))
                        done += 1
                        stats.calls_made += 1
                        stats.errors += reply.error is not None
                        stats.prompt_tokens += reply.prompt_tokens
                        stats.completion_tokens += reply.completion_tokens
                        if len(pending) >= self.flush_every:
                            cache.store(pending)
                            pending = []
                        if time.monotonic() - last_report >= progress_every_s:
                            elapsed = time.monotonic() - started
                            logger.info(f"teacher: {done}/{len(todo)} calls, {done / elapsed:.2f} calls/s, "
                                        f"{stats.completion_tokens / elapsed:.1f} completion tok/s, {stats.errors} errors")
                            last_report = time.monotonic()
            finally:
                cache.store(pending)  # a killed run loses at most the batch in flight
        stats.wall_s = time.monotonic() - started
        if todo:
            logger.info(f"teacher: {stats.calls_made} calls in {stats.wall_s:.1f}s, {stats.errors} errors, "
                        f"{stats.prompt_tokens}+{stats.completion_tokens} tokens")
        return TeacherBatch(replies=[replies[key] for key, _, _ in keyed], stats=stats, model=model_id)

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

    def _call(self, client: openai.OpenAI, wire_model: str, key: str, request: ChatRequest, params: dict) -> TeacherReply:
        t0 = time.monotonic()
        sent = dict(params)  # the cache key names the limit max_tokens whatever it is sent as
        if "max_tokens" in sent and self.limit_param() != "max_tokens":
            sent[self.limit_param()] = sent.pop("max_tokens")
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=request.model or wire_model, messages=request.wire_messages(), **sent)
            response = raw.parse()
            attempts = int(raw.retries_taken) + 1
        except openai.OpenAIError as e:
            return TeacherReply(call_id=key, text=None, error=f"{type(e).__name__}: {e}"[:2000],
                                latency_s=time.monotonic() - t0, attempts=self.max_retries + 1)
        latency = time.monotonic() - t0
        choice = response.choices[0] if response.choices else None
        text = choice.message.content if choice is not None and choice.message is not None else None
        usage = response.usage
        return TeacherReply(
            call_id=key, text=text, error=None if text is not None else "empty reply (no message content)",
            finish_reason=getattr(choice, "finish_reason", None),
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            latency_s=latency, attempts=attempts)
