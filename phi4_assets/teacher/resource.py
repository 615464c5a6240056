"""The one teacher resource: every generation, grading and judging call goes through here.

Built on the official ``openai`` client, with the client's own retries off (``max_retries=0``):
``_call`` retries itself, with backoff honouring Retry-After, on 408/409/429/5xx, timeouts,
dropped connections and malformed 2xx bodies, and counts every HTTP request it makes (a reply's
``attempts``). Any exception from one call becomes a failed reply for that request; it never
fails its siblings. Every reply is journaled before the next one is awaited (see ``cache.py``).
With no ``base_url`` it starts the embedded endpoint over the model directory the caller names,
on a free loopback port, and stops it at teardown.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dagster as dg
import openai
from pydantic import Field, PrivateAttr

from ..ids import content_hash, file_digest
from .cache import CallRecord, TeacherCache
from .embedded import EmbeddedServer
from .types import ChatRequest, TeacherFailureShareExceeded, TeacherReply, call_key

log = logging.getLogger(__name__)


@dataclass
class TeacherStats:
    requests: int = 0
    unique_calls: int = 0
    cache_hits: int = 0
    calls_made: int = 0
    errors: int = 0  # calls made that failed (after retries)
    rejected: int = 0  # replies the task's parser rejected (``validate``, ``mark_unusable``), cached or not
    http_requests: int = 0  # attempts of the calls made, retries included
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_s: float = 0.0
    by_task: dict[str, int] = field(default_factory=dict)

    def as_metadata(self, prefix: str = "teacher_") -> dict[str, Any]:
        return {f"{prefix}{k}": v for k, v in {
            "requests": self.requests, "calls_made": self.calls_made, "cache_hits": self.cache_hits,
            "errors": self.errors, "unusable": self.rejected, "http_requests": self.http_requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "wall_s": round(self.wall_s, 2)}.items()}


Validator = Callable[[ChatRequest, TeacherReply], "str | None"]


@dataclass
class TeacherBatch:
    replies: list[TeacherReply]
    stats: TeacherStats
    model: str
    cache: TeacherCache | None = field(default=None, repr=False, compare=False)

    def mark_unusable(self, which: int | str | Mapping[int | str, str], reason: str | None = None) -> int:
        """Record that the task's parser rejected replies: ``mark_unusable(index_or_call_id, reason)``
        or ``mark_unusable({index_or_call_id: reason, ...})`` (one cache write for all). They stay
        in the cache with ``rejected_reason`` and are asked again by the next run instead of being
        served as hits. Failed replies (no text) are skipped: they are never hits anyway. Returns
        the calls marked. (``complete(..., validate=...)`` does the same while the batch runs.)"""
        items = list(which.items()) if isinstance(which, Mapping) else [(which, reason)]
        by_id = {r.call_id: r for r in self.replies}
        reasons: dict[str, str] = {}
        for w, why in items:
            if not why:
                raise ValueError("mark_unusable needs a reason")
            reply = self.replies[w] if isinstance(w, int) else by_id[w]
            if reply.ok and reply.rejected_reason is None:
                reasons[reply.call_id] = str(why)
        if not reasons:
            return 0
        for i, reply in enumerate(self.replies):
            if reply.call_id in reasons:
                self.replies[i] = replace(reply, rejected_reason=reasons[reply.call_id])
        if self.cache is not None:
            self.cache.reject(reasons, {k: by_id[k].text for k in reasons})
        self.stats.rejected += len(reasons)
        return len(reasons)


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
    structured_outputs: bool = Field(default=False, description="Send JSON schemas as response_format.")
    max_tokens_param: str = Field(
        default="auto", description="How the completion limit is sent: 'max_completion_tokens' (OpenAI's current "
                                    "name; newer OpenAI models reject 'max_tokens'), 'max_tokens' (vLLM, llama.cpp, "
                                    "transformers serve), or 'auto': the first for api.openai.com, else the second.")
    cache_path: str = Field(description="DuckDB file of every call made.")
    flush_every: int = Field(default=16, description="Ignored, kept so older configurations load: every reply is "
                                                     "journaled as it arrives.")
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
                                         timeout=self.timeout_s, max_retries=0)  # _call retries and counts
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
        usable reply.
        """
        logger = logger or log
        started = time.monotonic()
        limit = self.max_failure_share
        if limit is not None and not 0.0 <= limit <= 1.0:
            raise ValueError(f"max_failure_share must be between 0 and 1 (or None); got {limit!r}")
        limit_name = self.limit_param()  # a configuration error fails here, not as N failed replies
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
        stale: dict[str, tuple[str, str | None]] = {}  # cached replies the validator now rejects
        if validate is not None:
            for key, reply in list(replies.items()):
                reason = _validation(validate, unique[key][0], reply)
                if reason is not None:
                    stale[key] = (reason, reply.text)
                    del replies[key]
        stats.cache_hits = len(replies)
        stats.rejected = len(stale)
        todo = [key for key in unique if key not in replies]
        if stale:
            logger.info(f"teacher: {len(stale)} cached replies rejected by the validator; asking again")
        if todo:
            client, wire_model = self._endpoint(serve_model)
            logger.info(f"teacher {model_id}: {len(todo)} calls to make, {stats.cache_hits} cached "
                        f"(concurrency {self.max_concurrency})")
            done = 0
            last_report = time.monotonic()

            def record(key: str, reply: TeacherReply) -> None:
                nonlocal done
                request, params = unique[key]
                if validate is not None and reply.ok:
                    reason = _validation(validate, request, reply)
                    if reason is not None:
                        reply = replace(reply, rejected_reason=reason)
                        stats.rejected += 1
                replies[key] = reply
                journal.append(CallRecord(reply=reply, model=self._request_identity(request, model_id),
                                          task=request.task, request={"messages": request.wire_messages(), **params}))
                done += 1
                stats.calls_made += 1
                stats.http_requests += reply.attempts
                stats.errors += reply.error is not None
                stats.prompt_tokens += reply.prompt_tokens
                stats.completion_tokens += reply.completion_tokens

            with cache.journal() as journal:
                for key, (reason, text) in stale.items():
                    journal.reject(key, reason, text)
                # At most max_concurrency calls are submitted and not yet journaled: a slot is refilled
                # only once its reply is in the journal, so a kill loses at most that many answers.
                queue = deque(todo)
                outstanding: dict[Future, str] = {}
                pool = ThreadPoolExecutor(max_workers=self.max_concurrency)
                try:
                    while queue or outstanding:
                        while queue and len(outstanding) < self.max_concurrency:
                            key = queue.popleft()
                            outstanding[pool.submit(self._call, client, wire_model, key, *unique[key],
                                                    limit_name)] = key
                        finished, _ = wait(outstanding, return_when=FIRST_COMPLETED)
                        for future in finished:
                            key = outstanding.pop(future)
                            record(key, _result(future, key))
                        if time.monotonic() - last_report >= progress_every_s:
                            elapsed = time.monotonic() - started
                            logger.info(f"teacher: {done}/{len(todo)} calls, {done / elapsed:.2f} calls/s, "
                                        f"{stats.completion_tokens / elapsed:.1f} completion tok/s, "
                                        f"{stats.errors} errors")
                            last_report = time.monotonic()
                finally:
                    # Interrupted (Ctrl-C): the calls in flight finish and are journaled too.
                    pool.shutdown(wait=True)
                    for future, key in outstanding.items():
                        if key not in replies and future.done() and not future.cancelled():
                            record(key, _result(future, key))
            # leaving the block folds the journal into DuckDB (or leaves it for the next open)
        stats.wall_s = time.monotonic() - started
        if todo:
            logger.info(f"teacher: {stats.calls_made} calls ({stats.http_requests} HTTP requests) in "
                        f"{stats.wall_s:.1f}s, {stats.errors} errors, {stats.rejected} rejected, "
                        f"{stats.prompt_tokens}+{stats.completion_tokens} tokens")
        batch = TeacherBatch(replies=[replies[key] for key, _, _ in keyed], stats=stats, model=model_id, cache=cache)
        failed = [r for r in replies.values() if not r.usable]
        if limit is not None and unique and len(failed) / len(unique) > limit:
            reasons: dict[str, int] = {}
            for r in failed:
                why = (r.error or f"rejected: {r.rejected_reason}").split(":")[0]
                reasons[why] = reasons.get(why, 0) + 1
            summary = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
            raise TeacherFailureShareExceeded(
                f"teacher {model_id}: {len(failed)} of {len(unique)} calls ({len(failed) / len(unique):.1%}) failed "
                f"or were rejected, above max_failure_share {limit:.1%} ({summary}). Every answered call is "
                f"cached; a re-run asks only these again.",
                failed=len(failed), total=len(unique), limit=limit, batch=batch)
        return batch

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
        t0 = time.monotonic()
        sent = dict(params)  # the cache key names the limit max_tokens whatever it is sent as
        if "max_tokens" in sent and limit_name != "max_tokens":
            sent[limit_name] = sent.pop("max_tokens")
        attempts = 0
        while True:
            attempts += 1
            stage = "request"
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model=request.model or wire_model, messages=request.wire_messages(), **sent)
                stage = "response"  # answered with a 2xx: what fails from here on is its body
                response = raw.parse()
                choice = response.choices[0] if response.choices else None
                text = choice.message.content if choice is not None and choice.message is not None else None
                if text is not None and not isinstance(text, str):
                    raise TypeError(f"message content is {type(text).__name__}, not a string")
                usage = response.usage
                return TeacherReply(
                    call_id=key, text=text, error=None if text is not None else "empty reply (no message content)",
                    finish_reason=getattr(choice, "finish_reason", None),
                    prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                    completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                    latency_s=time.monotonic() - t0, attempts=attempts)
            except Exception as e:  # noqa: BLE001 - any failure of one call is that call's reply
                delay = self._retry_wait(e, stage, attempts)
                if delay is not None and attempts <= self.max_retries:
                    time.sleep(delay)
                    continue
                error = f"{type(e).__name__}: {e}"
                if stage == "response":
                    error = f"{type(e).__name__}: malformed response body: {e}"
                return TeacherReply(call_id=key, text=None, error=error[:2000],
                                    latency_s=time.monotonic() - t0, attempts=attempts)

    def _retry_wait(self, error: Exception, stage: str, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error`` on attempt ``attempt``; None: do not retry.
        The openai client's rules: 408, 409, 429, 5xx (unless ``x-should-retry: false``), timeouts and
        connection errors; a Retry-After (or retry-after-ms) up to 120 s is honoured, a longer one is
        not waited for. A 2xx whose body does not parse is retried too (a proxy cut it short)."""
        backoff = min(self.retry_backoff_s * 2.0 ** (attempt - 1), 8.0) * (1 - 0.25 * random.random())
        if stage == "response":
            return backoff
        if isinstance(error, openai.APIStatusError):
            headers = error.response.headers
            retry_after = _retry_after(headers)
            if retry_after is not None and retry_after > _MAX_RETRY_AFTER_S:
                return None
            should = (headers.get("x-should-retry") or "").lower()
            if should == "false" or (should != "true" and error.status_code not in (408, 409, 429)
                                     and error.status_code < 500):
                return None
            return retry_after if retry_after is not None else backoff
        if isinstance(error, openai.APIConnectionError):  # timeouts, refused or dropped connections
            return backoff
        return None  # a bad request or a bug on this side: the same again would fail the same way


_MAX_RETRY_AFTER_S = 120.0


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asks to wait (retry-after-ms, retry-after as seconds or an HTTP date)."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
        except ValueError:
            if name == "retry-after-ms":
                continue
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if math.isfinite(seconds):
            return max(seconds, 0.0)
        return _MAX_RETRY_AFTER_S + 1
    return None


def _validation(validate: Validator, request: ChatRequest, reply: TeacherReply) -> str | None:
    """The validator's reason to reject ``reply`` (None: usable); an exception from it is one."""
    try:
        reason = validate(request, reply)
    except Exception as e:  # noqa: BLE001
        return f"validator raised {type(e).__name__}: {e}"[:2000]
    return str(reason) if reason else None


def _result(future: Future, key: str) -> TeacherReply:
    """A finished call's reply; ``_call`` never raises, but should it, the error is the reply."""
    try:
        return future.result()
    except Exception as e:  # noqa: BLE001
        return TeacherReply(call_id=key, text=None, error=f"{type(e).__name__}: {e}"[:2000], attempts=1)
