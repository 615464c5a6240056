"""Generated code is untrusted: each hostile snippet is contained, ordinary code still runs.

Most tests run twice (the ``mode`` fixture): under bubblewrap (skipped, with the reason, where it
cannot run on this machine) and in the audit-hook-only fallback, forced by replacing the probe.
The reproduced escapes also run under bwrap without the audit hook, to show that the operating
system's layer holds on its own."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest

from phi4_assets.pts import sandbox
from phi4_assets.pts.oracles import code_oracle
from phi4_assets.pts.sandbox import SandboxUnavailable, run_humaneval, run_untrusted
from phi4_assets.sources.humaneval import read_humaneval

BWRAP, WHY_NOT = sandbox.isolation()
needs_bwrap = pytest.mark.skipif(BWRAP != "bwrap", reason=f"bwrap cannot run on this machine: {WHY_NOT}")


def _force_fallback(monkeypatch, why: str = "forced by the test") -> None:
    monkeypatch.setattr(sandbox, "_probe_bwrap", lambda: (None, why))


@pytest.fixture(params=["bwrap", "audit-hook"])
def mode(request, monkeypatch):
    """Run the test under bwrap, then in the fallback (the audit hook alone)."""
    if request.param == "bwrap" and BWRAP != "bwrap":
        pytest.skip(f"bwrap cannot run on this machine: {WHY_NOT}")
    if request.param == "audit-hook":
        _force_fallback(monkeypatch)
    return request.param


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


def test_a_correct_program_passes(mode):
    result = run_untrusted("assert sorted([3, 1, 2]) == [1, 2, 3]\nprint('fine')")
    assert (result.passed, result.status, result.stdout, result.isolation) == (True, "passed", "fine\n", mode)


def test_a_failing_assertion_fails(mode):
    result = run_untrusted("assert 1 == 2, 'wrong'")
    assert (result.passed, result.status) == (False, "failed")
    assert "AssertionError: wrong" in result.stderr


def test_an_infinite_loop_times_out(mode):
    started = time.monotonic()
    result = run_untrusted("while True:\n    pass", timeout_s=1.5)
    assert (result.passed, result.status) == (False, "timeout")
    assert time.monotonic() - started < 1.5 + 2


def test_a_huge_allocation_hits_the_memory_limit(mode):
    result = run_untrusted("x = bytearray(10**10)", memory_mb=256)
    assert (result.passed, result.status) == (False, "memory")


def test_a_fork_loop_is_refused_and_leaves_no_children(mode):
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
def test_other_ways_to_start_a_process_are_refused(mode, tmp_path, code):
    marker = tmp_path / "ran"
    result = run_untrusted(f"MARKER = {str(marker)!r}\n{code}")
    assert not result.passed
    assert not marker.exists()


def test_network_calls_are_refused(mode, listener):
    port = listener.getsockname()[1]
    for code in (f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)",
                 f"import urllib.request\nurllib.request.urlopen('http://127.0.0.1:{port}/', timeout=1)",
                 f"import _socket\ns = _socket.socket()\ns.connect(('127.0.0.1', {port}))"):
        result = run_untrusted(code)
        assert not result.passed and "PermissionError" in result.stderr, code
    assert not _accepted(listener)


def test_udp_datagrams_are_refused(mode):
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
def test_files_outside_the_scratch_directory_are_untouched(mode, tmp_path, attack):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    result = run_untrusted(f"PRECIOUS = {str(precious)!r}\n{attack}")
    assert not result.passed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]
    assert precious.read_text() == "keep me" and oct(precious.stat().st_mode)[-3:] == "644"


def test_other_processes_cannot_be_signalled(mode):
    victim = subprocess.Popen(["sleep", "30"])
    try:
        for code in (f"import os\nos.kill({victim.pid}, 9)",
                     f"import os, signal\nsignal.pidfd_send_signal(os.pidfd_open({victim.pid}), 9)"):
            assert not run_untrusted(code).passed, code
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_files_inside_the_scratch_directory_work(mode):
    code = ("open('scratch.txt', 'w').write('OK')\nimport os, tempfile\nos.makedirs('a/b')\n"
            "os.rename('scratch.txt', 'a/b/moved.txt')\nwith tempfile.NamedTemporaryFile() as f:\n"
            "    f.write(b'x')\nprint(open('a/b/moved.txt').read())")
    result = run_untrusted(code)
    assert result.passed, result.stderr
    assert result.stdout == "OK\n"


def test_the_scratch_directory_is_removed_afterwards(mode):
    name = f"phi4-left-{secrets.token_hex(4)}"
    result = run_untrusted(f"import os\nopen({name!r}, 'w').write('x')\nprint(os.path.abspath({name!r}))")
    left = result.stdout.strip()
    assert result.passed and os.path.isabs(left) and left.endswith(name)
    assert not os.path.exists(left)  # under bwrap it never was on the host's disk


def test_secrets_in_the_environment_are_not_inherited(mode, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    result = run_untrusted("import os\nprint(os.environ.get('OPENAI_API_KEY'))\nprint(sorted(os.environ))")
    assert result.stdout.splitlines()[0] == "None"
    assert "sk-secret" not in result.stdout


def test_output_is_truncated_and_a_print_flood_is_cut_short(mode):
    result = run_untrusted("print('x' * 50_000)")
    assert result.passed and len(result.stdout) == 10_000
    started = time.monotonic()
    flood = run_untrusted("import sys\nwhile True:\n    sys.stdout.write('x' * 1_000_000)", timeout_s=3)
    assert not flood.passed and len(flood.stdout) == 10_000
    assert time.monotonic() - started < 3  # stopped by the file-size limit, not the clock


def test_a_real_humaneval_problem(mode):
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
def test_exiting_early_with_status_zero_is_not_a_pass(mode, escape):
    # A wrong solution that ends the process with status 0 before the tests run (it used to pass).
    program = "def add(a, b):\n    return a - b\n" + escape
    tests = "def check(f):\n    assert f(2, 3) == 5\n"
    result = run_humaneval(program, tests, "add")
    assert (result.passed, result.status) == (False, "failed")


def test_exiting_inside_the_tests_is_not_a_pass(mode):
    program = "import sys\ndef add(a, b):\n    sys.exit(0)\n"
    result = run_humaneval(program, "def check(f):\n    assert f(2, 3) == 5\n", "add")
    assert (result.passed, result.status) == (False, "failed") and "no pass token" in result.stderr


def test_a_correct_program_that_prints_still_passes_and_a_guessed_token_does_not(mode):
    program = "def add(a, b):\n    print('adding', a, b)\n    return a + b\nprint('x' * 50000, end='')\n"
    tests = "def check(f):\n    assert f(2, 3) == 5\n"
    first, second = run_humaneval(program, tests, "add"), run_humaneval(program, tests, "add")
    assert first.passed and second.passed
    guessed = "def add(a, b):\n    return a - b\nprint('\\nphi4-pass-' + '0' * 32)\nimport os\nos._exit(0)\n"
    assert run_humaneval(guessed, tests, "add").status == "failed"


# The reproduced escapes (issue 16). Each runs under bwrap with the audit hook, under bwrap without
# it (the operating system's layer alone) and in the fallback (the audit hook alone). ``host``
# fills in the placeholders; a breach is judged on the host, never from the snippet's word.
ESCAPES = {
    # The hook's own closure, reached through a refused call's traceback, emptied, then a write.
    "hook_closure": "try:\n    open(PRECIOUS, 'w')\nexcept PermissionError as e:\n    tb = e.__traceback__\n"
                    "    while tb:\n        for v in list(tb.tb_frame.f_locals.values()):\n"
                    "            for cell in getattr(v, '__closure__', None) or ():\n"
                    "                if isinstance(cell.cell_contents, str) and cell.cell_contents.startswith('/'):\n"
                    "                    cell.cell_contents = ''\n"
                    "                elif isinstance(cell.cell_contents, tuple) and cell.cell_contents \\\n"
                    "                        and all(isinstance(x, str) for x in cell.cell_contents):\n"
                    "                    cell.cell_contents = ('',)\n"
                    "        tb = tb.tb_next\nopen(PRECIOUS, 'w').write('gone')",
    "sqlite_attach": "import sqlite3\nc = sqlite3.connect(':memory:')\n"
                     "c.execute(f\"attach database '{MARKER}.db' as y\")\nc.execute('create table y.t(x)')",
    "sqlite_uri": "import sqlite3\n"
                  "sqlite3.connect(f'file:{MARKER}-uri.db?mode=rwc', uri=True).execute('create table t(x)')",
    "shm_open": "import _posixshmem, os\n_posixshmem.shm_open('/' + SHM, os.O_CREAT | os.O_RDWR)",
    "shm_open_fresh_module": "import importlib.util, os\n"
                             "m = importlib.util.module_from_spec(importlib.util.find_spec('_posixshmem'))\n"
                             "m.shm_open('/' + SHM, os.O_CREAT | os.O_RDWR)",
    "mknod_fresh_posix": "import importlib.util, stat\n"
                         "posix = importlib.util.module_from_spec(importlib.util.find_spec('posix'))\n"
                         "posix.mknod(MARKER, stat.S_IFREG | 0o644)",
    "pidfd_kill_fresh_modules": "import importlib.util\n"
                                "posix = importlib.util.module_from_spec(importlib.util.find_spec('posix'))\n"
                                "sig = importlib.util.module_from_spec(importlib.util.find_spec('_signal'))\n"
                                "sig.pidfd_send_signal(posix.pidfd_open(VICTIM), 9)",
    "pidfd_kill": "import _signal, posix\n_signal.pidfd_send_signal(posix.pidfd_open(VICTIM), 9)",
    "parent_environ": "import os\nprint(open('/proc/%d/environ' % os.getppid()).read())",
    "caller_environ": "print(open('/proc/%d/environ' % CALLER).read())",
    "other_process_environ": "print(open('/proc/%d/environ' % VICTIM).read())",
    "etc_passwd": "print(open('/etc/passwd').read())",
    "home_ssh": "import glob, os\nfor p in glob.glob(os.path.join(HOST_HOME, '.ssh', '*')):\n    print(open(p).read())",
    "any_host_file": "print(open(SECRET_FILE).read())",
    "network": "import socket\nsocket.create_connection(('127.0.0.1', PORT), timeout=1).sendall(b'leak')",
    # Names, not contents: the fallback lets code list directories (listing has no refusal in the hook).
    "list_host_directories": "import os\nprint(os.listdir(SECRET_DIR))",
}
FALLBACK_CANNOT_CONTAIN = {"list_host_directories"}


@pytest.fixture
def host(tmp_path, monkeypatch, listener):
    """What the escapes aim at: a precious file, a home directory with a key in .ssh, marker
    paths that must not appear in the host's /tmp and /dev/shm, a victim process with a secret in
    its environment, this process's own environment, a listening port."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-phi4-test-secret")
    with open("/proc/self/environ", "rb") as f:  # what /proc shows of this process (its initial environment)
        own = {e.decode(errors="replace") for e in f.read().split(b"\0")
               if len(e) >= 8 and not e.endswith(b"=") and e.split(b"=")[0] not in (b"PATH", b"LANG")}
    secret_dir = tmp_path / "home" / ".ssh"
    secret_dir.mkdir(parents=True)
    (secret_dir / "id_rsa-phi4-secret").write_text("PRIVATE-KEY-phi4")
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    marker = Path(f"/tmp/phi4-escape-{secrets.token_hex(6)}")
    shm = f"phi4-escape-{secrets.token_hex(6)}"
    victim = subprocess.Popen(["sleep", "30"], env={**os.environ, "OPENAI_API_KEY": "sk-phi4-test-secret"})
    values = {"PRECIOUS": str(precious), "MARKER": str(marker), "SHM": shm, "VICTIM": victim.pid,
              "CALLER": os.getpid(), "HOST_HOME": str(tmp_path / "home"),
              "SECRET_FILE": str(secret_dir / "id_rsa-phi4-secret"),
              "SECRET_DIR": str(secret_dir), "PORT": listener.getsockname()[1]}

    def breaches(result) -> list[str]:
        return [what for what, broken in (
            ("the precious file changed", precious.read_text() != "keep me"),
            ("a file appeared in the host's /tmp", any(Path("/tmp").glob(marker.name + "*"))),
            ("a shared-memory object appeared", os.path.exists(f"/dev/shm/{shm}")),
            ("the victim was killed", victim.poll() is not None),
            ("a process's secret leaked", "sk-phi4-test-secret" in result.stdout),
            ("the caller's environment leaked", any(e in result.stdout for e in own)),
            ("/etc/passwd leaked", "root:x:0:0" in result.stdout),
            ("the secret file leaked", "PRIVATE-KEY-phi4" in result.stdout),
            ("a host directory was listed", "id_rsa-phi4-secret" in result.stdout),
            ("the network was reached", _accepted(listener)),
        ) if broken]

    yield "".join(f"{k} = {v!r}\n" for k, v in values.items()), breaches
    victim.kill()
    victim.wait()
    for p in Path("/tmp").glob(marker.name + "*"):
        p.unlink()
    if os.path.exists(f"/dev/shm/{shm}"):
        os.unlink(f"/dev/shm/{shm}")


