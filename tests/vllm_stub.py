"""A loopback server speaking the subset of vLLM's OpenAI-compatible API the policy backend uses,
backed by a local model directory through transformers.

Shapes follow vLLM's documentation: ``GET /health``; ``GET /v1/models`` (``id`` the served name,
``root`` the model path); ``POST /v1/completions`` with ``prompt`` as token ids (a list, or a list
of lists), ``n``, ``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``logprobs`` and
``return_tokens_as_token_ids`` (tokens named ``"token_id:<id>"``); choices indexed
``prompt_index * n + j``, ``finish_reason`` "stop" or "length", the end-of-sequence token kept
in ``logprobs.tokens`` as vLLM keeps it in a choice's token ids.

    python tests/vllm_stub.py MODEL_DIR --port PORT [--served-model-name NAME] [--record FILE]

(``--record``: every request body, one JSON line each.) ``StubVllm(model_dir)`` runs it in a
thread for in-process tests.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Model:
    def __init__(self, model_dir: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.eos = self.tokenizer.eos_token_id
        self.lock = threading.Lock()

    def complete(self, prompt: list[int], n: int, temperature: float, top_p: float, max_tokens: int, seed: int):
        torch = self.torch
        with self.lock, torch.inference_mode():
            torch.manual_seed(seed)
            ids = torch.tensor([prompt])
            greedy = temperature == 0
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=not greedy,
                                      temperature=None if greedy else temperature, top_p=None if greedy else top_p,
                                      top_k=None, max_new_tokens=max_tokens, num_return_sequences=n,
                                      pad_token_id=self.eos, eos_token_id=self.eos, output_scores=True,
                                      return_dict_in_generate=True)
            scores = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        rows = []
        for row, row_scores in zip(out.sequences[:, len(prompt):].tolist(), scores.tolist()):
            end = row.index(self.eos) + 1 if self.eos in row else len(row)
            rows.append((row[:end], row_scores[:end], "stop" if self.eos in row else "length"))
        return rows


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {})
        elif self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [
                {"id": self.server.served_name, "object": "model", "owned_by": "vllm", "root": self.server.model_dir}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        if self.path != "/v1/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        if self.server.record:
            with open(self.server.record, "a") as f:
                f.write(json.dumps(body) + "\n")
        if body.get("model") != self.server.served_name:
            self._send(404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                       "type": "NotFoundError", "code": 404}})
            return
        prompt = body["prompt"]
        prompts = [prompt] if prompt and isinstance(prompt[0], int) else prompt
        if not all(isinstance(p, list) and all(isinstance(t, int) for t in p) for p in prompts):
            self._send(400, {"error": {"message": "this server takes token-id prompts only"}})
            return
        n = int(body.get("n", 1))
        as_ids = bool(body.get("return_tokens_as_token_ids"))
        choices = []
        for i, p in enumerate(prompts):
            rows = self.server.model.complete(p, n, float(body.get("temperature", 1.0)), float(body.get("top_p", 1.0)),
                                              int(body.get("max_tokens", 16)), int(body.get("seed") or 0))
            for j, (tokens, lps, finish) in enumerate(rows):
                tok = self.server.model.tokenizer
                logprobs = None if body.get("logprobs") is None else {
                    "tokens": [f"token_id:{t}" if as_ids else tok.decode([t]) for t in tokens],
                    "token_logprobs": lps, "top_logprobs": None, "text_offset": [0] * len(tokens)}
                choices.append({"index": i * n + j, "text": tok.decode(tokens, skip_special_tokens=True),
                                "logprobs": logprobs, "finish_reason": finish})
        self._send(200, {"id": f"cmpl-{len(self.server.requests)}", "object": "text_completion", "created": 0,
                         "model": self.server.served_name, "choices": choices,
                         "usage": {"prompt_tokens": sum(map(len, prompts)), "completion_tokens": 0,
                                   "total_tokens": 0}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, model_dir: str, served_name: str, record: str | None):
        super().__init__(("127.0.0.1", port), _Handler)
        self.model_dir, self.served_name, self.record = model_dir, served_name, record
        self.model = _Model(model_dir)
        self.requests: list[dict] = []


class StubVllm:
    """``with StubVllm(model_dir) as stub: stub.base_url, stub.requests``"""

    def __init__(self, model_dir, served_name: str | None = None):
        self.model_dir = str(Path(model_dir).resolve())
        self.server = _Server(0, self.model_dir, served_name or self.model_dir, None)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def requests(self) -> list[dict]:
        return self.server.requests

    def __enter__(self) -> "StubVllm":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-model-name")
    parser.add_argument("--record")
    args = parser.parse_args()
    model_dir = str(Path(args.model_dir).resolve())
    server = _Server(args.port, model_dir, args.served_model_name or model_dir, args.record)
    server.serve_forever()


if __name__ == "__main__":
    main()
