"""Running untrusted, model-written code (HumanEval completions, PTS rollouts).

Each run is a separate ``python -I -B`` process in a fresh scratch directory (its working
directory, deleted afterwards) with a minimal environment (no inherited secrets), a wall-clock
limit that kills its whole process group, and resource limits on address space, CPU time, file
size and process count. Its output goes to files capped by the file-size limit, so a print flood
cannot exhaust the caller's memory. Where ``unshare --net`` works, the run gets an empty network
namespace.

Before the code, a prelude installs an audit hook (Python code cannot remove one) that refuses
non-Unix sockets, network calls, process creation, links, and writes, deletions, renames or
``os.open`` outside the scratch directory, plus the imports that would go around the hook
(``_posixsubprocess``, ``ctypes``, subinterpreters, which have no hooks of their own). The hook
keeps its state in a closure of immutable values and resolves paths with functions captured
before the code runs, so monkeypatching ``os`` cannot steer it.

A HumanEval pass is proven, not inferred from the exit status: after ``check(...)`` has run
every assertion, the harness prints a random token drawn for that run, and only a run whose
stdout ends with that token passes. A completion that calls ``sys.exit(0)`` or ``os._exit(0)``
before or inside the tests exits 0 without it and fails. (The token is in the program the
process runs, so code written to dig it out of its own frames could still forge it; the token
defeats exiting early, not introspection.)

This is defence in depth, not a security boundary against a determined attacker: audit hooks
are a debugging feature that C code never reports to, and the process keeps the caller's user
(RLIMIT_NPROC does not bind root). Run untrusted code at scale in a container or VM, as a
non-root user.
"""

from __future__ import annotations

import functools
import os
import secrets
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

OUTPUT_LIMIT = 10_000  # characters kept of stdout and of stderr
FILE_SIZE_LIMIT = 16 << 20  # bytes, any file the code writes, its captured output included

PRELUDE = r'''
def _sandbox():
    import _posixsubprocess, posix, sys

    _posixsubprocess.fork_exec = None  # loaded now, so subprocess imports; refused below if loaded again

    scratch = posix.getcwd()
    getcwd, lstat, readlink = posix.getcwd, posix.lstat, posix.readlink
    error, import_error, oserror = PermissionError, ImportError, OSError
    encoding, str_, bytes_, int_, type_, as_str = sys.getfilesystemencoding(), str, bytes, int, type, str.__str__
    write_flags = posix.O_WRONLY | posix.O_RDWR | posix.O_CREAT | posix.O_TRUNC | posix.O_APPEND
    refused = frozenset({
        "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen",
        "pty.spawn", "os.kill", "os.killpg", "os.symlink", "os.link", "socket.connect", "socket.bind",
        "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
        "ctypes.dlopen", "resource.setrlimit", "resource.prlimit", "sys.settrace", "sys.setprofile",
        "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    })
    refused_imports = frozenset({"_posixsubprocess", "_ctypes", "ctypes", "_xxsubinterpreters",
                                 "_xxinterpchannels", "_interpreters", "_interpchannels", "_interpqueues"})
    # event -> (index of a path argument, index of the dir_fd it is relative to, or None), per path argument
    mutations = type_(type_.__dict__)({
        "os.remove": ((0, 1),), "os.rmdir": ((0, 1),), "os.mkdir": ((0, 2),), "os.rename": ((0, 2), (1, 3)),
        "os.chmod": ((0, 2),), "os.chown": ((0, 3),), "os.utime": ((0, 3),), "os.truncate": ((0, None),),
        "os.chflags": ((0, None),), "os.lchflags": ((0, None),), "os.setxattr": ((0, None),),
        "os.removexattr": ((0, None),), "shutil.rmtree": ((0, 1),), "sqlite3.connect": ((0, None),),
    })

    def resolve(path, dir_fd):
        """``path`` made absolute (against ``dir_fd`` or the working directory), ".." and symbolic
        links resolved; None when it is not a plain str or bytes (a subclass could lie)."""
        if type_(path) is bytes_:
            path = path.decode(encoding, "surrogateescape")
        elif type_(path) is not str_:
            return None
        if not path.startswith("/"):
            base = getcwd() if dir_fd is None or dir_fd == -1 else readlink("/proc/self/fd/%d" % dir_fd)
            path = base + "/" + path
        resolved, pending, links = "", path.split("/")[::-1], 0
        while pending:
            part = pending.pop()
            if part == "" or part == ".":
                continue
            if part == "..":
                resolved = resolved.rpartition("/")[0]
                continue
            candidate = resolved + "/" + part
            try:
                is_link = lstat(candidate).st_mode & 0o170000 == 0o120000
            except oserror:
                is_link = False
            if is_link and links < 40:
                links += 1
                target = readlink(candidate)
                resolved = "" if target.startswith("/") else resolved
                pending += target.split("/")[::-1]
            else:
                resolved = candidate
        return resolved or "/"

    def inside(path, dir_fd=None):
        resolved = resolve(path, dir_fd)
        return resolved is not None and (resolved == scratch or resolved.startswith(scratch + "/"))

    def hook(event, args):
        if event == "import" and as_str(args[0]) in refused_imports:
            raise import_error("sandbox: import " + as_str(args[0]) + " is not allowed")  # optional imports degrade
        if event in refused or (event == "socket.__new__" and args[1] != 1):  # 1: AF_UNIX
            raise error("sandbox: " + event + " is not allowed")
        if event == "open":
            path, mode, flags = args
            # mode None is os.open, whose dir_fd the event omits: refused outside, so no outside directory fd
            if type_(path) is not int_ and (mode is None or flags & write_flags) and not inside(path):
                raise error("sandbox: " + event + " outside the scratch directory")
        elif event in mutations:
            for i, j in mutations[event]:
                if type_(args[i]) is int_:  # fchmod and the like would reach outside files opened read-only
                    if event != "os.truncate":
                        raise error("sandbox: " + event + " on a file descriptor")
                elif not inside(args[i], None if j is None else args[j]):
                    raise error("sandbox: " + event + " outside the scratch directory")

    sys.addaudithook(hook)

    def refuse(*args, **kwargs):
        raise error("sandbox: not allowed")

    # Calls without an audit event of their own (mknod, pidfd), and friendlier errors for the rest.
    import os, signal
    for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp", "kill", "killpg", "mknod", "mkfifo",
                 "pidfd_open", "pidfd_send_signal", "pthread_kill"):
        for module in (os, posix, signal):
            if hasattr(module, name):
                setattr(module, name, refuse)


_sandbox()
del _sandbox
import runpy
runpy.run_path("program.py", run_name="__main__")
'''


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    status: str  # passed | failed | timeout | memory | error
    stdout: str
    stderr: str
    duration_s: float


