"""A second OpenAI-compatible server for the embedded teacher, built on the pipeline's own decoding
(``models.continuous.RunningBatch``) instead of ``transformers serve --continuous-batching``.

    python -m phi4_assets.teacher.batched_server MODEL_DIR --port PORT [--host 127.0.0.1]
        [--dtype auto|float32|bfloat16] [--max-batch 32] [--batch-wait-ms 50] [--threads N]

Why: on the 2-core CPUs, ``transformers serve`` gave ~105-110 completion tok/s at 16 concurrent
requests, while ``decode`` gave ~430 tok/s on 64 rows (a step costs 212 / 107 / 70 / 53 ms at
64 / 32 / 16 / 8 rows, and ``decode`` drops ended rows from the batch). Measured side by side on a
quiet machine (``bench/teacher_servers.py``: 48 greedy chat prompts, 128 tokens, 16 concurrent
clients, bf16, SmolLM2-135M-Instruct, both servers at torch's default 2 threads): 140 against 108
completion tok/s, 1.30x (1.27x in an earlier run). In float32 both servers gave the same 16
greedy replies text for text; in bf16 ``transformers serve`` repeated its own reply for 10 of 48
prompts between two runs, this server for 48 of 48 (BENCHMARKS.md).

How: ``ThreadingHTTPServer`` (standard library) handler threads check a request, template and
tokenize it, put it on a queue and wait. One worker thread owns the model and one running batch
(``models.continuous.RunningBatch``): between two decode steps, the requests waiting join it (up
to ``--max-batch`` rows), prefilled together and appended; each step draws a token for every row
(rows with equal sampling settings drawn together), and a request is answered as soon as its row
ends, its slot free for the next. When the batch is empty the worker waits for a request and for
the ones that follow it, each within ``--batch-wait-ms`` of the one before, so a burst of
concurrent requests starts as one batch. One INFO line each time the batch drains.

Serves ``GET /health``, ``GET /v1/models``, ``GET /stats`` (``{"batches": [requests of each join
into the running batch]}``, for tests and benchmarks) and ``POST /v1/chat/completions``:

- ``model`` must be the served directory's resolved path (404 otherwise);
- ``messages``: the tokenizer's chat template with ``add_generation_prompt=True``; content is a
  string or a list of text parts;
- ``temperature`` (default 1.0): 0 is greedy (the argmax: per row what ``generate(do_sample=False)``
  gives for the prompt alone, exactly in float32; bf16's batched arithmetic may differ slightly),
  above 0 samples through ``TopKTopPSampling(temperature, model_top_k(model), top_p)``;
  ``top_p`` (default 1.0);
- ``max_completion_tokens`` or ``max_tokens`` (default 256; the first wins when both are given);
- ``seed``: where every sampled request joining an empty batch carries a seed, the draws are
  seeded from them (rows in a fixed order), so the same set arriving alone reproduces; a request's draw
  depends on the rows it shares steps with (as in vLLM), so only that reproduces (a seeded request
  sent alone, one at a time, always does);
- ``n`` must be 1, ``stream`` must be false (400 otherwise), ``stop`` must be absent (stop strings
  are not supported: 400 rather than ignoring them); ``response_format`` is ignored (as
  ``transformers serve`` does: no constrained decoding); other fields are ignored.

The reply is a ``chat.completion``: the new tokens decoded with special tokens skipped, the stop
token (``decode.stop_ids``) excluded from the text; ``finish_reason`` is ``stop`` or ``length``;
``usage.completion_tokens`` counts the stop token when the turn ended with one (as
``transformers serve`` and vLLM count it), so a reply cut at ``max_tokens`` has exactly that many.
Bad JSON or a field of the wrong type or range is a 400 naming the field; a failure inside decode
is a 500 for every request in the batch, and the server keeps serving. Not supported: streaming,
``n`` > 1, stop strings, log-probabilities, tools, penalties, the completions API.

``OMP_WAIT_POLICY=PASSIVE``: importing ``phi4_assets`` (which ``python -m`` does before this
module) sets it before torch loads, unless it is set already. torch and transformers are imported
only in the server process, so ``BatchedServer`` (which starts it) is cheap to import.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import queue
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..core.served import ServedProcess, ServerStartError

log = logging.getLogger("phi4_assets.teacher.batched_server")

DEFAULT_MAX_TOKENS = 256
DEFAULT_TEMPERATURE = 1.0  # OpenAI's default


# -- the server process, started and stopped by the pipeline -------------------------------------

class BatchedServerError(ServerStartError):
    pass


class BatchedServer(ServedProcess):
    """``with BatchedServer(model_dir) as server: ... server.base_url ...``"""

    name = "the batched teacher server"
    error = BatchedServerError

    def __init__(self, model_dir: str | Path, dtype: str = "auto", log_path: str | Path | None = None,
                 startup_timeout_s: float = 300.0, max_batch: int = 32, batch_wait_ms: float = 50.0,
                 threads: int | None = None):
        # OMP_WAIT_POLICY: it shares the cores with the policy process (see phi4_assets).
        super().__init__(log_path, startup_timeout_s, env={"OMP_WAIT_POLICY": "PASSIVE"})
        self.model_dir = str(Path(model_dir).resolve())
        self.dtype = dtype
        self.max_batch = max_batch
        self.batch_wait_ms = batch_wait_ms
        self.threads = threads

    @property
    def model_name(self) -> str:
        """The name requests must carry: the server is pinned to this directory."""
        return self.model_dir

    def command(self) -> list[str]:
        command = [sys.executable, "-m", "phi4_assets.teacher.batched_server", self.model_dir,
                   "--port", str(self.port), "--host", "127.0.0.1", "--dtype", self.dtype,
                   "--max-batch", str(self.max_batch), "--batch-wait-ms", str(self.batch_wait_ms)]
        return command + (["--threads", str(self.threads)] if self.threads else [])

    def _forced_env(self) -> dict[str, str]:
        return {"TRANSFORMERS_NO_ADVISORY_WARNINGS": "1", "HF_HUB_OFFLINE": "1"}


# -- requests ---------------------------------------------------------------------------------

class RequestError(Exception):
    """A request answered with an OpenAI-style error body."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": None}}


