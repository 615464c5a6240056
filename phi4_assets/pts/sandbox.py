"""Running untrusted generated code: a separate process with a wall-clock limit, memory, CPU and
file-size limits, a fresh scratch directory as its working directory (deleted afterwards), a
minimal environment, and a prelude that blocks sockets, process creation and file writes or
deletions outside the scratch directory (through an audit hook, which the code cannot remove).

This is defence in depth around model-written test code, not a security boundary against a
determined attacker: run the pipeline's code oracle inside a container or VM in production.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

OUTPUT_LIMIT = 10_000

PRELUDE = r'''
import os, sys, socket, builtins
_SCRATCH = os.path.realpath(os.getcwd())

def _inside(path):
    try:
        real = os.path.realpath(os.fsdecode(path) if not isinstance(path, int) else "")
    except Exception:
        return False
    return real == _SCRATCH or real.startswith(_SCRATCH + os.sep)

_WRITE_EVENTS = {"os.remove", "os.unlink", "os.rmdir", "os.rename", "os.replace", "shutil.rmtree", "os.mkdir",
                 "os.chmod", "os.chown", "os.truncate", "os.symlink", "os.link", "os.utime", "shutil.move",
                 "shutil.copyfile", "os.removexattr", "os.setxattr"}
_BLOCKED_EVENTS = {"socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto", "os.fork", "os.forkpty",
                   "os.system", "os.posix_spawn", "os.spawn", "os.exec", "subprocess.Popen", "os.kill", "os.killpg",
                   "ctypes.dlopen", "pty.spawn"}

def _audit(event, args):
    if event in _BLOCKED_EVENTS:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open" and args:
        path, mode = args[0], args[1] if len(args) > 1 else "r"
        writing = isinstance(mode, str) and any(c in mode for c in "wax+")
        if isinstance(mode, int):
            writing = bool(mode & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
        if writing and not isinstance(path, int) and not _inside(path):
            raise PermissionError(f"sandbox: writing {path!r} outside the scratch directory")
    elif event in _WRITE_EVENTS and args and not isinstance(args[0], int) and not _inside(args[0]):
        raise PermissionError(f"sandbox: {event} on {args[0]!r} outside the scratch directory")

def _blocked(*args, **kwargs):
    raise PermissionError("sandbox: not allowed")

for _name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp", "execv", "execve", "execvp", "kill"):
    if hasattr(os, _name):
        setattr(os, _name, _blocked)
socket.socket.connect = _blocked
socket.socket.connect_ex = _blocked
socket.create_connection = _blocked
sys.addaudithook(_audit)
del _name
'''


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    status: str  # passed | failed | timeout | memory | error
    stdout: str
    stderr: str
    duration_s: float


def _limits(memory_mb: int, cpu_s: int) -> None:
    os.setsid()
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_untrusted(code: str, *, timeout_s: float = 5.0, memory_mb: int = 512) -> SandboxResult:
    scratch = tempfile.mkdtemp(prefix="phi4-sandbox-")
    started = time.monotonic()
    try:
        with open(os.path.join(scratch, "prelude.py"), "w") as f:
            f.write(PRELUDE)
        with open(os.path.join(scratch, "program.py"), "w") as f:
            f.write(code)
        runner = ("exec(open('prelude.py').read()); import runpy; "
                  "runpy.run_path('program.py', run_name='__main__')")
        env = {"PATH": "/usr/bin:/bin", "HOME": scratch, "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-c", runner], cwd=scratch, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    preexec_fn=lambda: _limits(memory_mb, int(timeout_s) + 1))
        except OSError as e:
            return SandboxResult(False, "error", "", str(e), time.monotonic() - started)
        try:
            out, err = proc.communicate(timeout=timeout_s)
            status = "passed" if proc.returncode == 0 else "failed"
            if proc.returncode != 0 and ("MemoryError" in err.decode(errors="replace")
                                         or proc.returncode in (-signal.SIGKILL, -signal.SIGSEGV)):
                status = "memory"
            if proc.returncode in (-signal.SIGXCPU,):
                status = "timeout"
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
            status = "timeout"
        return SandboxResult(status == "passed", status, out.decode(errors="replace")[:OUTPUT_LIMIT],
                             err.decode(errors="replace")[:OUTPUT_LIMIT], time.monotonic() - started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_humaneval(program: str, tests: str, entry_point: str, **limits) -> SandboxResult:
    """HumanEval's check: the program, then its test code, then ``check(entry_point)``."""
    return run_untrusted(f"{program}\n\n{tests}\n\ncheck({entry_point})\n", **limits)