@pytest.mark.parametrize("layers", ["bwrap+hook", "bwrap alone", "hook alone"])
@pytest.mark.parametrize("escape", list(ESCAPES))
def test_reproduced_escapes_are_contained(host, monkeypatch, layers, escape):
    setup, breaches = host
    if layers != "hook alone" and BWRAP != "bwrap":
        pytest.skip(f"bwrap cannot run on this machine: {WHY_NOT}")
    if layers == "hook alone":
        if escape in FALLBACK_CANNOT_CONTAIN:
            pytest.xfail("the audit-hook fallback cannot contain this")
        _force_fallback(monkeypatch)
    result = sandbox._run([("program.py", setup + ESCAPES[escape])], prove_pass=False, timeout_s=5, memory_mb=512,
                          max_processes=64, allow_fallback=True, audit_hook=layers != "bwrap alone")
    assert result.isolation == ("audit-hook" if layers == "hook alone" else "bwrap")
    assert breaches(result) == [], result.stderr


# Forging the pass: the token is not in any file or frame the code under test can reach.
TWO_PLUS_THREE = "def check(f):\n    assert f(2, 3) == 5\n"
WRONG = "def add(a, b):\n    return a - b\n"
FORGERIES = {
    "reads_its_sources": "import glob, os, re\nfor p in glob.glob('*') + glob.glob('/proc/self/*'):\n    try:\n"
                         "        t = open(p, errors='replace').read()\n    except Exception:\n        continue\n"
                         "    for m in re.findall('phi4-pass-[0-9a-f]{32}', t):\n        print(m)\n"
                         "        os._exit(0)\n",
    "walks_its_frames": "import sys, os, re\nf = sys._getframe()\nwhile f:\n"
                        "    for v in list(f.f_locals.values()) + [\n"
                        "            c.cell_contents for v in f.f_locals.values()\n"
                        "            for c in (getattr(v, '__closure__', None) or ())]:\n"
                        "        for m in re.findall('phi4-pass-[0-9a-f]{32}', repr(v)):\n"
                        "            print(m)\n            os._exit(0)\n    f = f.f_back\n",
    "asks_the_hook": "import sys, os\nsys.stdout.flush()\nsys.audit('phi4.sandbox.pass')\nos._exit(0)\n",
    "reruns_the_prelude": "import sys, types\nf = sys._getframe()\nwhile f.f_code.co_name != '_phi4_main':\n"
                          "    f = f.f_back\ntypes.FunctionType(f.f_code, f.f_globals)((('x.py', 'pass'),))\n",
    "rewrites_the_tests": "open('tests.py', 'w').write('def check(f):\\n    pass\\n')\n"
                          "open('program.py', 'w').write('def add(a, b):\\n    return a + b\\n')\n",
    "swallows_the_tests": "x = '''\n",
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_pass_cannot_be_forged(mode, forgery):
    result = run_humaneval(WRONG + FORGERIES[forgery], TWO_PLUS_THREE, "add")
    assert (result.passed, result.status) == (False, "failed"), result.stdout


# Where bwrap cannot run: a warning naming why, once; the weaker mode only when allowed.
def test_without_bwrap_the_fallback_warns_once_naming_why(monkeypatch, caplog):
    why = f"user namespaces are disabled ({secrets.token_hex(4)})"
    _force_fallback(monkeypatch, why)
    with caplog.at_level(logging.WARNING, logger=sandbox.__name__):
        first, second = run_untrusted("print('ok')"), run_untrusted("print('ok')")
    assert first.passed and second.passed and first.isolation == "audit-hook"
    warnings = [r for r in caplog.records if why in r.getMessage()]
    assert len(warnings) == 1 and "NOT isolated" in warnings[0].getMessage()


def test_without_bwrap_the_code_oracle_refuses_unless_allowed(monkeypatch):
    _force_fallback(monkeypatch, "user namespaces are disabled (test)")
    problem = read_humaneval()[2]
    args = (problem["canonical_solution"], problem["prompt"], problem["tests"], problem["entry_point"])
    with pytest.raises(SandboxUnavailable, match="user namespaces are disabled"):
        code_oracle(*args, allow_fallback=False)
    with pytest.raises(SandboxUnavailable):
        run_untrusted("print('ok')", allow_fallback=False)
    assert code_oracle(*args, allow_fallback=True)


@needs_bwrap
def test_under_bwrap_the_strict_mode_runs():
    problem = read_humaneval()[2]
    assert code_oracle(problem["canonical_solution"], problem["prompt"], problem["tests"], problem["entry_point"],
                       allow_fallback=False)


def test_the_probe_names_why_bwrap_cannot_run(monkeypatch):
    probe = sandbox._probe_bwrap.__wrapped__  # the uncached probe
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    assert probe()[0] is None and "not installed" in probe()[1]
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: "/bin/false")
    found, why = probe()
    assert found is None and "cannot run" in why


