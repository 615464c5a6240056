"""The teacher resource against a scripted OpenAI-compatible server on loopback."""

import time

import pytest

from phi4_assets.teacher import ChatRequest
from phi4_assets.teacher.cache import TeacherCache
from phi4_assets.teacher.resource import TeacherResource
from stub_openai import StubOpenAI, StubReply, echo


def make_teacher(stub, tmp_path, **kwargs) -> TeacherResource:
    config = dict(base_url=stub.base_url, model="stub-model", cache_path=str(tmp_path / "calls.duckdb"),
                  max_retries=2, timeout_s=5.0, max_concurrency=4)
    config.update(kwargs)
    return TeacherResource(**config)


def ask(*questions, **kwargs):
    return [ChatRequest.of([{"role": "user", "content": q}], task="test", **kwargs) for q in questions]


def test_replies_in_request_order_and_cache_hit_makes_no_http_call(tmp_path):
    with StubOpenAI() as stub:
        teacher = make_teacher(stub, tmp_path)
        first = teacher.complete(ask("a", "b", "c"))
        assert [r.text for r in first.replies] == ["echo: a", "echo: b", "echo: c"]
        assert first.stats.calls_made == 3 and first.stats.cache_hits == 0
        assert first.stats.prompt_tokens == 21 and first.stats.completion_tokens == 9
        assert stub.hits == 3

        again = teacher.complete(ask("c", "a", "b"))
        assert [r.text for r in again.replies] == ["echo: c", "echo: a", "echo: b"]
        assert all(r.cached for r in again.replies)
        assert again.stats.calls_made == 0 and again.stats.cache_hits == 3
        assert stub.hits == 3  # no HTTP call at all


def test_cache_key_covers_model_and_parameters(tmp_path):
    with StubOpenAI() as stub:
        teacher = make_teacher(stub, tmp_path)
        teacher.complete(ask("q"))
        teacher.complete(ask("q", temperature=0.0))
        teacher.complete(ask("q", seed=1))
        make_teacher(stub, tmp_path, model="another-model").complete(ask("q"))
        assert stub.hits == 4
        assert [r.get("seed") for r in stub.requests] == [None, None, 1, None]
        assert stub.requests[1]["temperature"] == 0.0


def test_identical_requests_are_sent_once(tmp_path):
    with StubOpenAI() as stub:
        batch = make_teacher(stub, tmp_path).complete(ask("same", "same", "same"))
        assert stub.hits == 1
        assert [r.text for r in batch.replies] == ["echo: same"] * 3
        assert batch.stats.unique_calls == 1


@pytest.mark.parametrize("status", [500, 429, 503])
def test_retries_on_server_errors_and_rate_limits(tmp_path, status):
    def flaky(request, hit):
        if hit <= 2:
            return StubReply(status=status, headers={"retry-after-ms": "10"})
        return echo(request, hit)

    with StubOpenAI(flaky) as stub:
        batch = make_teacher(stub, tmp_path, max_retries=3).complete(ask("x"))
        reply = batch.replies[0]
        assert reply.ok and reply.text == "echo: x"
        assert reply.attempts == 3
        assert stub.hits == 3


def test_gives_up_after_retries_and_records_the_error_without_caching_it(tmp_path):
    always_down = lambda request, hit: StubReply(status=500, headers={"retry-after-ms": "5"})  # noqa: E731
    with StubOpenAI(always_down) as stub:
        teacher = make_teacher(stub, tmp_path, max_retries=1)
        batch = teacher.complete(ask("x"))
        assert not batch.replies[0].ok
        assert "InternalServerError" in batch.replies[0].error
        assert batch.stats.errors == 1 and stub.hits == 2
        recorded = teacher.cache().calls()
        assert len(recorded) == 1 and recorded["error"].iloc[0].startswith("InternalServerError")
        teacher.complete(ask("x"))  # a failure is not a cache hit: it is tried again
        assert stub.hits == 4


def test_a_400_is_not_retried(tmp_path):
    with StubOpenAI(lambda request, hit: StubReply(status=400)) as stub:
        batch = make_teacher(stub, tmp_path, max_retries=3).complete(ask("x"))
        assert stub.hits == 1
        assert batch.replies[0].error.startswith("BadRequestError")


def test_timeout_becomes_an_error_reply(tmp_path):
    slow = lambda request, hit: StubReply(content="late", delay_s=2.0)  # noqa: E731
    with StubOpenAI(slow) as stub:
        t0 = time.monotonic()
        batch = make_teacher(stub, tmp_path, timeout_s=0.3, max_retries=1).complete(ask("x"))
        elapsed = time.monotonic() - t0
        assert batch.replies[0].error.startswith("APITimeoutError")
        assert stub.hits == 2  # the first try and one retry
        assert elapsed < 1.9  # did not wait for the slow reply


