"""``engine="openai"`` against a real local chat-completions server (fake_openai_server.py)."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest
from fake_openai_server import (
    FakeOpenAIServer,
    Reply,
    page_color,
    page_of_image,
    solid_page_image,
)
from PIL import Image

import deepocr_loaders as dl
from deepocr_loaders import PageStatus
from deepocr_loaders.engines import get_engine
from deepocr_loaders.engines.base import PageInput, Task
from deepocr_loaders.engines.openai_client import (
    WHITELIST_TOKEN_IDS,
    OpenAIEngine,
    chat_completions_url,
)
from deepocr_loaders.sources import RenderedPage, Source

SECRET = "sk-test-5f3a9c0d1e2b"
MODEL = "deepseek-ai/DeepSeek-OCR-2"


def grounded(i: int) -> str:
    """A recorded grounded output for page ``i``: a title and a paragraph, with boxes."""
    return (
        f"<|ref|>title<|/ref|><|det|>[[80, 60, 900, 110]]<|/det|>\n# Page {i + 1} heading\n\n"
        f"<|ref|>text<|/ref|><|det|>[[80, 140, 900, 300]]<|/det|>\n"
        f"Body text of page {i + 1}, measured at station {i + 1}.\n"
    )


class ColorSource(Source):
    """Pages painted in :func:`page_color` so the server can tell them apart."""

    kind = "image"

    def __init__(self, count: int, *, fail: frozenset[int] = frozenset()) -> None:
        super().__init__("colors", "0" * 64, count)
        self.fail = fail
        self.rendered: list[int] = []

    def page_label(self, index: int) -> str:
        return str(index + 1)

    def page_size(self, index: int) -> tuple[float, float]:
        return 612.0, 792.0

    def render(self, index: int, dpi: float = 144) -> RenderedPage:
        if index in self.fail:
            raise RuntimeError("cannot draw this page")
        with self._lock:
            self.rendered.append(index)
        return RenderedPage(index, str(index + 1), solid_page_image(index), 612.0, 792.0, dpi)

    def _release(self) -> None:
        pass


def inputs(count: int, source: ColorSource | None = None) -> list[PageInput]:
    src = source or ColorSource(count)
    return [PageInput(src, i, str(i + 1), 612.0, 792.0) for i in range(count)]


def outputs(count: int) -> dict[int, str]:
    return {i: grounded(i) for i in range(count)}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(outputs(10), api_key=SECRET, model=MODEL) as srv:
        yield srv


def engine(srv: FakeOpenAIServer, **kw: object) -> OpenAIEngine:
    opts: dict[str, object] = {
        "base_url": srv.base_url,
        "model": MODEL,
        "api_key": SECRET,
        "backoff": 0.01,
        "max_backoff": 0.2,
        "timeout": 5.0,
    }
    opts.update(kw)
    return OpenAIEngine(**opts)  # type: ignore[arg-type]


def test_pages_come_back_parsed_with_boxes(server: FakeOpenAIServer) -> None:
    with engine(server) as eng:
        pages = list(eng.run(inputs(3)))
    assert [p.index for p in pages] == [0, 1, 2]
    for i, page in enumerate(pages):
        assert page.status is PageStatus.OK, page.error
        assert page.engine == "openai"
        assert [b.kind.value for b in page.blocks] == ["title", "text"]
        assert page.blocks[0].bbox is not None
        assert f"Page {i + 1} heading" in page.markdown
        assert page.metadata["finish_reason"] == "stop"
        assert page.metadata["attempts"] == 1


def test_payload_shape(server: FakeOpenAIServer) -> None:
    with engine(server, max_tokens=4096) as eng:
        list(eng.run(inputs(1)))
    (req,) = server.requests
    body = req.body
    assert body["model"] == MODEL
    assert body["temperature"] == 0
    assert body["skip_special_tokens"] is False
    assert body["max_tokens"] == 4096
    assert body["vllm_xargs"] == {
        "ngram_size": 30,
        "window_size": 90,
        "whitelist_token_ids": list(WHITELIST_TOKEN_IDS),
    }
    (msg,) = body["messages"]
    assert msg["role"] == "user"
    image_part, text_part = msg["content"]
    assert text_part == {"type": "text", "text": "<|grounding|>Convert the document to markdown."}
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.format == "PNG" and image.getpixel((2, 2)) == page_color(0)
    assert req.headers["Authorization"] == f"Bearer {SECRET}"


def test_options_change_the_payload(server: FakeOpenAIServer) -> None:
    opts = {"image_format": "jpeg", "ngram_size": None, "extra_body": {"top_p": 1.0}}
    with engine(server, **opts) as eng:
        (page,) = eng.run(inputs(1), Task.FREE_OCR)
    assert page.ok
    body = server.requests[0].body
    assert "vllm_xargs" not in body and body["top_p"] == 1.0
    image_part, text_part = body["messages"][0]["content"]
    assert text_part["text"] == "Free OCR."
    # No max_tokens unless asked: vLLM rejects prompt + max_tokens > context with a 400.
    assert "max_tokens" not in body
    assert image_part["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_concurrency_bound_and_overlap() -> None:
    with FakeOpenAIServer(outputs(12), latency=0.2) as srv, engine(srv, concurrency=4) as eng:
        start = time.monotonic()
        pages = list(eng.run(inputs(12)))
        elapsed = time.monotonic() - start
    assert all(p.ok for p in pages)
    assert srv.max_in_flight == 4  # reached, never exceeded
    # 12 pages x 0.2 s one after another would take 2.4 s; four at a time, about 0.6 s.
    assert elapsed < 1.4, elapsed


def test_inputs_are_pulled_lazily() -> None:
    """Only a bounded window of pages is taken ahead of what has been yielded."""
    src = ColorSource(40)
    pulled: list[int] = []

    def lazy() -> Iterator[PageInput]:
        for inp in inputs(40, src):
            pulled.append(inp.index)
            yield inp

    srv = FakeOpenAIServer(outputs(12), latency=0.02)
    with srv, engine(srv, concurrency=2, max_pending=3) as eng:
        it = eng.run(lazy())
        first = next(it)
        assert first.index == 0
        assert len(pulled) <= 4
        rest = list(it)
    assert [p.index for p in rest] == list(range(1, 40))
    assert srv.max_in_flight <= 2


def test_order_kept_when_server_answers_out_of_order(server: FakeOpenAIServer) -> None:
    # Page 0 answers last, page 3 first.
    for i, delay in enumerate([0.4, 0.3, 0.15, 0.0]):
        server.script(i, [Reply(delay=delay)])
    with engine(server, concurrency=4) as eng:
        pages = list(eng.run(inputs(4)))
    assert [p.index for p in pages] == [0, 1, 2, 3]
    assert all(f"Page {p.index + 1} heading" in p.markdown for p in pages)
    finished = {r.key: r.finished for r in server.requests}
    assert finished[3] < finished[0]


def test_retries_then_success(server: FakeOpenAIServer) -> None:
    server.script(0, [Reply(status=500), Reply(status=503), Reply()])
    server.script(1, [Reply(status=429, retry_after="0.3"), Reply()])
    server.script(2, [Reply(delay=1.5), Reply()])  # past the 0.5 s timeout
    server.script(3, [Reply(drop=True), Reply(drop=True), Reply()])
    with engine(server, timeout=0.5) as eng:
        start = time.monotonic()
        pages = list(eng.run(inputs(5)))
    assert [p.status for p in pages] == [PageStatus.OK] * 5, [p.error for p in pages]
    assert [server.attempts(i) for i in range(5)] == [3, 2, 2, 3, 1]
    assert [p.metadata["attempts"] for p in pages] == [3, 2, 2, 3, 1]
    # Retry-After (0.3 s) wins over the tiny back-off (0.01 s).
    tries = sorted(r.started for r in server.requests if r.key == 1)
    assert tries[1] - tries[0] >= 0.28
    assert time.monotonic() - start < 5


def test_page_that_fails_for_good_is_reported(server: FakeOpenAIServer) -> None:
    server.script(1, [Reply(status=500)] * 10)
    with engine(server, max_retries=2) as eng:
        pages = list(eng.run(inputs(3)))
    assert [p.index for p in pages] == [0, 1, 2]
    assert pages[0].ok and pages[2].ok
    bad = pages[1]
    assert bad.status is PageStatus.FAILED
    assert bad.error is not None and "HTTP 500" in bad.error and "3 attempts" in bad.error
    assert server.attempts(1) == 3


def test_client_errors_are_not_retried(server: FakeOpenAIServer) -> None:
    server.script(0, [Reply(status=400, body='{"error": "context length exceeded"}')])
    with engine(server) as eng:
        (page,) = eng.run(inputs(1))
    assert page.status is PageStatus.FAILED
    assert page.error is not None and "HTTP 400" in page.error and "context length" in page.error
    assert server.attempts(0) == 1


def test_wrong_key_fails_every_page(server: FakeOpenAIServer) -> None:
    with engine(server, api_key="wrong") as eng:
        pages = list(eng.run(inputs(2)))
    assert [p.status for p in pages] == [PageStatus.FAILED] * 2
    assert all("HTTP 401" in (p.error or "") for p in pages)


def test_malformed_answer_and_render_failure_cost_one_page(server: FakeOpenAIServer) -> None:
    server.script(0, [Reply(body="<html>gateway</html>")])
    src = ColorSource(3, fail=frozenset({2}))
    with engine(server) as eng:
        pages = list(eng.run(inputs(3, src)))
    assert [p.status for p in pages] == [PageStatus.FAILED, PageStatus.OK, PageStatus.FAILED]
    assert "malformed answer" in (pages[0].error or "")
    assert "could not render" in (pages[2].error or "")


def test_length_finish_is_truncated_with_partial_text(server: FakeOpenAIServer) -> None:
    partial = grounded(0) + "<|ref|>text<|/ref|><|det|>[[80, 320, 900, 400]]<|/det|>\nCut mid"
    server.script(0, [Reply(text=partial, finish_reason="length")])
    with engine(server, max_tokens=64) as eng:
        (page,) = eng.run(inputs(1))
    assert page.status is PageStatus.TRUNCATED
    assert page.error is not None and "max_tokens=64" in page.error
    assert server.requests[0].body["max_tokens"] == 64
    assert "Cut mid" in page.markdown and len(page.blocks) == 3
    assert page.raw_output == partial


def test_api_key_stays_secret(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("DEEPOCR_API_KEY", raising=False)
    caplog.set_level(logging.DEBUG)
    server.script(0, [Reply(status=503), Reply()])
    eng = OpenAIEngine(MODEL, base_url=server.base_url, backoff=0.01)
    with eng:
        pages = list(eng.run(inputs(2)))
    assert all(p.ok for p in pages)
    assert server.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert SECRET not in repr(eng) and SECRET not in str(vars(eng))
    assert SECRET not in str(eng.cache_identity())
    assert "retry" in caplog.text  # the retry was logged...
    assert SECRET not in caplog.text  # ...without the key
    assert all(SECRET not in str(p.to_dict() if hasattr(p, "to_dict") else p) for p in pages)


def test_env_key_order_and_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai")
    monkeypatch.setenv("DEEPOCR_API_KEY", "from-deepocr")
    assert OpenAIEngine()._api_key is not None
    assert OpenAIEngine()._api_key.reveal() == "from-deepocr"  # type: ignore[union-attr]
    assert OpenAIEngine(api_key="arg")._api_key.reveal() == "arg"  # type: ignore[union-attr]
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("DEEPOCR_API_KEY")
    with FakeOpenAIServer(outputs(1)) as srv:
        with OpenAIEngine(base_url=srv.base_url) as eng:
            assert next(eng.run(inputs(1))).ok
        assert "Authorization" not in srv.requests[0].headers


def test_cache_identity_ignores_url_and_transport_settings() -> None:
    a = OpenAIEngine("m", base_url="http://a:8000/v1", api_key="k1", concurrency=2)
    b = OpenAIEngine("m", base_url="http://b:9000", api_key="k2", concurrency=64, timeout=9)
    assert a.cache_identity() == b.cache_identity()
    assert OpenAIEngine("m", max_tokens=100).cache_identity() != a.cache_identity()
    assert OpenAIEngine("other").cache_identity() != a.cache_identity()
    assert "user:pw" not in repr(OpenAIEngine("m", base_url="http://user:pw@host/v1"))


def test_chat_completions_url() -> None:
    assert chat_completions_url("http://h:8000") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    assert chat_completions_url("https://x/api/v2") == "https://x/api/v2/chat/completions"
    assert chat_completions_url("http://h/v1/chat/completions") == "http://h/v1/chat/completions"


def test_works_inside_a_running_event_loop(server: FakeOpenAIServer) -> None:
    """A notebook calls run() with its own loop running in the same thread."""

    async def notebook_cell() -> list[dl.Page]:
        with engine(server) as eng:
            return list(eng.run(inputs(2)))

    pages = asyncio.run(notebook_cell())
    assert [p.status for p in pages] == [PageStatus.OK] * 2


def test_stopping_early_and_close_leave_no_threads(server: FakeOpenAIServer) -> None:
    before = {t.name for t in threading.enumerate()}
    eng = engine(server, concurrency=2)
    it = eng.run(inputs(8))
    assert next(it).index == 0
    it.close()  # the caller stops: pending requests are cancelled
    eng.close()
    time.sleep(0.05)
    left = {t.name for t in threading.enumerate()} - before
    assert not [n for n in left if n.startswith("openai-")], left
    # The engine starts again after close().
    assert [p.index for p in eng.run(inputs(2))] == [0, 1]
    eng.close()


def test_close_during_a_run_fails_the_rest_instead_of_hanging() -> None:
    with FakeOpenAIServer(outputs(6), latency=0.3) as srv:
        eng = engine(srv, concurrency=1, max_pending=2)
        it = eng.run(inputs(6))
        assert next(it).ok
        eng.close()
        rest = list(it)
    assert [p.index for p in rest] == [1, 2, 3, 4, 5]
    assert all(p.status is PageStatus.FAILED for p in rest[1:])
    assert "engine closed" in (rest[-1].error or "")


def colored_pdf(count: int) -> bytes:
    """A PDF whose pages are filled with :func:`page_color` and carry some text."""
    doc = pymupdf.open()
    for i in range(count):
        page = doc.new_page(width=612, height=792)
        color = tuple(c / 255 for c in page_color(i))
        page.draw_rect(page.rect, color=color, fill=color)
        page.insert_text((72, 100), f"Page {i + 1}", fontsize=24)
    data = doc.tobytes()
    doc.close()
    return bytes(data)


def test_convert_end_to_end() -> None:
    pdf = colored_pdf(3)
    with FakeOpenAIServer(outputs(3), model=MODEL) as srv:
        doc = dl.convert(pdf, engine="openai", base_url=srv.base_url, model=MODEL, dpi=72)
        keys = sorted(r.key for r in srv.requests)
    assert keys == [0, 1, 2]  # each page's own image reached the server
    assert [p.status for p in doc.pages] == [PageStatus.OK] * 3
    for i, page in enumerate(doc.pages):
        assert page.engine == "openai"
        title, text = page.blocks
        assert title.text.strip().endswith(f"Page {i + 1} heading")
        # Boxes map from the 0-999 grid to PDF points.
        assert title.bbox is not None and title.bbox.x0 == pytest.approx(80 / 999 * 612)
        assert text.bbox is not None and text.bbox.y1 == pytest.approx(300 / 999 * 792)
    assert "Body text of page 3" in doc.to_markdown()


def test_page_cache_skips_done_pages(tmp_path: Path) -> None:
    pdf = colored_pdf(3)
    cache = tmp_path / "pages.sqlite"
    with FakeOpenAIServer(outputs(3)) as srv:
        srv.script(1, [Reply(status=500)] * 3)
        opts = {"base_url": srv.base_url, "max_retries": 2, "backoff": 0.01, "dpi": 72}
        first = dl.convert(pdf, engine="openai", cache=cache, **opts)
        assert [p.status for p in first.pages] == [
            PageStatus.OK,
            PageStatus.FAILED,
            PageStatus.OK,
        ]
        sent = len(srv.requests)
        second = dl.convert(pdf, engine="openai", cache=cache, **opts)
        # Only the failed page is asked again; the others come from the cache.
        assert [r.key for r in srv.requests[sent:]] == [1]
    assert all(p.ok for p in second.pages)
    assert second.pages[0].metadata.get("cached") is True


def test_registered_under_openai() -> None:
    eng = get_engine("openai", base_url="http://localhost:1/v1")
    assert isinstance(eng, OpenAIEngine) and eng.name == "openai"


def test_page_of_image_roundtrip() -> None:
    assert [page_of_image(solid_page_image(i)) for i in range(5)] == list(range(5))
