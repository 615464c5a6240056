"""The embedded endpoint: ``transformers serve`` over a model directory, end to end."""

import urllib.request

import pytest

from phi4_assets.teacher import ChatRequest
from phi4_assets.teacher.embedded import EmbeddedServer, EmbeddedServerError
from phi4_assets.teacher.resource import TeacherResource


def test_embedded_server_starts_answers_and_stops(tiny_model_dir, tmp_path):
    teacher = TeacherResource(cache_path=str(tmp_path / "calls.duckdb"), max_tokens=8, log_dir=str(tmp_path))
    request = ChatRequest.of([{"role": "user", "content": "What is the capital of France?"}], task="smoke")
    batch = teacher.complete([request], serve_model=str(tiny_model_dir))
    server = teacher._server
    assert server is not None and server.running
    port = server.port
    reply = batch.replies[0]
    assert reply.ok, reply.error
    assert isinstance(reply.text, str) and reply.completion_tokens > 0
    assert batch.model.startswith("embedded:")

    again = teacher.complete([request], serve_model=str(tiny_model_dir))
    assert again.stats.cache_hits == 1 and again.stats.calls_made == 0

    teacher.close()
    assert not server.running
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


def test_a_server_that_cannot_start_says_why(tmp_path):
    (tmp_path / "empty-model").mkdir()
    server = EmbeddedServer(tmp_path / "empty-model", log_path=tmp_path / "serve.log", startup_timeout_s=120)
    with pytest.raises(EmbeddedServerError, match="exited with code"):
        server.start()
    assert not server.running
