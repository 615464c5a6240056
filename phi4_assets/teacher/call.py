"""One teacher call over HTTP, with its retries; it never raises.

``call_with_retries`` sends one chat completion through an OpenAI-compatible client (the
client's own retries off) and turns whatever happens into a ``TeacherReply``: the answer, or
the error of the last attempt; ``attempts`` counts every HTTP request made. ``RetryPolicy``
decides whether a failed attempt is tried again and after how long: the openai client's rules
(408, 409, 429, 5xx unless ``x-should-retry: false``, timeouts and dropped connections), with
exponential backoff and jitter, a Retry-After of up to ``MAX_RETRY_AFTER_S`` honoured and a
longer one ending the retries; a 2xx whose body does not parse is retried too. The client's
error classes are handed in, so this module needs no client library of its own.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from typing import Any

from .types import ChatRequest, TeacherReply

MAX_RETRY_AFTER_S = 120.0


def retry_after(headers: Any) -> float | None:
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
        return MAX_RETRY_AFTER_S + 1
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt is tried again: ``max_retries`` retries after the first attempt,
    waiting ``backoff_s`` at first, doubled per retry. ``status_error`` is the client's error for
    an HTTP error status (with ``status_code`` and ``response.headers``), ``connection_error``
    its error for timeouts, refused and dropped connections."""

    max_retries: int
    backoff_s: float
    status_error: type[BaseException]
    connection_error: type[BaseException]

    def wait(self, error: Exception, stage: str, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error`` on attempt ``attempt``; None: do not retry.
        The openai client's rules: 408, 409, 429, 5xx (unless ``x-should-retry: false``), timeouts and
        connection errors; a Retry-After (or retry-after-ms) up to 120 s is honoured, a longer one is
        not waited for. A 2xx whose body does not parse is retried too (a proxy cut it short)."""
        backoff = min(self.backoff_s * 2.0 ** (attempt - 1), 8.0) * (1 - 0.25 * random.random())
        if stage == "response":
            return backoff
        if isinstance(error, self.status_error):
            headers = error.response.headers
            asked = retry_after(headers)
            if asked is not None and asked > MAX_RETRY_AFTER_S:
                return None
            should = (headers.get("x-should-retry") or "").lower()
            if should == "false" or (should != "true" and error.status_code not in (408, 409, 429)
                                     and error.status_code < 500):
                return None
            return asked if asked is not None else backoff
        if isinstance(error, self.connection_error):  # timeouts, refused or dropped connections
            return backoff
        return None  # a bad request or a bug on this side: the same again would fail the same way


def call_with_retries(client: Any, wire_model: str, key: str, request: ChatRequest, params: dict,
                      limit_name: str, retry: RetryPolicy) -> TeacherReply:
    """One call with its retries; never raises (but for KeyboardInterrupt / SystemExit).
    ``client``: an ``openai.OpenAI`` (or alike) built with ``max_retries=0``; ``params``: the
    parameters as keyed, the completion limit named ``max_tokens`` and sent as ``limit_name``."""
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
            delay = retry.wait(e, stage, attempts)
            if delay is not None and attempts <= retry.max_retries:
                time.sleep(delay)
                continue
            error = f"{type(e).__name__}: {e}"
            if stage == "response":
                error = f"{type(e).__name__}: malformed response body: {e}"
            return TeacherReply(call_id=key, text=None, error=error[:2000],
                                latency_s=time.monotonic() - t0, attempts=attempts)
