"""The embedded endpoint over a model directory, end to end: the batched server (the default) and
``transformers serve``."""

import os
import urllib.request
from pathlib import Path

import pytest

from phi4_assets.teacher import ChatRequest
from phi4_assets.teacher.embedded import EmbeddedServer, EmbeddedServerError
from phi4_assets.teacher.resource import TeacherResource


@pytest.mark.parametrize("kind", ["batched", "transformers"])
def test_embedded_server_starts_answers_and_stops(tiny_model_dir, tmp_path, kind):
    teacher = TeacherResource(cache_path=str(tmp_path / "calls.duckdb"), max_tokens=8, log_dir=str(tmp_path),
                              **({} if kind == "batched" else {"embedded_server": kind}))
    try:
        _starts_answers_and_stops(teacher, tiny_model_dir, kind)
    finally:
        teacher.close()  # also when an assertion fails: a leaked server holds its memory


def test_an_unknown_embedded_server_is_refused(tiny_model_dir, tmp_path):
    teacher = TeacherResource(cache_path=str(tmp_path / "calls.duckdb"), embedded_server="llamafile")
    request = ChatRequest.of([{"role": "user", "content": "Hi"}], task="smoke")
    with pytest.raises(ValueError, match="embedded_server must be batched or transformers; got 'llamafile'"):
        teacher.complete([request], serve_model=str(tiny_model_dir))


def _starts_answers_and_stops(teacher: TeacherResource, tiny_model_dir, kind: str) -> None:
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
    command = server.command()
    if kind == "transformers":
        # Its KV cache is sized from the load it serves, not from the free memory (left to itself,
        # transformers serve took 14 GB of a 23 GB machine after the first request).
        assert "transformers" in command[2] and command[command.index("--cb-num-blocks") + 1] == "65"
        assert teacher.embedded_kv_cache_tokens() == 8 * (2048 + 8)
    else:  # one batch holds every request in flight
        assert command[2] == "phi4_assets.teacher.batched_server" and command[command.index("--max-batch") + 1] == "8"
    assert _group_rss_gb(server._proc.pid) < 3.0

    teacher.close()
    assert not server.running
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)


def test_a_process_that_exits_without_stopping_its_server_leaves_none_behind(tiny_model_dir, tmp_path):
    import subprocess
    import sys

    script = ("import sys; from phi4_assets.teacher.embedded import EmbeddedServer; "
              "s = EmbeddedServer(sys.argv[1], log_path=sys.argv[2]).start(); print(s._proc.pid, flush=True)")
    out = subprocess.run([sys.executable, "-c", script, str(tiny_model_dir), str(tmp_path / "serve.log")],
                         capture_output=True, text=True, timeout=300, check=True)
    pid = int(out.stdout.split()[-1])
    try:
        os.kill(pid, 0)
        alive = True
        os.killpg(pid, 9)  # left behind: clean up before failing
    except ProcessLookupError:
        alive = False
    assert not alive


def _group_rss_gb(pgid: int) -> float:
    """Resident memory of every process in the process group ``pgid``, in GB."""
    total_kb = 0
    for stat in Path("/proc").glob("[0-9]*/status"):
        try:
            pid = int(stat.parent.name)
            if os.getpgid(pid) != pgid:
                continue
            fields = dict(line.split(":", 1) for line in stat.read_text().splitlines() if ":" in line)
        except (OSError, ValueError):
            continue
        total_kb += int(fields.get("VmRSS", "0 kB").split()[0])
    return total_kb / 1e6


def test_a_server_that_cannot_start_says_why(tmp_path):
    (tmp_path / "empty-model").mkdir()
    server = EmbeddedServer(tmp_path / "empty-model", log_path=tmp_path / "serve.log", startup_timeout_s=120)
    with pytest.raises(EmbeddedServerError, match="exited with code"):
        server.start()
    assert not server.running
