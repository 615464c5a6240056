"""Generated code is untrusted: each hostile snippet is contained, ordinary code still runs."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from phi4_assets.pts.sandbox import run_humaneval, run_untrusted
from phi4_assets.sources.humaneval import read_humaneval


def _children() -> set[int]:
    """Live child processes of this test process, read from /proc (psutil is not installed)."""
    me = str(os.getpid())
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(pid))
    return found


@pytest.fixture
def listener():
    """A real TCP server on loopback that must never see a connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def _accepted(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def test_a_correct_program_passes():
    result = run_untrusted("assert sorted([3, 1, 2]) == [1, 2, 3]\nprint('fine')")
    assert (result.passed, result.status, result.stdout) == (True, "passed", "fine\n")


def test_a_failing_assertion_fails():
    result = run_untrusted("assert 1 == 2, 'wrong'")
    assert (result.passed, result.status) == (False, "failed")
    assert "AssertionError: wrong" in result.stderr


def test_an_infinite_loop_times_out():
    started = time.monotonic()
    result = run_untrusted("while True:\n    pass", timeout_s=1.5)
    assert (result.passed, result.status) == (False, "timeout")
    assert time.monotonic() - started < 1.5 + 2


def test_a_huge_allocation_hits_the_memory_limit():
    result = run_untrusted("x = bytearray(10**10)", memory_mb=256)
    assert (result.passed, result.status) == (False, "memory")


def test_a_fork_loop_is_refused_and_leaves_no_children():
    before = _children()
    started = time.monotonic()
    result = run_untrusted("import os\nwhile True:\n    os.fork()", timeout_s=3)
    assert not result.passed and result.status in ("failed", "error")
    assert "PermissionError" in result.stderr
    assert time.monotonic() - started < 3
    assert _children() <= before


@pytest.mark.parametrize("code", [
    "import subprocess\nsubprocess.run(['/usr/bin/touch', MARKER])",
    "import os\nos.system('/usr/bin/touch ' + MARKER)",
    "import os\nos.posix_spawn('/usr/bin/touch', ['touch', MARKER], {})",
    "import pty\npty.spawn(['/usr/bin/touch', MARKER])",
    # subprocess's C helper, called directly (Python 3.11's signature), goes around the patched os functions
    "import _posixsubprocess, os\nr, w = os.pipe()\n_posixsubprocess.fork_exec([b'touch', MARKER.encode()], "
    "[b'/usr/bin/touch'], True, (w,), None, None, -1, -1, -1, -1, -1, -1, r, w, True, True, -1, None, None, None, "
    "-1, None, False)\nos.close(w)\nos.read(r, 100)\nimport time\ntime.sleep(0.5)",
])
def test_other_ways_to_start_a_process_are_refused(tmp_path, code):
    marker = tmp_path / "ran"
    result = run_untrusted(f"MARKER = {str(marker)!r}\n{code}")
    assert not result.passed
    assert not marker.exists()


def test_network_calls_are_refused(listener):
    port = listener.getsockname()[1]
    for code in (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)",
                 f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=1)",
                 f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))"):
        result = run_untrusted(code)
        assert not result.passed and "PermissionError" in result.stderr, code
    assert not _accepted(listener)


def test_udp_datagrams_are_refused():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    try:
        code = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                f"s.sendmsg([b'leak'], [], 0, ('127.0.0.1', {receiver.getsockname()[1]}))")
        assert not run_untrusted(code).passed
        with pytest.raises(BlockingIOError):
            receiver.recv(16)
    finally:
        receiver.close()


@pytest.mark.parametrize("attack", [
    "import os\nos.remove(PRECIOUS)",
    "open(PRECIOUS, 'w').write('gone')",
    "import os\nos.rename(PRECIOUS, 'stolen.txt')",
    "open('evil', 'w').write('gone')\nimport os\nos.replace('evil', PRECIOUS)",  # the destination counts too
    "import os\nos.symlink(PRECIOUS, 'link')\nopen('link', 'w').write('gone')",
    "import os\nos.link(PRECIOUS, 'link')\nopen('link', 'w').write('gone')",
    "import os\nfd = os.open(os.path.dirname(PRECIOUS), os.O_RDONLY)\nos.remove('precious.txt', dir_fd=fd)",
    "import os\nf = open(PRECIOUS)\nos.chmod(f.fileno(), 0)",
    "import shutil, os\nshutil.rmtree(os.path.dirname(PRECIOUS))",
    "import os\nos.path.realpath = lambda path, **kw: os.getcwd()\nos.remove(PRECIOUS)",  # the hook keeps its own
    "import sys\nf = sys._getframe()\nwhile f.f_back:\n    f = f.f_back\n"  # the prelude's globals
    "f.f_globals.update(_SCRATCH='', _inside=lambda path: True)\nimport os\nos.remove(PRECIOUS)",
    "class S(str):\n    def startswith(self, *args):\n        return True\nimport os\nos.remove(S(PRECIOUS))",
    "import _xxsubinterpreters as sub\nsub.run_string(sub.create(), f'import os; os.remove({PRECIOUS!r})')",
])
def test_files_outside_the_scratch_directory_are_untouched(tmp_path, attack):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    result = run_untrusted(f"PRECIOUS = {str(precious)!r}\n{attack}")
    assert not result.passed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]
    assert precious.read_text() == "keep me" and oct(precious.stat().st_mode)[-3:] == "644"