@functools.cache
def _network_namespace_prefix() -> tuple[str, ...]:
    """``unshare --net --`` where that works here (root, or user namespaces allowed), else nothing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    try:
        ok = subprocess.run([unshare, "--net", "--", "true"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (unshare, "--net", "--") if ok else ()


def _limit(memory_mb: int, cpu_s: int, max_processes: int) -> None:
    """Resource limits for the child, set between fork and exec (it is in its own session already)."""
    for limit, value in ((resource.RLIMIT_AS, memory_mb << 20), (resource.RLIMIT_CPU, cpu_s),
                         (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT), (resource.RLIMIT_CORE, 0),
                         (resource.RLIMIT_NPROC, max_processes)):
        resource.setrlimit(limit, (value, value))


def _status(returncode: int, stderr: str) -> str:
    if returncode == 0:
        return "passed"
    if returncode == -signal.SIGXCPU:
        return "timeout"
    if "MemoryError" in stderr or returncode in (-signal.SIGKILL, -signal.SIGSEGV):
        return "memory"  # RLIMIT_AS: a MemoryError, or a crash when the allocation fails in C
    return "failed"


def _read_head(path: str) -> str:
    with open(path, "rb") as f:
        return f.read(4 * OUTPUT_LIMIT).decode(errors="replace")[:OUTPUT_LIMIT]


def _ends_with_token(path: str, token: str) -> bool:
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - len(token) - 64))
        return f.read().decode(errors="replace").rstrip().endswith(token)


def run_untrusted(code: str, *, timeout_s: float = 5.0, memory_mb: int = 512, max_processes: int = 64,
                  pass_token: str | None = None) -> SandboxResult:
    """Run ``code`` as a script in the sandbox; ``passed`` when it exits with status 0 in time
    and, if ``pass_token`` is given, its stdout ends with that token (else status ``failed``)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="phi4-sandbox-out-") as out_dir:
        scratch = tempfile.mkdtemp(prefix="phi4-sandbox-")
        try:
            with open(os.path.join(scratch, "program.py"), "w", encoding="utf-8") as f:
                f.write(code)
            env = {"PATH": "/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8"}
            command = [*_network_namespace_prefix(), sys.executable, "-I", "-B", "-c", PRELUDE]
            stdout_path, stderr_path = os.path.join(out_dir, "stdout"), os.path.join(out_dir, "stderr")
            with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
                try:
                    proc = subprocess.Popen(command, cwd=scratch, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                                            stderr=stderr, start_new_session=True,
                                            preexec_fn=lambda: _limit(memory_mb, int(timeout_s) + 1, max_processes))
                except (OSError, subprocess.SubprocessError) as e:
                    return SandboxResult(False, "error", "", str(e), time.monotonic() - started)
                try:
                    returncode = proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    returncode = None
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the whole group, whether it timed out or left children
                except ProcessLookupError:
                    pass
                proc.wait()
            err = _read_head(stderr_path)
            status = "timeout" if returncode is None else _status(returncode, err)
            if status == "passed" and pass_token is not None and not _ends_with_token(stdout_path, pass_token):
                status = "failed"
                err += "\nsandbox: exited with status 0 before the tests finished (no pass token)"
            return SandboxResult(status == "passed", status, _read_head(stdout_path), err,
                                 time.monotonic() - started)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def run_humaneval(program: str, tests: str, entry_point: str, **limits) -> SandboxResult:
    """HumanEval's check: the program, then its test code (which defines ``check``), then
    ``check(entry_point)``, then this run's pass token: Python's buffered stdout is flushed first
    and the token written to file descriptor 1 itself, so it is the last thing on stdout."""
    token = f"phi4-pass-{secrets.token_hex(16)}"
    harness = (f"\n\ncheck({entry_point})\n"
               f"import os as _phi4_os, sys as _phi4_sys\n_phi4_sys.stdout.flush()\n"
               f"_phi4_os.write(1, b'\\n{token}\\n')\n")
    return run_untrusted(f"{program}\n\n{tests}{harness}", pass_token=token, **limits)