def test_requests_run_concurrently_up_to_the_limit(tmp_path):
    slow = lambda request, hit: StubReply(content="ok", delay_s=0.3)  # noqa: E731
    with StubOpenAI(slow) as stub:
        t0 = time.monotonic()
        batch = make_teacher(stub, tmp_path, max_concurrency=4).complete(ask(*[f"q{i}" for i in range(8)]))
        elapsed = time.monotonic() - t0
        assert all(r.ok for r in batch.replies)
        assert stub.max_in_flight == 4
        assert elapsed < 8 * 0.3 * 0.6  # well under the sequential time


def test_structured_outputs_are_requested_only_when_enabled(tmp_path):
    schema = {"name": "grade", "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}}
    with StubOpenAI() as stub:
        make_teacher(stub, tmp_path).complete(ask("a", json_schema=schema))
        make_teacher(stub, tmp_path, structured_outputs=True).complete(ask("a", json_schema=schema))
        assert "response_format" not in stub.requests[0]
        assert stub.requests[1]["response_format"]["type"] == "json_schema"
        assert stub.requests[1]["response_format"]["json_schema"]["name"] == "grade"


def test_api_key_goes_in_the_header_and_nowhere_in_the_cache(tmp_path):
    with StubOpenAI() as stub:
        teacher = make_teacher(stub, tmp_path, api_key="sk-secret-123")
        teacher.complete(ask("a"))
        assert stub.headers[0]["authorization"] == "Bearer sk-secret-123"
        assert "sk-secret-123" not in teacher.cache().calls().to_json()


def test_a_failing_run_keeps_every_answered_reply(tmp_path):
    """Every reply is journaled as it arrives and folded into the cache; what was answered is not asked again."""
    stop_after = 5

    def dies(request, hit):
        return StubReply(drop=True) if hit > stop_after else echo(request, hit)

    with StubOpenAI(dies) as stub:
        teacher = make_teacher(stub, tmp_path, max_concurrency=1, max_retries=0, timeout_s=2)
        batch = teacher.complete(ask(*[f"q{i}" for i in range(8)]))
        assert sum(r.ok for r in batch.replies) == stop_after
    cached = TeacherCache(tmp_path / "calls.duckdb").lookup([r.call_id for r in batch.replies])
    assert len(cached) == stop_after

    with StubOpenAI() as stub:
        teacher = make_teacher(stub, tmp_path)
        again = teacher.complete(ask(*[f"q{i}" for i in range(8)]))
        assert all(r.ok for r in again.replies)
        assert stub.hits == 8 - stop_after


def test_two_processes_writing_the_cache_at_once_do_not_fail(tmp_path):
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from phi4_assets.teacher.cache import TeacherCache, CallRecord\n"
        "from phi4_assets.teacher.types import TeacherReply\n"
        "cache = TeacherCache(sys.argv[1])\n"
        "for i in range(40):\n"
        "    cache.store([CallRecord(TeacherReply(call_id=f'{sys.argv[2]}-{i}', text='t'), 'm', 'x', {})])\n"
    )
    path = tmp_path / "shared.duckdb"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), tag]) for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(TeacherCache(path).calls()) == 80


def test_the_completion_limit_is_sent_under_the_name_the_endpoint_wants(tmp_path):
    with StubOpenAI() as stub:
        make_teacher(stub, tmp_path).complete(ask("a", max_tokens=7))  # a local server: max_tokens
        forced = make_teacher(stub, tmp_path, max_tokens_param="max_completion_tokens", cache_path=str(tmp_path / "b"))
        forced.complete(ask("a", max_tokens=7))
        assert stub.requests[0]["max_tokens"] == 7 and "max_completion_tokens" not in stub.requests[0]
        assert stub.requests[1]["max_completion_tokens"] == 7 and "max_tokens" not in stub.requests[1]
    # auto: OpenAI's own API gets max_completion_tokens; the cache key is the same either way.
    openai_api = TeacherResource(base_url="https://api.openai.com/v1", model="gpt-4o", cache_path=str(tmp_path / "c"))
    vllm = TeacherResource(base_url="http://gpu-box:8000/v1", model="gpt-4o", cache_path=str(tmp_path / "d"))
    assert (openai_api.limit_param(), vllm.limit_param()) == ("max_completion_tokens", "max_tokens")
    request = ask("a", max_tokens=7)[0]
    assert openai_api.request_key(request, "gpt-4o") == vllm.request_key(request, "gpt-4o")
    with pytest.raises(ValueError, match="max_tokens_param"):
        TeacherResource(base_url="http://x/v1", cache_path="e", max_tokens_param="tokens").limit_param()
