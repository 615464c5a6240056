"""The embedded teacher endpoint: ``transformers serve`` (transformers' own OpenAI-compatible
server, continuous batching) on a free loopback port, started and stopped by us; and the cache
identity of the model directory it serves (``model_dir_identity``)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..core.ids import content_hash, file_digest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Continuous batching's paged KV cache, in tokens. Left to itself, ``transformers serve`` sizes it
# from the memory free when the first request arrives: 14 GB of a 23 GB machine for the 135M
# model, measured, and the kernel's OOM killer then took the server (and the assets' teacher calls
# with it) when the policy process or a test needed memory. Sized here from the load it serves
# instead (``TeacherResource``: concurrent requests x (prompt + completion)). Measured over
# SmolLM2-135M: 0.7 GB resident before the first request; 2.1 GB after it with a 32k-token cache;
# 1.8 GB through a small run (18k tokens).
DEFAULT_KV_CACHE_TOKENS = 16_384
KV_BLOCK_TOKENS = 256


class EmbeddedServerError(RuntimeError):
    pass


class EmbeddedServer:
    """``with EmbeddedServer(model_dir) as server: ... server.base_url ...``"""

    def __init__(self, model_dir: str | Path, dtype: str = "auto", log_path: str | Path | None = None,
                 startup_timeout_s: float = 300.0, kv_cache_tokens: int = DEFAULT_KV_CACHE_TOKENS):
        self.model_dir = str(Path(model_dir).resolve())
        self.dtype = dtype
        self.kv_cache_tokens = kv_cache_tokens
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"phi4-serve-{os.getpid()}.log"
        self.startup_timeout_s = startup_timeout_s
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise EmbeddedServerError("the embedded server is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model_name(self) -> str:
        """The name requests must carry: the server is pinned to this directory."""
        return self.model_dir

    def command(self) -> list[str]:
        dtype = self.dtype
        if dtype == "auto":
            from ..core.hardware import preferred_dtype_name

            dtype = preferred_dtype_name()
        return [sys.executable, "-m", "transformers.cli.transformers", "serve", self.model_dir,
                "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu" if not _has_cuda() else "auto",
                "--dtype", dtype, "--continuous-batching", "--cb-block-size", str(KV_BLOCK_TOKENS),
                "--cb-num-blocks", str(max(1, -(-self.kv_cache_tokens // KV_BLOCK_TOKENS))),
                "--log-level", "warning"]

    def start(self) -> "EmbeddedServer":
        if self._proc is not None:
            return self
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        env = {"OMP_WAIT_POLICY": "PASSIVE",  # it shares the cores with the policy process (see phi4_assets)
               **os.environ, "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "HF_HUB_OFFLINE": "1"}
        self._proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=env, start_new_session=True)
        log.close()
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
                raise EmbeddedServerError(f"transformers serve exited with code {rc} before it was "
                                          f"ready (log {self.log_path}):\n{tail}")
            if self._healthy():
                return self
            time.sleep(0.25)
        self.stop()
        raise EmbeddedServerError(f"transformers serve was not healthy after {self.startup_timeout_s:.0f}s "
                                  f"(log {self.log_path}):\n{self._log_tail()}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
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

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


_DIGESTS: dict[str, str] = {}
_DIGESTS_LOCK = threading.Lock()


def model_dir_identity(model_dir: str | Path) -> str:
    """A cache identity for a served model directory: a digest of its weights."""
    path = Path(model_dir).resolve()
    with _DIGESTS_LOCK:
        if str(path) not in _DIGESTS:
            weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
            _DIGESTS[str(path)] = content_hash([file_digest(w) for w in weights] or [str(path)])
        return _DIGESTS[str(path)]
