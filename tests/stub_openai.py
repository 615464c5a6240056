"""A scripted OpenAI-compatible chat endpoint on loopback, for deterministic teacher tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class StubReply:
    content: str | None = "ok"
    status: int = 200
    delay_s: float = 0.0
    headers: dict = field(default_factory=dict)
    body: dict | None = None  # a raw JSON body instead of a chat completion
    drop: bool = False  # close the connection without answering
    raw: bytes | None = None  # these bytes as the body, as they are (e.g. JSON cut short)

    def payload(self, request: dict) -> dict:
        if self.body is not None:
            return self.body
        if self.status != 200:
            return {"error": {"message": f"scripted {self.status}", "type": "stub_error"}}
        return {
            "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": request.get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": self.content}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        }


def echo(request: dict, hit: int) -> StubReply:
    return StubReply(content="echo: " + request["messages"][-1]["content"])


class StubOpenAI:
    """``with StubOpenAI(script) as stub: stub.base_url``; ``script(request, hit_number)``
    returns a ``StubReply``. Records every request, those answered in full (``answered``: the
    response was written), and the most requests in flight at once."""

    def __init__(self, script: Callable[[dict, int], StubReply] = echo):
        self.script = script
        self.requests: list[dict] = []
        self.answered: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                self._send(200, json.dumps({"status": "ok"} if self.path == "/health" else {"data": []}).encode())

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                request = json.loads(self.rfile.read(length) or b"{}")
                with stub._lock:
                    stub.requests.append(request)
                    stub.headers.append({k.lower(): v for k, v in self.headers.items()})
                    hit = len(stub.requests)
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    reply = stub.script(request, hit)
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    if reply.drop:
                        self.close_connection = True
                        return
                    data = reply.raw if reply.raw is not None else json.dumps(reply.payload(request)).encode()
                    if self._send(reply.status, data, reply.headers):
                        with stub._lock:
                            stub.answered.append(request)
                finally:
                    with stub._lock:
                        stub.in_flight -= 1

            def _send(self, status, data: bytes, headers=None) -> bool:
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                    return True
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    return False

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def hits(self) -> int:
        return len(self.requests)

    def __enter__(self) -> "StubOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
