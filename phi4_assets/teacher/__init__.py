"""The teacher: one OpenAI-compatible client, its call cache, and the embedded server."""

from .types import ChatRequest, TeacherReply

__all__ = ["ChatRequest", "TeacherReply"]