@dataclass(frozen=True)
class ChatParams:
    messages: list[dict[str, str]]
    temperature: float
    top_p: float
    max_tokens: int
    seed: int | None


def _number(body: dict, name: str, default: float, low: float, high: float | None = None) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(400, f"'{name}' must be a number, got {json.dumps(value)}", name)
    if value < low or (high is not None and value > high):
        raise RequestError(400, f"'{name}' must be in [{low}, {high if high is not None else 'inf'}], got {value}",
                           name)
    return float(value)


def _integer(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise RequestError(400, f"'{name}' must be an integer, got {json.dumps(value)}", name)
    return value


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise RequestError(400, "'messages' must be a non-empty list", "messages")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(400, f"'messages[{i}]' must be an object with a string 'role'", f"messages[{i}]")
        content = message.get("content")
        if isinstance(content, list):  # text parts
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):
                raise RequestError(400, f"'messages[{i}].content': only text parts are supported",
                                   f"messages[{i}].content")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str):
            raise RequestError(400, f"'messages[{i}].content' must be a string or a list of text parts",
                               f"messages[{i}].content")
        out.append({"role": message["role"], "content": content})
    return out


def parse_chat(body: Any, model_name: str) -> ChatParams:
    """The sampling parameters of a chat completion body; ``RequestError`` where it is refused."""
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str):
        raise RequestError(400, "'model' must be a string", "model")
    if model != model_name:
        raise RequestError(404, f"The model '{model}' does not exist: this server serves '{model_name}'", "model",
                           kind="invalid_request_error")
    messages = _messages(body.get("messages"))
    n = _integer(body, "n")
    if n not in (None, 1):
        raise RequestError(400, f"'n' must be 1 (one choice per request is supported), got {n}", "n")
    stream = body.get("stream")
    if stream not in (None, False, True):
        raise RequestError(400, f"'stream' must be a boolean, got {json.dumps(stream)}", "stream")
    if stream:
        raise RequestError(400, "'stream': streaming is not supported", "stream")
    if body.get("stop") not in (None, [], ""):
        raise RequestError(400, "'stop': stop strings are not supported", "stop")
    limit = None
    for name in ("max_completion_tokens", "max_tokens"):
        value = _integer(body, name)
        if value is not None and value < 1:
            raise RequestError(400, f"'{name}' must be at least 1, got {value}", name)
        limit = limit if limit is not None else value
    return ChatParams(messages=messages, temperature=_number(body, "temperature", DEFAULT_TEMPERATURE, 0.0),
                      top_p=_number(body, "top_p", 1.0, 0.0, 1.0),
                      max_tokens=limit if limit is not None else DEFAULT_MAX_TOKENS, seed=_integer(body, "seed"))


