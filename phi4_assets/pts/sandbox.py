"""Running untrusted, model-written code (HumanEval completions, PTS rollouts).

Each run is a separate ``python -I -B`` process (the base interpreter, not the project's
virtualenv) with a wall-clock limit that kills it and everything it started, resource limits
(address space, CPU time, file size, process count), an environment of only ``PATH``, ``HOME``,
``TMPDIR`` and ``LANG``, and output captured in files capped by the file-size limit, so a print
flood cannot exhaust the caller's memory. Two layers keep it in:

1. The operating system, with bubblewrap (``bwrap``). The process gets new user, pid, network,
   IPC, UTS and mount namespaces and no capabilities; its file system is a read-only view of
   ``/usr``, ``/lib*``, the interpreter's prefix and ``/etc/ld.so.cache`` (not ``/home``,
   ``/root``, the rest of ``/etc`` or the host's ``/tmp``); the only writable place is a
   size-capped tmpfs scratch directory (``/tmp``, its working directory), gone when it ends; it
   sees a fresh ``/proc`` (its own processes only) and a read-only minimal ``/dev``; the network
   has no interface but a loopback that is down; ``--die-with-parent`` and ``--new-session``
   tie it to the caller and cut it from the terminal. Nothing it does reaches the host's files,
   processes, secrets or network, whatever Python or C code it runs.
2. Inside the process, a prelude installs an audit hook (Python code cannot remove one) before
   the code runs. It refuses process creation, signals, non-Unix sockets, links, writes and
   deletions outside the scratch directory, reads outside it and the interpreter's and system's
   library directories (so no ``/etc/passwd``, ``~/.ssh`` or ``/proc/<pid>/environ``), the
   modules that have no audit events of their own (``_posixsubprocess``, ``ctypes``,
   ``_sqlite3``, ``_posixshmem``, subinterpreters), a second copy of an already loaded module
   (a fresh ``posix`` would come without the patched functions), native extensions from
   outside those library directories, and the ways to reach a frame that the hook or the pass
   proof lives in (``tb_frame``, ``gi_frame``, ``sys._current_frames``, signal handlers). The
   hook keeps its state in a closure no Python code can reach and resolves paths with
   functions captured before the code runs, so monkeypatching ``os`` cannot steer it.

Where bwrap is missing or cannot run (user namespaces disabled, as in many containers), probed
once per process with a trivial command, the sandbox logs a warning naming why, once, and runs
with the audit hook alone (plus ``unshare --net`` where that works, and a scratch directory on
the host, deleted afterwards), but only when the caller allows it (``allow_fallback``); else it
raises :class:`SandboxUnavailable`. The audit hook is defence in depth, not a security
boundary: C code never reports to it and the process keeps the caller's user. Run untrusted
code at scale where bwrap works, as a non-root user.

A HumanEval pass is proven, not inferred from the exit status: the parent draws a random token
for the run and hands it, with the sources, to the prelude on standard input, which it reads
(then points at ``/dev/null``) before any untrusted code runs. The token is kept only in the
audit hook's closure. After the program, the tests and ``check(entry_point)`` have all run, the
prelude's own code asks the hook for it, and the hook prints it only to that caller, only once.
Only a run whose stdout ends with the token passes: ``sys.exit(0)``, ``os._exit(0)`` or an
``atexit`` trick exit 0 without it. The sources are compiled separately (a completion cannot
swallow the tests into an unterminated string) and before any of them runs (it cannot rewrite
them). What no in-process proof can stop is code that makes the tests themselves pass, e.g. a
return value whose ``__eq__`` is always true or a patched builtin the tests call.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from .sandbox_prelude import PRELUDE

log = logging.getLogger(__name__)

OUTPUT_LIMIT = 10_000  # characters kept of stdout and of stderr
FILE_SIZE_LIMIT = 16 << 20  # bytes, any file the code writes, its captured output included
SCRATCH_LIMIT = 64 << 20  # bytes, the scratch tmpfs under bwrap (its memory is not in RLIMIT_AS)
SANDBOX_SCRATCH = "/tmp"  # the scratch directory's path inside bwrap
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}  # plus HOME and TMPDIR: the scratch directory


class SandboxUnavailable(RuntimeError):
    """bwrap cannot run here and the caller did not allow the weaker, audit-hook-only mode."""


@dataclass(frozen=True)
class SandboxResult:
    passed: bool
    status: str  # passed | failed | timeout | memory | error
    stdout: str
    stderr: str
    duration_s: float
    isolation: str = "bwrap"  # bwrap | audit-hook (the fallback)


def _python() -> str:
    """The base interpreter (a virtualenv's python is a link to it): the sandbox needs only its stdlib."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _read_only_view() -> list[str]:
    """bwrap arguments for the read-only file system: /usr, /bin, /lib* (links where the host has
    links), the interpreter's prefix when it is elsewhere, the dynamic linker's cache."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    bound = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
    python = _python()
    for prefix in (sys.base_prefix, sys.base_exec_prefix, os.path.dirname(os.path.dirname(python))):
        prefix = os.path.realpath(prefix)
        if prefix != "/" and not any(prefix == b or prefix.startswith(b + "/") for b in bound):
            args += ["--ro-bind", prefix, prefix]
            bound.append(prefix)
    return args + ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]


def _bwrap_command(bwrap: str, hardening: tuple[str, ...], scratch_bytes: int) -> list[str]:
    env = {**SANDBOX_ENV, "HOME": SANDBOX_SCRATCH, "TMPDIR": SANDBOX_SCRATCH}
    return [bwrap, "--unshare-all", "--unshare-user", *hardening, "--cap-drop", "ALL", "--die-with-parent",
            "--new-session", "--clearenv", *(a for k, v in env.items() for a in ("--setenv", k, v)),
            *_read_only_view(), "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
            "--size", str(scratch_bytes), "--tmpfs", SANDBOX_SCRATCH, "--remount-ro", "/",
            "--chdir", SANDBOX_SCRATCH, "--", _python(), "-I", "-B"]


@functools.cache
def _probe_bwrap() -> tuple[tuple[str, ...] | None, str]:
    """Whether bwrap runs here, tried once per process with a trivial command: (the hardening flags
    that work, "") or (None, why not). ``--disable-userns`` needs bwrap 0.8 and a kernel that
    allows it; without it the sandbox still holds (no capabilities, process creation refused)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bwrap (bubblewrap) is not installed (apt-get install bubblewrap)"
    why = ""
    for hardening in (("--disable-userns",), ()):
        command = [*_bwrap_command(bwrap, hardening, 1 << 20), "-c", "pass"]
        try:
            proc = subprocess.run(command, env=dict(SANDBOX_ENV), stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            return None, f"bwrap could not start: {e}"
        if proc.returncode == 0:
            return (bwrap, *hardening), ""
        why = why or proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
    return None, (f"bwrap cannot run here ({why}); user namespaces are probably disabled "
                  "(sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces, or a container's seccomp)")


def isolation() -> tuple[str, str]:
    """("bwrap", "") where the operating system isolates the runs, else ("audit-hook", why not)."""
    found, why = _probe_bwrap()
    return ("bwrap", "") if found else ("audit-hook", why)


_warned: set[str] = set()


def _warn_fallback(why: str, allowed: bool) -> None:
    if why not in _warned:
        _warned.add(why)
        log.warning("SANDBOX: untrusted code is NOT isolated by the operating system: %s. %s", why,
                    "Running it with the in-process audit hook alone, which determined code can get around."
                    if allowed else "Refusing to run it (allow_fallback=False).")


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


def _limit(memory_mb: int, cpu_s: int, max_processes: int | None) -> None:
    """Resource limits for the child, set between fork and exec (it is in its own session already).
    Under bwrap the process count is limited by the prelude instead: set here, it would count the
    caller's own processes against bwrap's forks."""
    for limit, value in ((resource.RLIMIT_AS, memory_mb << 20), (resource.RLIMIT_CPU, cpu_s),
                         (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT), (resource.RLIMIT_CORE, 0),
                         (resource.RLIMIT_NPROC, max_processes)):
        if value is not None:
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


def _run(parts: list[tuple[str, str]], *, prove_pass: bool, timeout_s: float, memory_mb: int, max_processes: int,
         allow_fallback: bool, audit_hook: bool = True) -> SandboxResult:
    """Run ``parts`` (file name, source) in order in one namespace. ``audit_hook=False`` (bwrap
    only, for the tests that show the operating system's layer holds on its own) skips the hook."""
    started = time.monotonic()
    bwrap, why = _probe_bwrap()
    if not audit_hook and (bwrap is None or prove_pass):
        raise ValueError("the audit hook can be left out only under bwrap and without a pass proof")
    if bwrap is None:
        _warn_fallback(why, allow_fallback)
        if not allow_fallback:
            raise SandboxUnavailable(f"bwrap cannot isolate untrusted code here: {why}; pass allow_fallback=True "
                                     "to run it with the in-process audit hook alone")
    token = f"phi4-pass-{secrets.token_hex(16)}" if prove_pass else ""
    with tempfile.TemporaryDirectory(prefix="phi4-sandbox-out-") as out_dir:
        scratch = None if bwrap else tempfile.mkdtemp(prefix="phi4-sandbox-")
        try:
            if bwrap:
                command = _bwrap_command(bwrap[0], bwrap[1:], SCRATCH_LIMIT)
                env, cwd = dict(SANDBOX_ENV), None  # bwrap's own environment shows in its /proc/1/environ
            else:
                command = [*_network_namespace_prefix(), _python(), "-I", "-B"]
                env, cwd = {**SANDBOX_ENV, "HOME": scratch, "TMPDIR": scratch}, scratch
            command += ["-c", PRELUDE]
            stdout_path, stderr_path = os.path.join(out_dir, "stdout"), os.path.join(out_dir, "stderr")
            with tempfile.TemporaryFile() as stdin, open(stdout_path, "wb") as stdout, \
                    open(stderr_path, "wb") as stderr:
                stdin.write(json.dumps({"token": token, "parts": parts, "audit_hook": audit_hook,
                                        "max_processes": max_processes if bwrap else None}).encode())
                stdin.seek(0)
                try:
                    proc = subprocess.Popen(command, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr,
                                            start_new_session=True,
                                            preexec_fn=lambda: _limit(memory_mb, int(timeout_s) + 1,
                                                                      None if bwrap else max_processes))
                except (OSError, subprocess.SubprocessError) as e:
                    return SandboxResult(False, "error", "", str(e), time.monotonic() - started,
                                         "bwrap" if bwrap else "audit-hook")
                try:
                    returncode = proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    returncode = None
                try:  # the whole group, whether it timed out or left children; under bwrap, the pid
                    os.killpg(proc.pid, signal.SIGKILL)  # namespace dies with it (--die-with-parent)
                except ProcessLookupError:
                    pass
                proc.wait()
            if bwrap and returncode is not None and returncode > 128:
                returncode = 128 - returncode  # bwrap exits 128 + n for a child killed by signal n
            err = _read_head(stderr_path)
            status = "timeout" if returncode is None else _status(returncode, err)
            if status == "passed" and prove_pass and not _ends_with_token(stdout_path, token):
                status = "failed"
                err += "\nsandbox: exited with status 0 before the tests finished (no pass token)"
            return SandboxResult(status == "passed", status, _read_head(stdout_path), err,
                                 time.monotonic() - started, "bwrap" if bwrap else "audit-hook")
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)


def run_untrusted(code: str, *, timeout_s: float = 5.0, memory_mb: int = 512, max_processes: int = 64,
                  allow_fallback: bool = True) -> SandboxResult:
    """Run ``code`` as a script in the sandbox; ``passed`` when it exits with status 0 in time.
    Raises :class:`SandboxUnavailable` where bwrap cannot run and ``allow_fallback`` is false."""
    return _run([("program.py", code)], prove_pass=False, timeout_s=timeout_s, memory_mb=memory_mb,
                max_processes=max_processes, allow_fallback=allow_fallback)


def run_humaneval(program: str, tests: str, entry_point: str, *, timeout_s: float = 5.0, memory_mb: int = 512,
                  max_processes: int = 64, allow_fallback: bool = True) -> SandboxResult:
    """HumanEval's check: the program, then its test code (which defines ``check``), then
    ``check(entry_point)``, each compiled on its own; ``passed`` only when all three ran to the end
    and the prelude printed this run's pass token after them (see the module docstring)."""
    if not entry_point.isidentifier():
        raise ValueError(f"entry point {entry_point!r} is not an identifier")
    return _run([("program.py", program), ("tests.py", tests), ("check.py", f"check({entry_point})\n")],
                prove_pass=True, timeout_s=timeout_s, memory_mb=memory_mb, max_processes=max_processes,
                allow_fallback=allow_fallback)
