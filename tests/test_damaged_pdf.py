"""Damaged PDFs never pass as ``ok``: a truncated file, or random bytes inside a content stream,
make the page ``needs_ocr`` with reason ``damaged`` and warnings naming the loss (issue 18, item 1).

The PDFs are built here with PyMuPDF (sections and a table, the way a word processor exports them)
and damaged the way a broken download or disk does.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pymupdf
import pytest

from deepocr_loaders import Document
from deepocr_loaders.cli import EXIT_OK, EXIT_PAGES_NOT_OK, main
from deepocr_loaders.document import Page, PageStatus
from deepocr_loaders.engines import Engine, PageInput, Task
from deepocr_loaders.engines import auto as auto_module
from deepocr_loaders.errors import DeepOCRError
from deepocr_loaders.pipeline import convert
from deepocr_loaders.sources import REPAIRED_WARNING, mupdf_messages, open_source

_REPORT_HTML = """
<h1>Field Report</h1>
<p>Intro paragraph about the survey and its sites, measured in spring.</p>
<h2>1. Methods</h2>
<p>Samples were taken at four sites along the river and analysed in the lab.</p>
<h2>2. Results</h2>
<table>
<tr><th>Site</th><th>pH</th><th>Nitrate</th></tr>
<tr><td>North ridge</td><td>6.8</td><td>12.4</td></tr>
<tr><td>River bend</td><td>7.1</td><td>9.7</td></tr>
<tr><td>Old quarry</td><td>6.2</td><td>15.1</td></tr>
</table>
<h2>3. Discussion</h2>
<p>Nitrate is highest at the old quarry, where run-off collects after rain.</p>
<h2>4. Conclusions</h2>
<p>Two sensors need replacement before winter; the quarry site needs monthly visits.</p>
"""


def report_pdf(pages: int = 1) -> bytes:
    doc = pymupdf.open()
    for _ in range(pages):
        page = doc.new_page(width=612, height=792)
        page.insert_htmlbox(pymupdf.Rect(72, 72, 540, 720), _REPORT_HTML)
    return doc.tobytes(deflate=True, garbage=3)


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def corrupt_content_stream(data: bytes, count: int = 300) -> bytes:
    """``count`` random bytes written over the end of the largest stream that draws the text
    (PyMuPDF's HTML boxes draw into a form XObject the page's content stream calls)."""
    doc = pymupdf.open(stream=data)
    drawing = set(doc[0].get_contents())
    drawing |= {
        x
        for x in range(1, doc.xref_length())
        if doc.xref_is_stream(x) and doc.xref_get_key(x, "Subtype") == ("name", "/Form")
    }
    xref = max(drawing, key=lambda x: len(doc.xref_stream_raw(x)))
    length = len(doc.xref_stream_raw(xref))
    assert length > count + 20, "the stream must hold the damage"
    header = re.search(rb"(?:^|\s)%d 0 obj\b" % xref, data)
    assert header is not None
    start = data.index(b"stream", header.end()) + len(b"stream")
    start += 2 if data[start : start + 2] == b"\r\n" else 1
    offset = start + length - count - 10  # the stream's head survives, its tail does not
    damaged = bytearray(data)
    damaged[offset : offset + count] = random.Random(18).randbytes(count)
    return bytes(damaged)


@pytest.fixture(scope="module")
def intact() -> bytes:
    return report_pdf()


@pytest.fixture(autouse=True)
def _no_gpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(auto_module, "accelerator", lambda: None)
    monkeypatch.setenv("DEEPOCR_CACHE", str(tmp_path / "cache.sqlite"))


DAMAGES = {"half": half, "corrupt-stream": corrupt_content_stream}


def test_intact_pdf_is_ok_without_warnings(intact: bytes) -> None:
    for engine in ("text-layer", "auto"):
        doc = convert(intact, engine=engine, cache=False)
        page = doc.pages[0]
        assert page.ok and page.warnings == [] and page.metadata["ocr_reason"] == "text_ok"
        assert "Old quarry" in page.markdown and "monthly visits" in page.markdown
        assert "warning" not in doc.to_markdown()


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_page_is_not_ok_and_names_the_loss(intact: bytes, damage: str) -> None:
    data = DAMAGES[damage](intact)
    doc = convert(data, engine="text-layer", cache=False)
    page = doc.pages[0]
    assert page.status is PageStatus.NEEDS_OCR
    assert page.metadata["ocr_reason"] == "damaged"
    assert "damaged PDF, text may be missing" in (page.error or "")
    assert any("content stream" in w or "zlib" in w for w in page.warnings), page.warnings
    assert "monthly visits" not in page.markdown  # the loss is real, and now it is said
    assert "needs_ocr: damaged PDF" in doc.to_markdown()
    # The warnings survive the JSON round trip.
    again = Document.from_json(doc.to_json())
    assert again == doc and again.pages[0].warnings == page.warnings


def test_pages_saved_before_warnings_existed_load_without_any() -> None:
    data = Page(0, 612, 792, markdown="x").to_dict()
    del data["warnings"]
    assert Page.from_dict(data).warnings == []


def test_truncated_file_keeps_intact_pages_ok_with_a_warning() -> None:
    data = report_pdf(pages=3)
    doc = convert(data[: int(len(data) * 0.75)], engine="text-layer", cache=False)
    assert any(not p.ok for p in doc.pages)
    intact = [p for p in doc.pages if p.ok]
    assert intact, "the first page's objects come before the cut"
    for page in intact:
        assert page.warnings == [REPAIRED_WARNING]
        assert "monthly visits" in page.markdown
    assert f"warning: {REPAIRED_WARNING}" in doc.to_markdown()


@pytest.mark.parametrize("damage", DAMAGES)
def test_auto_without_gpu_gives_needs_ocr_with_the_reason(intact: bytes, damage: str) -> None:
    page = convert(DAMAGES[damage](intact), cache=False).pages[0]  # engine "auto"
    assert page.status is PageStatus.NEEDS_OCR
    assert page.metadata["ocr_reason"] == "damaged" and page.metadata["route"] == "needs_ocr"
    assert "damaged PDF" in (page.error or "") and "no GPU" in (page.error or "")
    assert page.warnings


class _RenderingOcr(Engine):
    """An OCR stand-in that, like the real engines, needs the page's image."""

    name = "rendering-ocr"

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        for inp in pages:
            try:
                inp.render()
            except DeepOCRError as exc:
                yield inp.failed(str(exc), engine=self.name)
                continue
            yield Page(inp.index, inp.width, inp.height, markdown="OCR text", engine=self.name)


