"""The teacher resource against a faulty OpenAI-compatible server: what reaches the cache, what
a re-run asks again, and what a kill -9 mid-batch costs."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from phi4_assets.teacher import ChatRequest
from phi4_assets.teacher.cache import CallRecord, TeacherCache
from phi4_assets.teacher.resource import TeacherResource
from phi4_assets.teacher.types import TeacherFailureShareExceeded, TeacherReply
from stub_openai import StubOpenAI, StubReply

FATES = ["ok", "429", "500", "hang", "truncated", "garbage"]
TIMEOUT_S = 0.4
MAX_RETRIES = 2


def prompt_of(request: dict) -> str:
    return request["messages"][-1]["content"]


def good(request: dict) -> StubReply:
    return StubReply(content="answer: " + prompt_of(request))


class FaultyServer:
    """A scripted endpoint giving each prompt a seeded fate: ok; 429 with Retry-After: 0 on its
    first try (then ok); 500 every time; a hang longer than the client's timeout (then the
    connection is dropped); a 200 whose JSON body is cut in half; a 200 with garbage content.
    ``heal()`` makes every later reply good."""

    def __init__(self, prompts: list[str], seed: int = 7):
        fates = (FATES * (len(prompts) // len(FATES) + 1))[:len(prompts)]
        random.Random(seed).shuffle(fates)
        self.fate = dict(zip(prompts, fates))
        self.healed = False
        self._seen: Counter = Counter()
        self._lock = threading.Lock()
        self.stub = StubOpenAI(self.script)

    def script(self, request: dict, hit: int) -> StubReply:
        prompt = prompt_of(request)
        with self._lock:
            self._seen[prompt] += 1
            nth = self._seen[prompt]
        fate = "ok" if self.healed else self.fate[prompt]
        if fate == "429" and nth == 1:
            return StubReply(status=429, headers={"retry-after": "0"})
        if fate == "500":
            return StubReply(status=500)
        if fate == "hang":
            return StubReply(delay_s=TIMEOUT_S * 2.5, drop=True)
        if fate == "truncated":
            body = json.dumps(good(request).payload(request)).encode()
            return StubReply(raw=body[: len(body) // 2])
        if fate == "garbage":
            return StubReply(content="\x00%%## <<garbage>> ##%%")
        return good(request)

    def received(self, since: int = 0) -> Counter:
        return Counter(prompt_of(r) for r in self.stub.requests[since:])

    def answered(self) -> Counter:
        return Counter(prompt_of(r) for r in list(self.stub.answered))

    def __enter__(self) -> "FaultyServer":
        self.stub.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.stub.__exit__(*exc)


def validate(request: ChatRequest, reply: TeacherReply) -> str | None:
    """The task's parser: a reply must read ``answer: <the question>``."""
    return None if reply.text == "answer: " + request.messages[-1][1] else "not an answer"


def teacher_for(url: str, cache_path: Path, **kwargs) -> TeacherResource:
    config = dict(base_url=url, model="stub-model", cache_path=str(cache_path), max_retries=MAX_RETRIES,
                  timeout_s=TIMEOUT_S, retry_backoff_s=0.01, max_concurrency=8)
    config.update(kwargs)
    return TeacherResource(**config)


def ask(prompts) -> list[ChatRequest]:
    return [ChatRequest.of([("user", p)], task="fault-test") for p in prompts]


def rows_by_prompt(cache: TeacherCache) -> dict[str, dict]:
    calls = cache.calls()
    return {json.loads(r["request"])["messages"][-1]["content"]: r for r in calls.to_dict("records")}