def test_other_processes_cannot_be_signalled():
    victim = subprocess.Popen(["sleep", "30"])
    try:
        for code in (f"import os\nos.kill({victim.pid}, 9)",
                     f"import os, signal\nsignal.pidfd_send_signal(os.pidfd_open({victim.pid}), 9)"):
            assert not run_untrusted(code).passed, code
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_files_inside_the_scratch_directory_work():
    code = ("open('scratch.txt', 'w').write('OK')\nimport os, tempfile\nos.makedirs('a/b')\n"
            "os.rename('scratch.txt', 'a/b/moved.txt')\nwith tempfile.NamedTemporaryFile() as f:\n"
            "    f.write(b'x')\nprint(open('a/b/moved.txt').read())")
    result = run_untrusted(code)
    assert result.passed, result.stderr
    assert result.stdout == "OK\n"


def test_the_scratch_directory_is_removed_afterwards():
    result = run_untrusted("import os\nprint(os.getcwd())")
    scratch = result.stdout.strip()
    assert result.passed and os.path.isabs(scratch)
    assert not os.path.exists(scratch)


def test_secrets_in_the_environment_are_not_inherited(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    result = run_untrusted("import os\nprint(os.environ.get('OPENAI_API_KEY'))\nprint(sorted(os.environ))")
    assert result.stdout.splitlines()[0] == "None"
    assert "sk-secret" not in result.stdout


def test_output_is_truncated_and_a_print_flood_is_cut_short():
    result = run_untrusted("print('x' * 50_000)")
    assert result.passed and len(result.stdout) == 10_000
    started = time.monotonic()
    flood = run_untrusted("import sys\nwhile True:\n    sys.stdout.write('x' * 1_000_000)", timeout_s=3)
    assert not flood.passed and len(flood.stdout) == 10_000
    assert time.monotonic() - started < 3  # stopped by the file-size limit, not the clock


def test_a_real_humaneval_problem():
    problem = read_humaneval()[2]
    args = (problem["tests"], problem["entry_point"])
    assert run_humaneval(problem["prompt"] + problem["canonical_solution"], *args).passed
    wrong = run_humaneval(problem["prompt"] + "    return None\n", *args)
    assert (wrong.passed, wrong.status) == (False, "failed")


@pytest.mark.parametrize("escape", [
    "import sys\nsys.exit(0)\n",
    "import os\nos._exit(0)\n",
    "raise SystemExit(0)\n",
    "import atexit, os\natexit.register(lambda: os._exit(0))\n",  # turns the failed assertion's exit into 0
])
def test_exiting_early_with_status_zero_is_not_a_pass(escape):
    # A wrong solution that ends the process with status 0 before the tests run (it used to pass).
    program = "def add(a, b):\n    return a - b\n" + escape
    tests = "def check(f):\n    assert f(2, 3) == 5\n"
    result = run_humaneval(program, tests, "add")
    assert (result.passed, result.status) == (False, "failed")


def test_exiting_inside_the_tests_is_not_a_pass():
    program = "import sys\ndef add(a, b):\n    sys.exit(0)\n"
    result = run_humaneval(program, "def check(f):\n    assert f(2, 3) == 5\n", "add")
    assert (result.passed, result.status) == (False, "failed") and "no pass token" in result.stderr


def test_a_correct_program_that_prints_still_passes_and_a_guessed_token_does_not():
    program = "def add(a, b):\n    print('adding', a, b)\n    return a + b\nprint('x' * 50000, end='')\n"
    tests = "def check(f):\n    assert f(2, 3) == 5\n"
    first, second = run_humaneval(program, tests, "add"), run_humaneval(program, tests, "add")
    assert first.passed and second.passed
    assert run_untrusted("print('phi4-pass-guessed')\n", pass_token="phi4-pass-other").status == "failed"
