"""convert / iter_pages over real PDFs with the recorded-output engine and misbehaving engines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pymupdf
import pytest

import deepocr_loaders as dl
from deepocr_loaders import Document, Engine, Page, PageInput, PageStatus, Task
from deepocr_loaders.engines.recorded import RecordedEngine


def _pdf(n: int = 3) -> bytes:
    pdf = pymupdf.open()
    for i in range(n):
        page = pdf.new_page(width=612, height=792)
        page.insert_text((72, 72), f"Page {i + 1}")
    pdf.set_page_labels([{"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1}])
    return pdf.tobytes()


def _raw(i: int) -> str:
    return (
        f"<|ref|>title<|/ref|><|det|>[[0, 0, 999, 99]]<|/det|>\n# Chapter {i + 1}\n\n"
        f"<|ref|>text<|/ref|><|det|>[[0, 100, 999, 999]]<|/det|>\nBody of page {i + 1}."
    )


def test_convert_builds_document_with_provenance(tmp_path: Path) -> None:
    data = _pdf(3)
    path = tmp_path / "book.pdf"
    path.write_bytes(data)
    doc = dl.convert(path, engine=RecordedEngine([_raw(i) for i in range(3)]))
    assert doc.source == str(path)
    assert doc.page_count == 3 and [p.index for p in doc.pages] == [0, 1, 2]
    assert [p.label for p in doc.pages] == ["i", "ii", "iii"]
    assert all(p.status is PageStatus.OK and p.engine == "recorded" for p in doc.pages)
    assert doc.pages[1].blocks[1].text == "Body of page 2."
    # Boxes come out in PDF points whatever the dpi.
    assert doc.pages[0].blocks[1].bbox.as_tuple() == pytest.approx((0, 100 / 999 * 792, 612, 792))
    assert "# Chapter 3" in doc.to_markdown()
    assert Document.from_json(doc.to_json()) == doc
    import hashlib

    assert doc.sha256 == hashlib.sha256(data).hexdigest()


def test_engine_by_name_with_page_range_and_bytes() -> None:
    doc = dl.convert(_pdf(5), engine="recorded", outputs={1: _raw(1), 3: _raw(3)}, pages="2,4")
    assert doc.page_count == 5
    assert [p.index for p in doc.pages] == [1, 3]
    assert doc.source == "<bytes>"


def test_missing_output_is_reported_not_dropped() -> None:
    doc = dl.convert(_pdf(3), engine="recorded", outputs={0: _raw(0), 2: _raw(2)})
    assert [p.status for p in doc.pages] == [PageStatus.OK, PageStatus.FAILED, PageStatus.OK]
    assert "no recorded output for page 2" in (doc.pages[1].error or "")
    assert "<!-- page ii failed" in doc.to_markdown()


class _Crashing(Engine):
    name = "crashing"

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        for inp in pages:
            if inp.index == 1:
                raise RuntimeError("CUDA error: device-side assert")
            img = inp.image  # renders the real page
            yield Page(inp.index, inp.width, inp.height, label=inp.label, markdown=str(img.size))


class _Lazy(Engine):
    name = "lazy"

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        first = next(iter(pages))
        yield Page(first.index, first.width, first.height)


def test_engine_crash_keeps_every_page() -> None:
    doc = dl.convert(_pdf(3), engine=_Crashing(), dpi=72)
    assert [p.status for p in doc.pages] == [PageStatus.OK, PageStatus.FAILED, PageStatus.FAILED]
    assert doc.pages[0].markdown == "(612, 792)"
    assert "device-side assert" in (doc.pages[2].error or "")


def test_engine_that_returns_too_few_pages_is_caught() -> None:
    doc = dl.convert(_pdf(3), engine=_Lazy())
    assert [p.status for p in doc.pages] == [PageStatus.OK, PageStatus.FAILED, PageStatus.FAILED]


def test_iter_pages_is_lazy() -> None:
    it = dl.iter_pages(_pdf(3), engine="recorded", outputs=[_raw(i) for i in range(3)])
    first = next(it)
    assert first.index == 0 and first.ok
    assert [p.index for p in it] == [1, 2]


def test_unknown_engine_and_bad_source_raise_named_errors() -> None:
    with pytest.raises(dl.EngineError, match="unknown engine 'nope'"):
        dl.convert(_pdf(1), engine="nope")
    with pytest.raises(dl.UnsupportedFormatError, match="<bytes>"):
        dl.convert(b"hello world, not a pdf", engine="recorded", outputs=[])
    with pytest.raises(dl.PageRangeError):
        dl.convert(_pdf(2), engine="recorded", outputs=[], pages="5")


def test_prompts() -> None:
    assert dl.engines.prompt_for(Task.MARKDOWN).endswith("Convert the document to markdown.")
    assert dl.engines.prompt_for("locate", query="the table") == (
        "<image>\nLocate <|ref|>the table<|/ref|> in the image."
    )
    assert dl.engines.prompt_for("Read the stamp.") == "<image>\nRead the stamp."
    with pytest.raises(ValueError):
        dl.engines.prompt_for(Task.LOCATE)


def test_page_that_cannot_be_opened_is_reported_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from deepocr_loaders.sources import PdfSource

    original = PdfSource.page_size
    calls = {"n": 0}

    def flaky(self: PdfSource, index: int) -> tuple[float, float]:
        if index == 1:
            calls["n"] += 1
            raise dl.RenderError(self.name, "page object is missing", page=index)
        return original(self, index)

    monkeypatch.setattr(PdfSource, "page_size", flaky)
    doc = dl.convert(_pdf(3), engine="recorded", outputs=[_raw(i) for i in range(3)])
    assert [p.index for p in doc.pages] == [0, 1, 2]
    assert [p.status for p in doc.pages] == [PageStatus.OK, PageStatus.FAILED, PageStatus.OK]
    assert "page could not be opened" in (doc.pages[1].error or "")
    assert "page 2: page object is missing" in (doc.pages[1].error or "")


class _Counting(Engine):
    """Replays recorded output and counts the pages it really processed."""

    name = "counting"

    def __init__(self, fail_at: int | None = None) -> None:
        self.seen: list[int] = []
        self.fail_at = fail_at

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        inner = RecordedEngine([_raw(i) for i in range(10)])
        for page in inner.run(pages, task):
            if page.index == self.fail_at:
                raise KeyboardInterrupt  # a run killed mid-way
            self.seen.append(page.index)
            yield page


def test_cache_makes_second_run_do_no_engine_work(tmp_path: Path) -> None:
    data = _pdf(4)
    first = _Counting()
    doc1 = dl.convert(data, engine=first, cache=tmp_path / "c.sqlite")
    assert first.seen == [0, 1, 2, 3]
    second = _Counting()
    doc2 = dl.convert(data, engine=second, cache=tmp_path / "c.sqlite")
    assert second.seen == []
    assert [p.markdown for p in doc2.pages] == [p.markdown for p in doc1.pages]
    assert all(p.metadata.get("cached") for p in doc2.pages)
    # Another DPI is another result: recomputed.
    third = _Counting()
    dl.convert(data, engine=third, cache=tmp_path / "c.sqlite", dpi=100)
    assert third.seen == [0, 1, 2, 3]


def test_killed_run_resumes_without_redoing_pages(tmp_path: Path) -> None:
    data = _pdf(5)
    cache = dl.cache.PageCache(tmp_path / "c.sqlite")
    killed = _Counting(fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        dl.convert(data, engine=killed, cache=cache)
    assert killed.seen == [0, 1, 2]
    resumed = _Counting()
    doc = dl.convert(data, engine=resumed, cache=cache, pages="1-5")
    assert resumed.seen == [3, 4]
    assert [p.index for p in doc.pages] == [0, 1, 2, 3, 4]
    assert all(p.ok for p in doc.pages)


def test_failed_pages_are_not_cached(tmp_path: Path) -> None:
    cache = dl.cache.PageCache(tmp_path / "c.sqlite")
    dl.convert(_pdf(2), engine="recorded", outputs={0: _raw(0)}, cache=cache)
    assert len(cache) == 1
    import pickle

    again = pickle.loads(pickle.dumps(cache))
    assert len(again) == 1 and again.path == cache.path


def test_cache_failures_never_cost_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    cache = dl.cache.PageCache(tmp_path / "c.sqlite")

    def locked(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(dl.cache.PageCache, "_conn", locked)
    doc = dl.convert(_pdf(2), engine="recorded", outputs=[_raw(0), _raw(1)], cache=cache)
    assert all(p.ok for p in doc.pages)
    assert "database is locked" in caplog.text


def test_processes_share_one_cache(tmp_path: Path) -> None:
    from concurrent.futures import ProcessPoolExecutor

    path = tmp_path / "shared.sqlite"
    datas = [_pdf(3)] * 4  # the same bytes: four processes race for the same keys
    with ProcessPoolExecutor(max_workers=4) as pool:
        docs = list(pool.map(_convert_cached, datas, [str(path)] * 4))
    assert all(p.ok for doc in docs for p in doc.pages)
    assert len(dl.cache.PageCache(path)) == 3  # same bytes, same keys


def _convert_cached(data: bytes, path: str) -> Document:
    return dl.convert(data, engine="recorded", outputs=[_raw(i) for i in range(3)], cache=path)