def test_every_answered_call_is_cached_failures_carry_real_attempts_and_a_rerun_repeats_only_those(tmp_path):
    prompts = [f"q{i:02d}" for i in range(36)]
    cache_path = tmp_path / "calls.duckdb"
    with FaultyServer(prompts) as server:
        teacher = teacher_for(server.stub.base_url, cache_path, max_failure_share=0.2)
        t0 = time.monotonic()
        with pytest.raises(TeacherFailureShareExceeded) as failed:
            teacher.complete(ask(prompts), validate=validate)
        first_wall = time.monotonic() - t0
        bad = {p for p, f in server.fate.items() if f in ("500", "hang", "truncated", "garbage")}
        assert f"{len(bad)} of {len(prompts)} calls ({len(bad) / len(prompts):.1%})" in str(failed.value)
        assert "above max_failure_share 20.0%" in str(failed.value)
        assert failed.value.share == len(bad) / len(prompts) and failed.value.batch is not None

        # Server side: every prompt it received has a row, whose attempts are the requests it saw.
        assert not list(TeacherCache(cache_path).journal_dir.glob("*")), "the journal was folded"
        received, answered = server.received(), server.answered()
        rows = rows_by_prompt(TeacherCache(cache_path))
        assert set(received) == set(prompts) and set(answered) <= set(rows) and set(rows) == set(prompts)
        table = {}
        for fate in FATES:
            mine = [p for p in prompts if server.fate[p] == fate]
            table[fate] = {"prompts": len(mine), "http_received": sum(received[p] for p in mine),
                           "http_answered": sum(answered[p] for p in mine), "rows": sum(p in rows for p in mine),
                           "row_attempts": sum(int(rows[p]["attempts"]) for p in mine)}
            for p in mine:
                row = rows[p]
                assert row["attempts"] == received[p], (fate, p)  # counted, not assumed
                if fate == "ok":
                    assert row["response"] == f"answer: {p}" and row["attempts"] == 1
                elif fate == "429":
                    assert row["response"] == f"answer: {p}" and row["attempts"] == 2 and pd.isna(row["error"])
                elif fate == "garbage":
                    assert row["rejected_reason"] == "not an answer" and "garbage" in row["response"]
                    assert row["attempts"] == 1 and pd.isna(row["error"])
                else:
                    expected = {"500": "InternalServerError", "hang": "APITimeoutError",
                                "truncated": "JSONDecodeError"}[fate]
                    assert row["error"].startswith(expected) and pd.isna(row["response"])
                    assert row["attempts"] == MAX_RETRIES + 1

        # A re-run against the healed server asks again exactly the failed and rejected calls.
        server.healed = True
        before = len(server.stub.requests)
        again = teacher_for(server.stub.base_url, cache_path, max_failure_share=0.2).complete(
            ask(prompts), validate=validate)
        repeated = server.received(since=before)
        assert set(repeated) == bad and all(n == 1 for n in repeated.values())
        assert again.stats.calls_made == len(bad) and again.stats.cache_hits == len(prompts) - len(bad)
        assert all(r.usable for r in again.replies)
        for fate in FATES:
            table[fate]["repeated_by_rerun"] = sum(repeated[p] for p in prompts if server.fate[p] == fate)

        before = len(server.stub.requests)
        assert teacher.complete(ask(prompts), validate=validate).stats.calls_made == 0
        assert len(server.stub.requests) == before
    print(f"\nfirst run {first_wall:.2f}s")
    print(pd.DataFrame(table).T.to_string())


def test_any_exception_of_one_call_is_its_failed_reply_and_spares_its_siblings(tmp_path, monkeypatch):
    def script(request, hit):
        if prompt_of(request) == "odd-body":
            return StubReply(body={"choices": "not a list of choices"})
        return good(request)

    with StubOpenAI(script) as stub:
        teacher = teacher_for(stub.base_url, tmp_path / "c.duckdb")
        client, _ = teacher._endpoint(None)
        raw = client.chat.completions.with_raw_response
        original = raw.create

        def create(**kwargs):
            if kwargs["messages"][-1]["content"] == "boom":
                raise ValueError("a bug before the request was sent")
            return original(**kwargs)

        monkeypatch.setattr(raw, "create", create)
        batch = teacher.complete(ask(["a", "boom", "odd-body", "b"]))
        by = {r.call_id: r for r in batch.replies}
        a, boom, odd, b = batch.replies
        assert a.usable and b.usable
        assert boom.error == "ValueError: a bug before the request was sent" and boom.attempts == 1  # not retried
        assert odd.error.startswith("AttributeError: malformed response body") and odd.attempts == MAX_RETRIES + 1
        assert batch.stats.errors == 2 and batch.stats.http_requests == 1 + 1 + 3 + 1
        rows = teacher.cache().calls().set_index("call_id")
        assert set(rows.index) == set(by) and rows.loc[boom.call_id, "attempts"] == 1


