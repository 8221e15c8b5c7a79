"""``engine="openai"``: a DeepOCR-family model behind any OpenAI-compatible chat-completions server.

Made for vLLM (``vllm serve deepseek-ai/DeepSeek-OCR-2 --logits_processors
vllm.model_executor.models.deepseek_ocr:NGramPerReqLogitsProcessor --no-enable-prefix-caching
--mm-processor-cache-gb 0``), but any server speaking ``POST /v1/chat/completions`` with image
data URLs works.

* Each page is rendered and encoded (PNG or JPEG data URL) on a small thread pool, then sent with
  the task prompt (without the ``<image>`` placeholder: the server inserts the image),
  ``temperature=0``, ``skip_special_tokens=False`` and the n-gram repetition guard in
  ``vllm_xargs`` (what vLLM's ``NGramPerReqLogitsProcessor`` reads). ``max_tokens`` is left out
  unless set: vLLM answers 400 when prompt + ``max_tokens`` exceeds the context (8192 for
  DeepSeek-OCR-2, of which the image takes up to ~1100), and without it generates up to the end
  of the context, which is what a page needs.
* Requests run on a private asyncio loop in a background thread, so :meth:`OpenAIEngine.run`
  stays synchronous and also works when called from inside a running event loop (a notebook).
  At most ``concurrency`` requests are in flight; at most ``max_pending`` pages are taken from
  the input ahead of the one being yielded, so memory stays flat on long documents.
* 408/429/5xx answers, timeouts and connection errors are retried with exponential back-off and
  jitter, honouring ``Retry-After`` (up to 120 s). A page that still fails is yielded ``failed``
  with the error; ``finish_reason == "length"`` gives a ``truncated`` page with its partial text.
* The API key (argument, ``DEEPOCR_API_KEY`` or ``OPENAI_API_KEY``) is sent as a Bearer token and
  appears in no repr, log line or cache identity.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import io
import json
import logging
import os
import random
import threading
import time
import weakref
from collections import deque
from collections.abc import Coroutine, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

try:
    import httpx
except ImportError as exc:  # an optional extra
    raise ImportError("engine 'openai' needs httpx: pip install 'deepocr-loaders[openai]'") from exc

from ..document import Page, PageStatus
from ..errors import EngineError
from . import register_engine
from .base import Engine, PageInput, Task, prompt_for

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "MAX_RETRY_AFTER",
    "WHITELIST_TOKEN_IDS",
    "OpenAIEngine",
    "chat_completions_url",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

DEFAULT_MODEL = "deepseek-ai/DeepSeek-OCR-2"
DEFAULT_BASE_URL = "http://localhost:8000/v1"  # ``vllm serve``'s default address
#: Environment variables read for the API key / base URL, first match wins.
API_KEY_ENV = ("DEEPOCR_API_KEY", "OPENAI_API_KEY")
BASE_URL_ENV = ("DEEPOCR_BASE_URL", "OPENAI_BASE_URL")
#: ``<td>`` and ``</td>`` in the DeepSeek-OCR / OCR-2 tokenizer (the vLLM recipe's whitelist):
#: table cells legitimately repeat, so the n-gram guard must not ban them.
WHITELIST_TOKEN_IDS = (128821, 128822)
#: Longest ``Retry-After`` wait honoured, in seconds.
MAX_RETRY_AFTER = 120.0

_FINISHED = frozenset({None, "stop", "eos", "end_turn"})


def chat_completions_url(base_url: str) -> str:
    """The chat-completions endpoint for ``base_url`` (``http://host:8000`` gets ``/v1``)."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise EngineError(f"base_url must be an http(s) URL, got {_public_url(base_url)!r}")
    if parts.path in ("", "/"):
        url += "/v1"
    return url + "/chat/completions"


def _public_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for reprs and messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _retryable(status: int) -> bool:
    # 501/505 say the server will never accept this request; other 5xx are usually transient.
    return status in (408, 429) or (500 <= status < 600 and status not in (501, 505))


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


class _Secret:
    """A string that never shows itself in a repr or str (the API key)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


@dataclass
class _Outcome:
    """What the server made of one page (or why it could not)."""

    text: str | None = None
    finish_reason: str | None = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    usage: dict[str, Any] = field(default_factory=dict)


class _LoopThread:
    """An asyncio loop running forever in a daemon thread; coroutines are submitted to it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, _T]) -> Future[_T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        if threading.current_thread() is self.thread:  # finalised on the loop itself
            self.loop.stop()
            return
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


@register_engine("openai")
class OpenAIEngine(Engine):
    """Pages OCR'd by a DeepOCR-family model behind an OpenAI-compatible endpoint.

    ``model``: the served model name (default ``deepseek-ai/DeepSeek-OCR-2``). ``base_url``: the
    API root, e.g. ``http://gpu-1:8000/v1`` (default ``DEEPOCR_BASE_URL``, ``OPENAI_BASE_URL``,
    then ``http://localhost:8000/v1``). ``api_key``: default ``DEEPOCR_API_KEY`` then
    ``OPENAI_API_KEY``; none sends no Authorization header.
    ``concurrency``: requests in flight. ``max_pending``: pages taken ahead of the one being
    yielded (default ``2 * concurrency``). ``timeout``: seconds per attempt; ``connect_timeout``.
    ``max_retries``: retries after the first attempt; ``backoff`` / ``max_backoff``: the
    exponential back-off base and cap in seconds (``Retry-After`` overrides them, up to 120 s).
    ``max_tokens``: cap on generated tokens (default: none sent, the server's context limit);
    ``ngram_size`` / ``ngram_window`` / ``whitelist_token_ids``: the vLLM n-gram
    guard (``ngram_size=None`` sends no ``vllm_xargs``, for servers that are not vLLM).
    ``image_format``: ``"png"`` (lossless, default) or ``"jpeg"`` (``jpeg_quality``).
    ``encode_workers``: threads that render and encode pages. ``query``: for ``Task.LOCATE``.
    ``extra_body``: more request fields, merged last. ``headers``: more HTTP headers (not logged).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 16,
        max_pending: int | None = None,
        timeout: float = 300.0,
        connect_timeout: float = 10.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        max_tokens: int | None = None,
        ngram_size: int | None = 30,
        ngram_window: int = 90,
        whitelist_token_ids: Sequence[int] = WHITELIST_TOKEN_IDS,
        image_format: str = "png",
        jpeg_quality: int = 90,
        encode_workers: int | None = None,
        query: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if concurrency < 1:
            raise EngineError("concurrency must be at least 1")
        if max_pending is not None and max_pending < 1:
            raise EngineError("max_pending must be at least 1")
        if timeout <= 0 or connect_timeout <= 0:
            raise EngineError("timeouts must be positive")
        if max_retries < 0 or backoff < 0 or max_backoff < 0:
            raise EngineError("max_retries, backoff and max_backoff must not be negative")
        if max_tokens is not None and max_tokens < 1:
            raise EngineError("max_tokens must be at least 1")
        if ngram_size is not None and not 1 <= ngram_size <= ngram_window:
            raise EngineError("the n-gram guard needs 1 <= ngram_size <= ngram_window")
        fmt = image_format.lower()
        if fmt == "jpg":
            fmt = "jpeg"
        if fmt not in ("png", "jpeg"):
            raise EngineError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
        self.model = model or DEFAULT_MODEL
        env_url = next((os.environ[v] for v in BASE_URL_ENV if os.environ.get(v)), None)
        self.base_url = base_url or env_url or DEFAULT_BASE_URL
        self.url = chat_completions_url(self.base_url)
        env_key = next((os.environ[v] for v in API_KEY_ENV if os.environ.get(v)), None)
        key = api_key if api_key is not None else env_key
        self._api_key = _Secret(key) if key else None
        self._headers = dict(headers or {})
        self.concurrency = concurrency
        self.max_pending = max(max_pending or 2 * concurrency, 1)
        self.timeout = float(timeout)
        self.connect_timeout = float(min(connect_timeout, timeout))
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_tokens = max_tokens
        self.ngram_size = ngram_size
        self.ngram_window = ngram_window
        self.whitelist_token_ids = [int(t) for t in whitelist_token_ids]
        self.image_format = fmt
        self.jpeg_quality = jpeg_quality
        self.encode_workers = encode_workers or min(4, os.cpu_count() or 1)
        self.query = query
        self.extra_body = dict(extra_body or {})
        self._runner: _LoopThread | None = None
        self._client: httpx.AsyncClient | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._sem: asyncio.Semaphore | None = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._inflight: set[Future[_Outcome]] = set()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model!r}, base_url={_public_url(self.base_url)!r}, "
            f"concurrency={self.concurrency}, api_key={'***' if self._api_key else None})"
        )

    # -- the Engine interface --------------------------------------------------------------

    def cache_identity(self) -> dict[str, Any]:
        """Model and generation settings; not the URL (replicas share a cache) nor secrets."""
        extra = json.dumps(self.extra_body, sort_keys=True, default=str)
        return {
            "engine": self.name,
            "model": self.model,
            "max_tokens": self.max_tokens,
            "ngram": None
            if self.ngram_size is None
            else [self.ngram_size, self.ngram_window, sorted(self.whitelist_token_ids)],
            "image": self.image_format
            + (f":{self.jpeg_quality}" if self.image_format == "jpeg" else ""),
            "query": self.query,
            "extra_body": hashlib.sha256(extra.encode()).hexdigest()[:16]
            if self.extra_body
            else None,
        }

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        """One Page per input, in input order, with up to ``concurrency`` requests in flight."""
        prompt = self.prompt(task)
        runner = self._start()
        window: deque[tuple[PageInput, Future[_Outcome]]] = deque()
        source = iter(pages)
        exhausted = False
        try:
            while True:
                # Inputs are pulled here, in the caller's thread (the pipeline's page cache and
                # bookkeeping are not thread-safe); only rendering and HTTP leave it.
                while not exhausted and len(window) < self.max_pending:
                    inp = next(source, None)
                    if inp is None:
                        exhausted = True
                    else:
                        window.append((inp, self._submit(runner, inp, prompt)))
                if not window:
                    return
                inp, fut = window.popleft()
                yield self._make_page(inp, self._outcome(fut))
        finally:
            for _, fut in window:  # the caller stopped early: nothing left running
                fut.cancel()

    def _submit(self, runner: _LoopThread, inp: PageInput, prompt: str) -> Future[_Outcome]:
        fut: Future[_Outcome]
        if self._runner is not runner:  # closed while this run was suspended
            fut = Future()
            fut.set_result(_Outcome(error="engine closed before the page was sent"))
            return fut
        fut = runner.submit(self._page(inp, prompt))
        # close() cancels what is left, so a waiting run() never hangs.
        self._inflight.add(fut)
        fut.add_done_callback(self._inflight.discard)
        return fut

    def close(self) -> None:
        """Close the HTTP connections and stop the loop thread (a later run starts them again)."""
        with self._lock:
            runner, client, pool = self._runner, self._client, self._pool
            self._runner = self._client = self._pool = None
            self._sem = None
            if self._finalizer is not None:
                self._finalizer.detach()
                self._finalizer = None
        for fut in list(self._inflight):
            fut.cancel()
        if runner is not None:
            if client is not None:
                try:
                    runner.submit(client.aclose()).result(timeout=10)
                except Exception:  # closing must not raise; the thread stops regardless
                    log.debug("closing the HTTP client failed", exc_info=True)
            runner.stop()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # -- request building ------------------------------------------------------------------

    def prompt(self, task: Task | str) -> str:
        """The task prompt without the ``<image>`` placeholder (the server places the image)."""
        text = prompt_for(task, query=self.query)
        head, sep, tail = text.partition("<image>")
        return (head + tail.removeprefix("\n")) if sep else text

    def payload(self, data_url: str, prompt: str) -> dict[str, Any]:
        """The chat-completions request body for one page."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    # Image first, as ``<image>\n<prompt>`` in the model's own prompts.
                    "content": [
                        {"type": "image_url", "image_url": {"url": data_url}},
                        {"type": "text", "text": prompt},
                    ],
                }
            ],
            "temperature": 0.0,
            "stream": False,
            "skip_special_tokens": False,  # grounding tags are special tokens
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.ngram_size is not None:
            body["vllm_xargs"] = {
                "ngram_size": self.ngram_size,
                "window_size": self.ngram_window,
                "whitelist_token_ids": self.whitelist_token_ids,
            }
        body.update(self.extra_body)
        return body

    def data_url(self, inp: PageInput) -> str:
        """The page image as a ``data:`` URL (renders the page, then drops the cached image)."""
        image = inp.image
        buf = io.BytesIO()
        if self.image_format == "jpeg":
            image.convert("RGB").save(buf, format="JPEG", quality=self.jpeg_quality)
        else:
            # Level 1: ~1.7x faster than the default 6 for ~7% more bytes on a text page.
            image.save(buf, format="PNG", compress_level=1)
        inp.release()
        return f"data:image/{self.image_format};base64," + base64.b64encode(buf.getvalue()).decode()

    def _encode(self, inp: PageInput, prompt: str) -> bytes:
        return json.dumps(self.payload(self.data_url(inp), prompt)).encode()

    # -- the async side (loop thread) ------------------------------------------------------

    def _start(self) -> _LoopThread:
        with self._lock:
            if self._runner is not None:
                return self._runner
            runner = _LoopThread(f"openai-engine-{id(self):x}")
            self._pool = ThreadPoolExecutor(self.encode_workers, thread_name_prefix="openai-enc")
            headers = {"Content-Type": "application/json", **self._headers}
            if self._api_key is not None:
                headers["Authorization"] = f"Bearer {self._api_key.reveal()}"
            limits = httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            )
            timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)

            async def setup() -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
                # Made on the loop they will be used on.
                client = httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout)
                return client, asyncio.Semaphore(self.concurrency)

            self._client, self._sem = runner.submit(setup()).result()
            self._runner = runner
            # A forgotten engine must not leave its thread behind.
            self._finalizer = weakref.finalize(self, runner.stop)
            return runner

    async def _page(self, inp: PageInput, prompt: str) -> _Outcome:
        assert self._pool is not None and self._sem is not None
        loop = asyncio.get_running_loop()
        try:
            content = await loop.run_in_executor(self._pool, self._encode, inp, prompt)
        except Exception as exc:
            return _Outcome(error=f"could not render the page: {type(exc).__name__}: {exc}")
        async with self._sem:
            return await self._send(content, inp.label or str(inp.index + 1))

    async def _send(self, content: bytes, label: str) -> _Outcome:
        """POST one page, retrying transient failures; never raises."""
        assert self._client is not None
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            wait_hint: float | None = None
            try:
                # wait_for bounds the whole attempt; httpx's own timeouts are per read/write.
                resp = await asyncio.wait_for(
                    self._client.post(self.url, content=content), self.timeout
                )
            except (asyncio.TimeoutError, httpx.TimeoutException):
                error, retry = f"timed out after {self.timeout:g} s", True
            except httpx.TransportError as exc:  # refused, reset, dropped mid-answer
                error, retry = f"connection error: {type(exc).__name__}: {exc}", True
            else:
                if resp.status_code == 200:
                    try:
                        return self._parse(resp, attempt, time.monotonic() - start)
                    except ValueError as exc:
                        error, retry = f"malformed answer: {exc}", False
                else:
                    error = f"HTTP {resp.status_code}: {_snippet(resp.text)}"
                    retry = _retryable(resp.status_code)
                    wait_hint = _retry_after(resp.headers.get("retry-after"))
            if not retry or attempt > self.max_retries:
                tries = f"{attempt} attempt" + ("s" if attempt > 1 else "")
                return _Outcome(
                    error=f"{error} ({tries})",
                    attempts=attempt,
                    seconds=time.monotonic() - start,
                )
            delay = self._delay(attempt, wait_hint)
            log.warning(
                "page %s: %s; retry %d/%d in %.2f s", label, error, attempt, self.max_retries, delay
            )
            await asyncio.sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential back-off with jitter (so retries from many pages do not line up)."""
        cap = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        delay = cap / 2 + random.uniform(0, cap / 2)
        if retry_after is not None:
            # The server knows best when it can take more; a wait past the cap means it is down.
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay

    @staticmethod
    def _parse(resp: httpx.Response, attempts: int, seconds: float) -> _Outcome:
        try:
            data = resp.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            finish = choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ValueError(f"{type(exc).__name__}: {exc}; body {_snippet(resp.text)}") from None
        if not isinstance(text, str):
            raise ValueError(f"content is {type(text).__name__}, not text")
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return _Outcome(
            text=text,
            finish_reason=finish if isinstance(finish, str) else None,
            attempts=attempts,
            seconds=seconds,
            usage=usage or {},
        )

    # -- back in the caller's thread -------------------------------------------------------

    @staticmethod
    def _outcome(fut: Future[_Outcome]) -> _Outcome:
        try:
            return fut.result()
        except CancelledError:
            return _Outcome(error="request cancelled (engine closed)")
        except Exception as exc:  # a bug here must cost one page, not the document
            log.exception("openai engine: unexpected error")
            return _Outcome(error=f"{type(exc).__name__}: {exc}")

    def _make_page(self, inp: PageInput, out: _Outcome) -> Page:
        meta: dict[str, Any] = {"attempts": out.attempts, "seconds": round(out.seconds, 3)}
        if out.error is not None or out.text is None:
            page = inp.failed(out.error or "no answer", engine=self.name)
            page.metadata.update(meta)
            return page
        page = inp.parse_output(out.text, engine=self.name)
        meta.update({"model": self.model, "finish_reason": out.finish_reason})
        if "completion_tokens" in out.usage:
            meta["generated_tokens"] = out.usage["completion_tokens"]
        page.metadata.update(meta)
        if out.finish_reason == "length":
            page.status = PageStatus.TRUNCATED
            limit = (
                "the context limit" if self.max_tokens is None else f"max_tokens={self.max_tokens}"
            )
            page.error = f"output cut off at {limit}"
        elif out.finish_reason not in _FINISHED:
            page.status = PageStatus.TRUNCATED
            page.error = f"generation ended with finish_reason {out.finish_reason!r}"
        return page