@dataclass
class Job:
    """One request on its way through the worker."""

    prompt_ids: list[int]
    params: ChatParams
    done: threading.Event = field(default_factory=threading.Event)
    token_ids: list[int] = field(default_factory=list)
    finished: bool = False
    text: str = ""
    error: str | None = None


def _mixed_seed(seeds: Sequence[int]) -> int:
    if len(seeds) == 1:
        return seeds[0] % 2**63
    return int.from_bytes(hashlib.sha256(json.dumps(list(seeds)).encode()).digest()[:8], "little") % 2**63


# -- the engine: one worker thread owns the model ------------------------------------------------

class Engine:
    def __init__(self, model_dir: str, dtype: str = "auto", max_batch: int = 32, batch_wait_ms: float = 50.0):
        from ..models.decode import stop_ids
        from ..models.generation import load_policy
        from ..models.sampling import model_top_k

        self.model_name = str(Path(model_dir).resolve())
        self.model, self.tokenizer = load_policy(self.model_name, dtype=None if dtype == "auto" else dtype)
        self.stops = stop_ids(self.model, self.tokenizer)
        self.top_k = model_top_k(self.model)
        self.context = getattr(self.model.config, "max_position_embeddings", None)
        self.max_batch = max(1, max_batch)
        self.batch_wait_s = max(0.0, batch_wait_ms) / 1000
        self.batches: list[int] = []  # requests of each join into the running batch, for /stats
        self._choosers: dict[tuple[float, float], Any] = {}
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._tokenizer_lock = threading.Lock()  # the fast tokenizer is not safe to share across threads
        self._worker = threading.Thread(target=self._run, name="decode-worker", daemon=True)
        self._worker.start()

    def submit(self, params: ChatParams) -> Job:
        """Template and tokenize in the caller's thread, queue, and return the job once it is done."""
        with self._tokenizer_lock:
            try:
                prompt = self.tokenizer.apply_chat_template(params.messages, tokenize=False,
                                                            add_generation_prompt=True)
            except Exception as e:  # noqa: BLE001 - a template that refuses these messages
                raise RequestError(400, f"'messages': the chat template failed: {e}", "messages") from None
            ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if self.context and len(ids) + params.max_tokens > self.context:
            raise RequestError(400, f"the prompt ({len(ids)} tokens) and max_tokens ({params.max_tokens}) exceed "
                                    f"the model's context of {self.context} tokens", "max_tokens")
        job = Job(ids, params)
        self._queue.put(job)
        job.done.wait()
        return job

    def _take(self, room: int, block: bool) -> list[Job]:
        """Waiting requests, at most ``room``. ``block``: the batch is empty, so wait for the first
        and for those that follow it, each within ``batch_wait_s`` of the one before (a burst of
        concurrent requests reaches the queue one tokenization at a time); else only those
        already waiting (the batch is decoding: they join it between two steps)."""
        jobs: list[Job] = []
        if block:
            jobs.append(self._queue.get())
        while len(jobs) < room:
            try:
                jobs.append(self._queue.get(timeout=self.batch_wait_s) if block else self._queue.get_nowait())
            except queue.Empty:
                break
        return jobs

    def _chooser(self, params: ChatParams):
        """One chooser per sampling setting, so the rows sharing it are drawn together."""
        from ..models.decode import greedy_choice
        from ..models.sampling import TopKTopPSampling

        if params.temperature == 0:
            return greedy_choice
        key = (params.temperature, params.top_p)
        if key not in self._choosers:
            self._choosers[key] = TopKTopPSampling(params.temperature, self.top_k, params.top_p).draw
        return self._choosers[key]

    def _run(self) -> None:
        from ..models.continuous import RunningBatch

        batch = RunningBatch(self.model, self.stops, pad_token_id=self.tokenizer.pad_token_id or 0)
        steps, tokens, t0 = 0, 0, time.perf_counter()
        while True:
            jobs = self._take(self.max_batch - len(batch), block=not len(batch))
            try:
                if jobs:
                    self._join(batch, jobs)
                ended = batch.step()
                steps += 1
                tokens += len(batch) + len(ended)
            except Exception as e:  # noqa: BLE001 - the live requests get it; the server goes on
                log.exception("decoding %d rows failed", len(batch) + len(jobs))
                for row in batch.abandon():
                    row.tag.error = f"{type(e).__name__}: {e}"
                    row.tag.done.set()
                for job in jobs:
                    if not job.done.is_set():
                        job.error = f"{type(e).__name__}: {e}"
                        job.done.set()
                continue
            self._finish(ended)
            if not len(batch) and steps:
                seconds = time.perf_counter() - t0
                log.info("batch drained: %d steps, %d tokens, %.2f s, %.1f tok/s, %d waiting", steps, tokens, seconds,
                         tokens / max(seconds, 1e-9), self._queue.qsize())
                steps, tokens, t0 = 0, 0, time.perf_counter()

    def _join(self, batch, jobs: list[Job]) -> None:
        import torch

        sampled = [j for j in jobs if j.params.temperature > 0]
        if not len(batch) and sampled and all(j.params.seed is not None for j in sampled):
            # An empty batch joined by seeded sampled requests (greedy ones draw nothing): the same
            # set arriving alone draws the same.
            jobs.sort(key=lambda j: (j.params.seed if j.params.seed is not None else -1, j.prompt_ids,
                                     j.params.max_tokens, j.params.temperature, j.params.top_p))
            torch.manual_seed(_mixed_seed(sorted(j.params.seed for j in sampled)))  # not in arrival order
        self.batches.append(len(jobs))
        self._finish(batch.join([j.prompt_ids for j in jobs], [j.params.max_tokens for j in jobs], jobs,
                                [self._chooser(j.params) for j in jobs]))

    def _finish(self, rows) -> None:
        if not rows:
            return
        with self._tokenizer_lock:
            for row in rows:
                job = row.tag
                job.token_ids, job.finished = row.token_ids, row.finished
                job.text = self.tokenizer.decode(row.token_ids, skip_special_tokens=True)
        for row in rows:
            row.tag.done.set()

    def complete(self, body: Any) -> dict:
        """A ``chat.completion`` for a request body; ``RequestError`` where it is refused or failed."""
        job = self.submit(parse_chat(body, self.model_name))
        if job.error is not None:
            raise RequestError(500, job.error, kind="server_error")
        completion = len(job.token_ids) + job.finished  # the stop token counts, as transformers serve counts it
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": job.text},
                             "finish_reason": "stop" if job.finished else "length"}],
                "usage": {"prompt_tokens": len(job.prompt_ids), "completion_tokens": completion,
                          "total_tokens": len(job.prompt_ids) + completion}}


