"""Generated code is untrusted: each hostile snippet is contained."""

import os
import socket
import time

import pytest

from phi4_assets.pts.sandbox import run_humaneval, run_untrusted
from phi4_assets.sources.humaneval import read_humaneval


def test_plain_code_runs_and_scratch_files_work():
    result = run_untrusted("open('scratch.txt', 'w').write('hi')\nprint(open('scratch.txt').read())")
    assert result.passed and result.stdout.strip() == "hi"


def test_failures_and_exceptions_fail():
    assert run_untrusted("assert 1 == 2").status == "failed"
    assert run_untrusted("raise SystemExit(3)").status == "failed"


def test_infinite_loop_is_killed_at_the_time_limit():
    t0 = time.monotonic()
    result = run_untrusted("while True:\n    pass", timeout_s=1.5)
    assert result.status == "timeout" and not result.passed
    assert time.monotonic() - t0 < 4


def test_huge_allocation_hits_the_memory_limit():
    result = run_untrusted("x = bytearray(10**10)", memory_mb=256)
    assert result.status == "memory" and not result.passed


def test_fork_loop_is_refused():
    t0 = time.monotonic()
    result = run_untrusted("import os\nwhile True:\n    os.fork()", timeout_s=3)
    assert not result.passed and "PermissionError" in result.stderr
    assert time.monotonic() - t0 < 3
    result = run_untrusted("import subprocess\nsubprocess.run(['true'])")
    assert not result.passed and "PermissionError" in result.stderr


def test_network_calls_are_refused():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    port = server.getsockname()[1]
    try:
        for code in (f"import socket\nsocket.create_connection(('127.0.0.1', {port}))",
                     f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))",
                     f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=1)"):
            result = run_untrusted(code)
            assert not result.passed and "PermissionError" in result.stderr, code
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever connected
    finally:
        server.close()


def test_files_outside_the_scratch_directory_are_untouched(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    for code in (f"import os\nos.remove({str(precious)!r})", f"open({str(precious)!r}, 'w').write('gone')",
                 f"import shutil\nshutil.rmtree({str(tmp_path)!r})", f"import os\nos.rename({str(precious)!r}, 'x')"):
        result = run_untrusted(code)
        assert not result.passed and "PermissionError" in result.stderr, code
    assert precious.read_text() == "keep me"


def test_scratch_is_removed_and_secrets_are_not_inherited(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    result = run_untrusted("import os\nprint(os.getcwd())\nprint(os.environ.get('OPENAI_API_KEY'))")
    cwd, key = result.stdout.split()
    assert key == "None"
    assert not os.path.exists(cwd)


def test_a_real_humaneval_problem():
    problem = read_humaneval()[2]
    ok = run_humaneval(problem["prompt"] + problem["canonical_solution"], problem["tests"], problem["entry_point"])
    assert ok.passed
    wrong = run_humaneval(problem["prompt"] + "    return None\n", problem["tests"], problem["entry_point"])
    assert wrong.status == "failed"