def test_the_probe_runs_once():
    sandbox.isolation()
    hits = sandbox._probe_bwrap.cache_info().hits
    sandbox.isolation()
    assert sandbox._probe_bwrap.cache_info().hits == hits + 1


# What only the operating system's layer can do.
def _running(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


@needs_bwrap
def test_under_bwrap_nothing_outlives_the_run():
    # Without the hook, a child in a new session that ignores its parent is still gone with the run.
    seconds = f"61.{secrets.randbelow(10**6):06d}"
    code = (f"import os, time\nif os.fork() == 0:\n    os.setsid()\n"
            f"    os.execv('/usr/bin/sleep', ['sleep', '{seconds}'])\ntime.sleep(60)\n")
    result = sandbox._run([("program.py", code)], prove_pass=False, timeout_s=1, memory_mb=256, max_processes=64,
                          allow_fallback=False, audit_hook=False)
    assert result.status == "timeout"
    deadline = time.monotonic() + 2
    while _running(seconds) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _running(seconds) == []


@needs_bwrap
def test_under_bwrap_the_scratch_directory_is_capped():
    code = "for i in range(6):\n    open(f'f{i}', 'wb').write(b'x' * (15 << 20))\n"
    result = sandbox._run([("program.py", code)], prove_pass=False, timeout_s=5, memory_mb=256, max_processes=64,
                          allow_fallback=False, audit_hook=False)
    assert not result.passed and "No space left on device" in result.stderr


def test_the_profiles_fallback_setting_reaches_every_code_check(monkeypatch):
    """``sandbox_allow_fallback`` (off on ``full``) reaches the PTS / judge oracles and the evaluation's checker."""
    from phi4_assets.evaluation.metrics import check_response
    from phi4_assets.config.profiles import PROFILES
    from phi4_assets.pts.oracles import oracles_for

    _force_fallback(monkeypatch, "user namespaces are disabled (test)")
    problem = read_humaneval()[2]
    assert [PROFILES[p].sandbox_allow_fallback for p in ("tiny", "small", "full")] == [True, True, False]
    with pytest.raises(SandboxUnavailable):
        oracles_for(PROFILES["full"].sandbox_allow_fallback)["code"](problem["canonical_solution"], problem)
    with pytest.raises(SandboxUnavailable):
        check_response("code", problem["canonical_solution"], prompt=problem["prompt"], tests=problem["tests"],
                       entry_point=problem["entry_point"], allow_fallback=False)
    assert oracles_for(PROFILES["small"].sandbox_allow_fallback)["code"](problem["canonical_solution"], problem)