# -- HTTP ---------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every reply carries its Content-Length
    engine: Engine  # set on the subclass made by ``serve``

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/health":
            self._send(200, {"status": "ok"})
        elif path == "/v1/models":
            name = self.engine.model_name
            self._send(200, {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "local",
                                                         "root": name}]})
        elif path == "/stats":
            self._send(200, {"batches": list(self.engine.batches)})
        else:
            self._send(404, RequestError(404, f"no route GET {path}").body())

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if path != "/v1/chat/completions":
            self._send(404, RequestError(404, f"no route POST {path}").body())
            return
        try:
            try:
                body = json.loads(raw)
            except ValueError as e:
                raise RequestError(400, f"the body is not JSON: {e}") from None
            self._send(200, self.engine.complete(body))
        except RequestError as e:
            self._send(e.status, e.body())
        except Exception as e:  # noqa: BLE001 - a bug here is this request's 500, not the server's end
            log.exception("request failed")
            self._send(500, RequestError(500, f"{type(e).__name__}: {e}", kind="server_error").body())

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s " + format, self.address_string(), *args)


def serve(engine: Engine, host: str, port: int) -> None:
    handler = type("BoundHandler", (Handler,), {"engine": engine})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    log.info("serving %s on http://%s:%d/v1 (%s, %d threads, max batch %d, batch wait %.0f ms)", engine.model_name,
             host, port, engine.model.dtype, _threads(), engine.max_batch, engine.batch_wait_s * 1000)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="An OpenAI-compatible chat server over models.continuous.RunningBatch.")
    parser.add_argument("model_dir")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16"))
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--batch-wait-ms", type=float, default=50.0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    engine = Engine(args.model_dir, dtype=args.dtype, max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms)
    try:
        serve(engine, args.host, args.port)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
