"""The embedded teacher endpoint: ``transformers serve`` (transformers' own OpenAI-compatible
server, continuous batching) on a free loopback port, started and stopped by us; and the cache
identity of the model directory it serves (``model_dir_identity``)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from ..core.ids import content_hash, file_digest
from ..core.served import ServedProcess, ServerStartError


# Continuous batching's paged KV cache, in tokens. Left to itself, ``transformers serve`` sizes it
# from the memory free when the first request arrives: 14 GB of a 23 GB machine for the 135M
# model, measured, and the kernel's OOM killer then took the server (and the assets' teacher calls
# with it) when the policy process or a test needed memory. Sized here from the load it serves
# instead (``TeacherResource``: concurrent requests x (prompt + completion)). Measured over
# SmolLM2-135M: 0.7 GB resident before the first request; 2.1 GB after it with a 32k-token cache;
# 1.8 GB through a small run (18k tokens).
DEFAULT_KV_CACHE_TOKENS = 16_384
KV_BLOCK_TOKENS = 256


class EmbeddedServerError(ServerStartError):
    pass


class EmbeddedServer(ServedProcess):
    """``with EmbeddedServer(model_dir) as server: ... server.base_url ...``"""

    name = "transformers serve"
    error = EmbeddedServerError

    def __init__(self, model_dir: str | Path, dtype: str = "auto", log_path: str | Path | None = None,
                 startup_timeout_s: float = 300.0, kv_cache_tokens: int = DEFAULT_KV_CACHE_TOKENS):
        # OMP_WAIT_POLICY: it shares the cores with the policy process (see phi4_assets).
        super().__init__(log_path, startup_timeout_s, env={"OMP_WAIT_POLICY": "PASSIVE"})
        self.model_dir = str(Path(model_dir).resolve())
        self.dtype = dtype
        self.kv_cache_tokens = kv_cache_tokens

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

    def _forced_env(self) -> dict[str, str]:
        return {"TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "HF_HUB_OFFLINE": "1"}


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