def test_retry_after_is_honoured_and_a_long_one_ends_the_retries(tmp_path):
    def script(request, hit):
        if prompt_of(request) == "later":
            return StubReply(status=429, headers={"retry-after": "600"})
        return StubReply(status=503, headers={"retry-after": "0.3"}) if hit == 1 else good(request)

    with StubOpenAI(script) as stub:
        teacher = teacher_for(stub.base_url, tmp_path / "c.duckdb", max_concurrency=1, retry_backoff_s=5.0)
        t0 = time.monotonic()
        soon = teacher.complete(ask(["soon"])).replies[0]
        assert soon.usable and soon.attempts == 2 and 0.3 <= time.monotonic() - t0 < 2.0  # not the 5 s backoff
        later = teacher.complete(ask(["later"])).replies[0]
        assert later.error.startswith("RateLimitError") and later.attempts == 1


def test_validate_rejects_cached_replies_and_mark_unusable_sends_them_again(tmp_path):
    with StubOpenAI(lambda request, hit: good(request)) as stub:
        teacher = teacher_for(stub.base_url, tmp_path / "c.duckdb")
        first = teacher.complete(ask(["a", "b", "c", "d"]))
        assert stub.hits == 4 and all(r.usable for r in first.replies)

        # The caller's parser, after the fact: one cache write, the rows stay with their reason.
        assert first.mark_unusable({1: "unparseable: no JSON", first.replies[2].call_id: "low quality"}) == 2
        assert [r.rejected_reason for r in first.replies] == [None, "unparseable: no JSON", "low quality", None]
        rows = teacher.cache().calls().set_index("call_id")
        assert rows.loc[first.replies[1].call_id, "rejected_reason"] == "unparseable: no JSON"

        # A validator that now rejects a cached reply (or raises) sends it again in this run.
        def strict(request, reply):
            if request.messages[-1][1] == "d":
                raise ValueError("cannot parse")
            return None

        second = teacher.complete(ask(["a", "b", "c", "d"]), validate=strict)
        assert stub.hits == 4 + 3 and second.stats.cache_hits == 1 and second.stats.calls_made == 3
        assert second.replies[3].rejected_reason == "validator raised ValueError: cannot parse"
        assert [r.usable for r in second.replies] == [True, True, True, False]
        third = teacher.complete(ask(["a", "b", "c", "d"]))  # no validator: "d" is still unusable
        assert stub.hits == 8 and third.stats.calls_made == 1 and all(r.usable for r in third.replies)


def test_journals_of_dead_writers_are_folded_and_live_ones_left_alone(tmp_path):
    cache = TeacherCache(tmp_path / "c.duckdb")

    def record(call_id, text="t"):
        return CallRecord(TeacherReply(call_id=call_id, text=text, attempts=1), "m", "x", {})

    dead = cache.journal()
    dead.append(record("dead-1"))
    dead.append(record("dead-2"))
    dead._file.write('{"op": "call", "call_id": "torn", "respo')  # a kill mid-line
    dead._file.flush()
    dead.close(fold=False)  # as if killed: unlocked, never folded
    live = cache.journal()
    live.append(record("live-1"))
    assert set(cache.lookup(["dead-1", "dead-2", "torn", "live-1"])) == {"dead-1", "dead-2"}
    assert not dead.path.exists() and live.path.exists()
    live.close()
    assert set(cache.lookup(["dead-1", "dead-2", "torn", "live-1"])) == {"dead-1", "dead-2", "live-1"}
    assert not list(cache.journal_dir.glob("*"))


def test_a_cache_written_before_rejections_were_recorded_and_an_old_config_still_work(tmp_path):
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE teacher_calls (call_id VARCHAR PRIMARY KEY, model VARCHAR, task VARCHAR, "
                "request VARCHAR, response VARCHAR, finish_reason VARCHAR, prompt_tokens INTEGER, "
                "completion_tokens INTEGER, latency_s DOUBLE, attempts INTEGER, error VARCHAR, created_at TIMESTAMP)")
    con.execute("INSERT INTO teacher_calls VALUES ('old', 'm', 'x', '{}', 'kept', 'stop', 1, 1, 0.1, 1, NULL, "
                "now()::TIMESTAMP)")
    con.close()
    cache = TeacherCache(path)
    assert cache.lookup(["old"])["old"].text == "kept"
    cache.reject({"old": "stale"})
    assert cache.lookup(["old"]) == {} and cache.calls()["rejected_reason"].tolist() == ["stale"]
    assert TeacherResource(base_url="http://x/v1", cache_path=str(path), flush_every=4).flush_every == 4


