"""A local HTTP server process we start and stop: a command on a free loopback port, ready when
its health URL answers 200, stopped with its whole process group (also at interpreter exit), its
output in a log file whose tail goes into every error. The embedded teacher
(``teacher.embedded``) and a launched vLLM policy server (``models.vllm_backend``) are two."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerStartError(RuntimeError):
    pass


class ServedProcess:
    """Subclasses give ``command()`` (``self.port`` is set when it is called); ``name`` says what
    runs in errors. ``with Sub(...) as server: ... server.base_url ...``"""

    name = "server"
    health_path = "/health"

    def __init__(self, log_path: str | Path | None = None, startup_timeout_s: float = 300.0,
                 env: dict[str, str] | None = None):
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"phi4-serve-{os.getpid()}.log"
        self.startup_timeout_s = startup_timeout_s
        self.env = dict(env or {})
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None

    error = ServerStartError

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise self.error(f"{self.name} is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self):
        if self._proc is not None:
            return self
        self.port = free_port()
        command = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            try:
                self._proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                              env={**self.env, **os.environ, **self._forced_env()},
                                              start_new_session=True)
            except OSError as e:  # the program is not there, or cannot run
                raise self.error(f"{self.name} could not start ({command[0]}: {e})") from None
        # Its own session keeps a Ctrl-C in the terminal from reaching it mid-batch, so it would
        # outlive a process that exits without stopping it (a failed test, an uncaught error):
        # stopped at exit instead.
        atexit.register(self.stop)  # unregistered by stop(): one entry per running server
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            rc = self._proc.poll()
            if rc is not None:
                tail = self._log_tail()
                self._proc = None
                raise self.error(f"{self.name} exited with code {rc} before it was ready (log {self.log_path}):\n{tail}")
            if self._healthy():
                return self
            time.sleep(0.25)
        self.stop()
        raise self.error(f"{self.name} was not healthy after {self.startup_timeout_s:.0f}s "
                         f"(log {self.log_path}):\n{self._log_tail()}")

    def _forced_env(self) -> dict[str, str]:
        """Variables set over the caller's environment (``self.env`` only fills in defaults)."""
        return {}

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.health_path}", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def _log_tail(self, n: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def stop(self, grace_s: float = 10.0) -> None:
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace_s)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
