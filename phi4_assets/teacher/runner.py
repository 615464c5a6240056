"""The batch runner behind ``TeacherResource.complete``: cache first, then the calls left,
concurrently, each reply journaled as it arrives.

``run_batch`` keys every request, answers what the cache holds (less what the task's validator
now rejects), sends each distinct call left once with at most ``max_concurrency`` in flight,
and journals every reply before the next one is awaited, so a kill loses at most the calls in
flight. It knows no endpoint: ``connect()`` returns the function that makes one call (see
``call.py``), and is called only where there is a call to make. With ``max_failure_share``
set it raises ``TeacherFailureShareExceeded`` at the end, after the journal is folded.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any

from .batch import TeacherBatch, TeacherStats, Validator, validation
from .cache import CallRecord, TeacherCache
from .types import ChatRequest, TeacherFailureShareExceeded, TeacherReply

Call = Callable[[str, ChatRequest, dict], TeacherReply]  # (key, request, params) -> reply; never raises


def check_failure_share(limit: float | None) -> None:
    """A ``max_failure_share`` is None or a share between 0 and 1."""
    if limit is not None and not 0.0 <= limit <= 1.0:
        raise ValueError(f"max_failure_share must be between 0 and 1 (or None); got {limit!r}")


def run_batch(requests: Sequence[ChatRequest], *, model_id: str,
              key_of: Callable[[ChatRequest], tuple[str, dict]], identity_of: Callable[[ChatRequest], str],
              cache: TeacherCache, connect: Callable[[], Call], max_concurrency: int,
              max_failure_share: float | None, logger: Any, progress_every_s: float,
              max_error_share: float | None = None,
              validate: Validator | None, started: float) -> TeacherBatch:
    """Answer every request, in request order (see ``TeacherResource.complete``). ``key_of``: a
    request's cache key and the parameters sent with it; ``identity_of``: the model a request's
    call is recorded under; ``started``: the ``time.monotonic()`` the batch's wall time counts from."""
    limit = max_failure_share
    stats = TeacherStats(requests=len(requests))
    keyed: list[tuple[str, ChatRequest, dict]] = []
    for request in requests:
        key, params = key_of(request)
        keyed.append((key, request, params))
        stats.by_task[request.task] = stats.by_task.get(request.task, 0) + 1
    unique = {key: (request, params) for key, request, params in keyed}
    stats.unique_calls = len(unique)

    replies: dict[str, TeacherReply] = cache.lookup(list(unique))
    stale: dict[str, tuple[str, str | None]] = {}  # cached replies the validator now rejects
    if validate is not None:
        for key, reply in list(replies.items()):
            reason = validation(validate, unique[key][0], reply)
            if reason is not None:
                stale[key] = (reason, reply.text)
                del replies[key]
    stats.cache_hits = len(replies)
    stats.rejected = len(stale)
    todo = [key for key in unique if key not in replies]
    if stale:
        logger.info(f"teacher: {len(stale)} cached replies rejected by the validator; asking again")
    if todo:
        call = connect()
        logger.info(f"teacher {model_id}: {len(todo)} calls to make, {stats.cache_hits} cached "
                    f"(concurrency {max_concurrency})")
        done = 0
        last_report = time.monotonic()

        def record(key: str, reply: TeacherReply) -> None:
            nonlocal done
            request, params = unique[key]
            if validate is not None and reply.ok:
                reason = validation(validate, request, reply)
                if reason is not None:
                    reply = replace(reply, rejected_reason=reason)
                    stats.rejected += 1
            replies[key] = reply
            journal.append(CallRecord(reply=reply, model=identity_of(request),
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
            pool = ThreadPoolExecutor(max_workers=max_concurrency)
            try:
                while queue or outstanding:
                    while queue and len(outstanding) < max_concurrency:
                        key = queue.popleft()
                        outstanding[pool.submit(call, key, *unique[key])] = key
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
    errors = [r for r in failed if r.error is not None]
    for share, name, what, counted in ((limit, "max_failure_share", "failed or were rejected", failed),
                                       (max_error_share, "max_error_share", "got no reply", errors)):
        if share is not None and unique and len(counted) / len(unique) > share:
            reasons: dict[str, int] = {}
            for r in counted:
                why = (r.error or f"rejected: {r.rejected_reason}").split(":")[0]
                reasons[why] = reasons.get(why, 0) + 1
            summary = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
            raise TeacherFailureShareExceeded(
                f"teacher {model_id}: {len(counted)} of {len(unique)} calls ({len(counted) / len(unique):.1%}) "
                f"{what}, above {name} {share:.1%} ({summary}). Every answered call is cached; a re-run asks "
                f"only these again.", failed=len(counted), total=len(unique), limit=share, batch=batch)
    return batch


def _result(future: Future, key: str) -> TeacherReply:
    """A finished call's reply; the call never raises, but should it, the error is the reply."""
    try:
        return future.result()
    except Exception as e:  # noqa: BLE001
        return TeacherReply(call_id=key, text=None, error=f"{type(e).__name__}: {e}"[:2000], attempts=1)
