"""Plain data for teacher requests and replies."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.ids import content_hash


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion. ``seed`` tells apart repeated samples of the same prompt (it is
    sent to the endpoint and is part of the cache key)."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    task: str = "chat"  # what the call is for: answer_check, refusal, judge, ... (metadata only)
    temperature: float | None = None  # None: the resource's default
    max_tokens: int | None = None
    seed: int | None = None
    json_schema: dict | None = field(default=None, hash=False)  # {"name": ..., "schema": {...}}
    model: str | None = None  # another model at the same endpoint (None: the resource's model)

    @classmethod
    def of(cls, messages: list[dict] | list[tuple[str, str]], **kwargs) -> "ChatRequest":
        pairs = tuple((m["role"], m["content"]) if isinstance(m, dict) else (m[0], m[1]) for m in messages)
        return cls(messages=pairs, **kwargs)

    def wire_messages(self) -> list[dict]:
        return [{"role": role, "content": content} for role, content in self.messages]


def call_key(model_id: str, messages: list[dict], params: dict) -> str:
    """The cache key of a call: a hash of (model, messages, parameters)."""
    return "call-" + content_hash({"model": model_id, "messages": messages, "params": params}, length=24)


@dataclass(frozen=True)
class TeacherReply:
    call_id: str
    text: str | None
    error: str | None = None
    cached: bool = False
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 0  # HTTP requests made for this reply (1 + retries); of the original call where cached
    rejected_reason: str | None = None  # why the task's parser rejected ``text`` (``validate`` / ``mark_unusable``)

    @property
    def ok(self) -> bool:
        """The endpoint answered with content (whether or not the task's parser accepted it)."""
        return self.error is None and self.text is not None

    @property
    def usable(self) -> bool:
        """Answered, and not rejected by the task's parser: what the cache serves as a hit."""
        return self.ok and self.rejected_reason is None


class TeacherFailureShareExceeded(RuntimeError):
    """More of a batch's calls failed or were rejected than ``max_failure_share`` allows. Raised
    after every answered call is in the cache; ``batch`` is the batch as it would have returned."""

    def __init__(self, message: str, *, failed: int, total: int, limit: float, batch=None):
        super().__init__(message)
        self.failed, self.total, self.limit, self.batch = failed, total, limit, batch

    @property
    def share(self) -> float:
        return self.failed / self.total if self.total else 0.0