KILLED_CHILD = """
import sys
from phi4_assets.teacher import ChatRequest
from phi4_assets.teacher.resource import TeacherResource
url, cache, n, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
teacher = TeacherResource(base_url=url, model="stub-model", cache_path=cache, max_concurrency=concurrency,
                          max_retries=0, timeout_s=10)
teacher.complete([ChatRequest.of([("user", f"k{i:02d}")], task="fault-test") for i in range(n)])
print("finished", flush=True)
"""


def test_a_kill_9_mid_batch_repeats_at_most_the_calls_in_flight(tmp_path):
    n, concurrency, kill_after = 40, 4, 12
    cache_path = tmp_path / "calls.duckdb"
    slow = {"on": True}

    def script(request, hit):  # 50-250 ms a reply (seeded per prompt), so replies do not arrive in waves
        delay = 0.05 + 0.2 * random.Random(prompt_of(request)).random()
        return StubReply(content="answer: " + prompt_of(request), delay_s=delay if slow["on"] else 0.0)

    with StubOpenAI(script) as stub:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                              os.environ.get("PYTHONPATH", "")])}
        child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, stub.base_url, str(cache_path), str(n),
                                  str(concurrency)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(stub.answered) < kill_after:
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child never got going"
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        time.sleep(0.3)  # let the server finish the requests that were in flight
        answered_before = Counter(prompt_of(r) for r in list(stub.answered))
        assert kill_after <= sum(answered_before.values()) < n, "killed mid-batch"

        slow["on"] = False
        before = len(stub.requests)
        again = TeacherResource(base_url=stub.base_url, model="stub-model", cache_path=str(cache_path),
                                max_concurrency=concurrency).complete(
            [ChatRequest.of([("user", f"k{i:02d}")], task="fault-test") for i in range(n)])
        asked_again = Counter(prompt_of(r) for r in stub.requests[before:])
    assert all(r.usable for r in again.replies)
    repeated = {p for p in asked_again if answered_before[p]}
    print(f"\nkill -9 after {sum(answered_before.values())} answers: {len(repeated)} answered calls asked again "
          f"(in flight: {concurrency}); re-run made {again.stats.calls_made} calls, "
          f"{again.stats.cache_hits} cached")
    assert len(repeated) <= concurrency
    assert all(answered_before[p] + asked_again[p] <= 2 for p in asked_again)  # each at most once more
    assert again.stats.cache_hits >= sum(answered_before.values()) - concurrency


def test_calls_without_a_reply_fail_the_batch_past_max_error_share_while_rejections_do_not(tmp_path):
    prompts = [f"q{i:02d}" for i in range(10)]
    down = set(prompts[:3])  # 30% of the calls never get a reply: 500 on every attempt
    garbage = set(prompts[3:8])  # 50% get a reply the task rejects (its rules would replace it)

    def script(request: dict, hit: int) -> StubReply:
        prompt = prompt_of(request)
        if prompt in down:
            return StubReply(status=500)
        return StubReply(content="<<garbage>>") if prompt in garbage else good(request)

    with StubOpenAI(script) as stub:
        with pytest.raises(TeacherFailureShareExceeded) as failed:
            teacher_for(stub.base_url, tmp_path / "a.duckdb", max_error_share=0.2).complete(
                ask(prompts), validate=validate)
        assert "3 of 10 calls (30.0%) got no reply, above max_error_share 20.0% (3 InternalServerError)" in str(
            failed.value)
        # Rejections alone do not count: 3 errors are under a 40% limit, and the batch comes back.
        batch = teacher_for(stub.base_url, tmp_path / "b.duckdb", max_error_share=0.4).complete(
            ask(prompts), validate=validate)
        assert sum(r.error is not None for r in batch.replies) == 3
        assert sum(r.rejected_reason is not None for r in batch.replies) == 5


def test_every_profile_gives_its_teacher_the_error_share():
    from phi4_assets.config.profiles import PROFILES
    from phi4_assets.config.settings import Paths

    for profile in PROFILES.values():
        assert TeacherResource.from_profile(profile, Paths.from_env()).max_error_share == 0.2