@pytest.mark.parametrize("damage", DAMAGES)
def test_auto_sends_damaged_pages_to_ocr(intact: bytes, damage: str) -> None:
    page = convert(DAMAGES[damage](intact), ocr_engine=_RenderingOcr(), cache=False).pages[0]
    assert page.metadata["ocr_reason"] == "damaged"
    assert not page.ok or page.warnings  # never ok without saying so
    if page.metadata["route"] == "ocr":  # the page still renders: OCR read what is left
        assert page.markdown == "OCR text" and page.warnings
    else:  # the renderer refuses a lost content stream: the surviving text is kept
        assert page.status is PageStatus.NEEDS_OCR
        assert "OCR failed" in (page.error or "") and "damaged" in (page.error or "")
        assert page.warnings


@pytest.mark.parametrize("damage", DAMAGES)
def test_cli_exits_3_for_a_damaged_pdf(
    intact: bytes, damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.pdf", tmp_path / "bad.pdf"
    good.write_bytes(intact)
    bad.write_bytes(DAMAGES[damage](intact))
    for engine in ("text-layer", "auto"):
        out = tmp_path / f"out-{engine}"
        args = ["convert", "-o", str(out), "-q", "--engine", engine]
        assert main([*args, str(good)]) == EXIT_OK
        assert main([*args, str(bad)]) == EXIT_PAGES_NOT_OK
        assert "damaged PDF" in capsys.readouterr().err
        saved = Document.from_json((out / "bad.json").read_text(encoding="utf-8"))
        assert saved.pages[0].warnings


def test_page_checks_on_threads_keep_their_own_messages(intact: bytes) -> None:
    # MuPDF's message store is process-wide: checks of a damaged and an intact file running at
    # once must not hand one file's messages to the other.
    damaged = open_source(corrupt_content_stream(intact))
    clean = open_source(intact)
    results: dict[str, list[bool]] = {"damaged": [], "clean": []}

    def check(name: str, src: object) -> None:
        for _ in range(30):
            with src._lock, mupdf_messages() as messages:  # type: ignore[attr-defined]
                src.pdf.load_page(0).get_text()  # type: ignore[attr-defined]
            results[name].append(src.page_damage(0, messages).damaged)  # type: ignore[attr-defined]

    threads = [
        threading.Thread(target=check, args=("damaged", damaged)),
        threading.Thread(target=check, args=("clean", clean)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    damaged.close()
    clean.close()
    assert results["damaged"] == [True] * 30
    assert results["clean"] == [False] * 30


def test_no_cut_of_a_pdf_loses_text_silently() -> None:
    data = report_pdf(pages=3)
    with open_source(data) as src:
        reference = [src.pdf.load_page(i).get_text() for i in range(src.page_count)]
    checked = 0
    for cut in range(len(data) // 30, len(data), len(data) // 45):
        try:
            src = open_source(data[:cut])
        except DeepOCRError:
            continue  # nothing recoverable: a named error, not a silent loss
        with src:
            for index in range(src.page_count):
                if index in src.missing_pages:
                    continue  # these fail by themselves
                with mupdf_messages() as messages:
                    text = src.pdf.load_page(index).get_text()
                if text != reference[index]:
                    checked += 1
                    assert src.page_damage(index, messages).damaged, (cut, index)
    assert checked > 5
