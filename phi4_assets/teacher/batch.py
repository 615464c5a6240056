"""What a batch of teacher calls returns, and the task's parser that may reject replies.

``TeacherBatch`` is the result of ``TeacherResource.complete``: the replies in request order,
the batch's counts (``TeacherStats``) and ``mark_unusable`` for a parser that rejects replies
after the fact. ``Validator`` is the signature of a parser that rejects them while the batch
runs; ``validation`` applies one, and ``text_validator`` makes one of a parser's check of the
reply text alone (the tasks' ``*_problem(text)`` functions).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .cache import TeacherCache
from .types import ChatRequest, TeacherReply


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


def text_validator(problem: Callable[[str | None], str | None]) -> Validator:
    """A ``Validator`` that asks ``problem(reply.text) -> reason | None`` (the task's parser)."""
    def validate(request: ChatRequest, reply: TeacherReply) -> str | None:
        return problem(reply.text)
    return validate


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


def validation(validate: Validator, request: ChatRequest, reply: TeacherReply) -> str | None:
    """The validator's reason to reject ``reply`` (None: usable); an exception from it is one."""
    try:
        reason = validate(request, reply)
    except Exception as e:  # noqa: BLE001
        return f"validator raised {type(e).__name__}: {e}"[:2000]
    return str(reason) if reason else None
