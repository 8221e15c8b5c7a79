"""A real local HTTP server speaking the OpenAI chat-completions API, for the openai engine.

It answers ``POST .../chat/completions`` with recorded grounded outputs. Which output a request
gets is decided by its image: test pages are painted in distinct colours (:func:`page_color`),
and the server decodes the data URL and reads the colour back (:func:`page_of_image`), so a
page's answer proves its image travelled. Per page, a script of :class:`Reply` objects can
inject failures on chosen attempts (HTTP errors with ``Retry-After``, delays past the client's
timeout, dropped connections); every request is recorded, and the peak number of requests in
flight is kept, to check the client's concurrency bound.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

__all__ = [
    "FakeOpenAIServer",
    "Recorded",
    "Reply",
    "page_color",
    "page_of_image",
    "solid_page_image",
]

_PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
    (170, 110, 40),
    (128, 0, 0),
    (0, 0, 128),
]


def page_color(index: int) -> tuple[int, int, int]:
    """A colour that identifies page ``index`` (12 distinct ones; tests stay below that)."""
    return _PALETTE[index % len(_PALETTE)]


def solid_page_image(index: int, size: tuple[int, int] = (64, 80)) -> Image.Image:
    return Image.new("RGB", size, page_color(index))


def page_of_image(image: Image.Image) -> int:
    """The page index whose colour is nearest the image's top-left pixel (JPEG-tolerant)."""
    px = image.convert("RGB").getpixel((2, 2))
    assert isinstance(px, tuple)
    return min(
        range(len(_PALETTE)),
        key=lambda i: sum((a - b) ** 2 for a, b in zip(_PALETTE[i], px, strict=True)),
    )


def image_of_request(body: Mapping[str, Any]) -> Image.Image:
    """Decode the first image data URL of a chat-completions body."""
    for part in body["messages"][0]["content"]:
        if part.get("type") == "image_url":
            url = part["image_url"]["url"]
            _, b64 = url.split(",", 1)
            return Image.open(io.BytesIO(base64.b64decode(b64)))
    raise ValueError("no image in the request")


@dataclass
class Reply:
    """One answer. Defaults: the page's recorded output, ``finish_reason`` stop, at once."""

    status: int = 200
    text: str | None = None
    finish_reason: str = "stop"
    delay: float = 0.0
    """Seconds to wait before answering (past the client's timeout = an injected timeout)."""
    retry_after: str | None = None
    drop: bool = False
    """Close the connection without answering."""
    body: str | None = None
    """A raw body instead of a chat completion (malformed answers)."""


@dataclass
class Recorded:
    """One request as the server saw it."""

    key: Any
    attempt: int
    headers: dict[str, str]
    body: dict[str, Any]
    started: float
    finished: float = 0.0


@dataclass
class _State:
    outputs: Mapping[Any, str]
    latency: float
    scripts: dict[Hashable, list[Reply]] = field(default_factory=dict)
    attempts: dict[Hashable, int] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 resets connections when many clients connect at once.
    request_queue_size = 256


class FakeOpenAIServer:
    """Start with ``with FakeOpenAIServer(outputs) as server:``; ``server.base_url`` ends in /v1.

    ``outputs``: recorded text per key. ``key_of``: request body -> key (default: the page index
    read from the image colour; pass ``lambda body: None`` with ``outputs={None: ...}`` to skip
    image decoding, as the benchmark does). ``latency``: seconds every answer takes.
    ``api_key``: when set, requests without ``Authorization: Bearer <key>`` get 401.
    ``model``: when set, other model names get 404, as vLLM does.
    """

    def __init__(
        self,
        outputs: Mapping[Any, str],
        *,
        key_of: Callable[[Mapping[str, Any]], Any] | None = None,
        latency: float = 0.0,
        api_key: str | None = None,
        model: str | None = None,
    ) -> None:
        self.state = _State(outputs=outputs, latency=latency)
        self.key_of = key_of or (lambda body: page_of_image(image_of_request(body)))
        self.api_key = api_key
        self.model = model
        self._httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def script(self, key: Hashable, replies: Sequence[Reply]) -> None:
        """Answer the first ``len(replies)`` attempts for ``key`` with these, in order."""
        with self.state.lock:
            self.state.scripts[key] = list(replies)

    @property
    def requests(self) -> list[Recorded]:
        with self.state.lock:
            return list(self.state.requests)

    @property
    def max_in_flight(self) -> int:
        return self.state.max_in_flight

    def attempts(self, key: Hashable) -> int:
        with self.state.lock:
            return self.state.attempts.get(key, 0)

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the handler -----------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a real server
            # Headers and body go out in two writes; with Nagle on, delayed ACKs add ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if server.api_key is not None and (
                    self.headers.get("Authorization") != f"Bearer {server.api_key}"
                ):
                    self._json(401, {"error": {"message": "invalid api key"}})
                    return
                body = json.loads(raw)
                if server.model is not None and body.get("model") != server.model:
                    self._json(404, {"error": {"message": f"model {body.get('model')} not found"}})
                    return
                key = server.key_of(body)
                st = server.state
                with st.lock:
                    attempt = st.attempts.get(key, 0) + 1
                    st.attempts[key] = attempt
                    script = st.scripts.get(key, [])
                    reply = script[attempt - 1] if attempt <= len(script) else Reply()
                    rec = Recorded(key, attempt, dict(self.headers), body, time.monotonic())
                    st.requests.append(rec)
                    st.in_flight += 1
                    st.max_in_flight = max(st.max_in_flight, st.in_flight)
                try:
                    self._answer(key, body, reply)
                finally:
                    with st.lock:
                        st.in_flight -= 1
                        rec.finished = time.monotonic()

            def _answer(self, key: Hashable, body: Mapping[str, Any], reply: Reply) -> None:
                time.sleep(server.state.latency + reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                extra = {"Retry-After": reply.retry_after} if reply.retry_after else {}
                if reply.body is not None:
                    self._send(reply.status, reply.body.encode(), extra)
                    return
                if reply.status != 200:
                    self._json(reply.status, {"error": {"message": "injected"}}, extra)
                    return
                text = reply.text if reply.text is not None else server.state.outputs[key]
                self._json(
                    200,
                    {
                        "id": f"chatcmpl-{key}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": reply.finish_reason,
                                "logprobs": None,
                            }
                        ],
                        "usage": {
                            "prompt_tokens": 300,
                            "completion_tokens": len(text.split()),
                            "total_tokens": 300 + len(text.split()),
                        },
                    },
                )

            def _json(self, status: int, obj: Any, extra: Mapping[str, str] | None = None) -> None:
                self._send(status, json.dumps(obj).encode(), extra or {})

            def _send(self, status: int, data: bytes, extra: Mapping[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (an injected timeout)

        return Handler
