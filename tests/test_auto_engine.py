"""engine="auto": routing decisions, OCR stand-in (recorded engine), needs_ocr fallback, order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pdf_factory as factory
import pytest

from deepocr_loaders import Document
from deepocr_loaders.document import BlockKind, Page, PageStatus
from deepocr_loaders.engines import Engine, PageInput, Task, get_engine
from deepocr_loaders.engines import auto as auto_module
from deepocr_loaders.engines.auto import AutoEngine
from deepocr_loaders.engines.recorded import RecordedEngine
from deepocr_loaders.errors import ModelLoadError
from deepocr_loaders.pipeline import convert

# mixed_pdf(): 0 born-digital, 1 scan, 2 two columns, 3 scan + invisible OCR layer, 4 blank.
REASONS = ["text_ok", "no_text", "text_ok", "invisible_text", "blank"]
OCR_OUTPUT = {
    1: "<|ref|>title<|/ref|><|det|>[[100, 100, 700, 160]]<|/det|>\n# Scanned Invoice 4711",
    3: "<|ref|>text<|/ref|><|det|>[[100, 100, 700, 300]]<|/det|>\nDelivery of forty chairs",
}


@pytest.fixture(scope="module")
def mixed() -> bytes:
    return factory.mixed_pdf()


@pytest.fixture(autouse=True)
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests decide the accelerator themselves (and skip importing torch to look for one).
    monkeypatch.setattr(auto_module, "accelerator", lambda: None)


@pytest.fixture(scope="module")
def routed(mixed: bytes) -> Document:
    return convert(mixed, ocr_engine="recorded", ocr_options={"outputs": OCR_OUTPUT})


def test_default_engine_is_auto() -> None:
    assert isinstance(get_engine("auto"), AutoEngine)


def test_routing_with_an_ocr_engine(routed: Document) -> None:
    assert [p.index for p in routed.pages] == [0, 1, 2, 3, 4]
    assert [p.metadata["ocr_reason"] for p in routed.pages] == REASONS
    assert [p.metadata["route"] for p in routed.pages] == [
        "text-layer",
        "ocr",
        "text-layer",
        "ocr",
        "text-layer",
    ]
    assert [p.engine for p in routed.pages] == [
        "text-layer",
        "recorded",
        "text-layer",
        "recorded",
        "text-layer",
    ]
    assert all(p.ok for p in routed.pages)
    scan = routed.pages[1]
    assert scan.blocks[0].kind is BlockKind.TITLE and "Scanned Invoice 4711" in scan.markdown
    assert scan.metadata["ocr_engine"] == "recorded"
    assert scan.metadata["ocr_decision"]["needs_ocr"] is True
    md = routed.to_markdown()
    # Merged in page order: text layer, OCR, text layer, OCR.
    order = ["Quarterly Field Report", "Scanned Invoice 4711", "Alpha column", "forty chairs"]
    assert [md.index(s) for s in order] == sorted(md.index(s) for s in order)


def test_no_ocr_engine_on_cpu_returns_needs_ocr_pages(mixed: bytes) -> None:
    doc = convert(mixed)  # the default: auto, DeepSeek-OCR-2 only where a GPU is
    assert len(doc.pages) == 5
    assert [p.status for p in doc.pages] == [
        PageStatus.OK,
        PageStatus.NEEDS_OCR,
        PageStatus.OK,
        PageStatus.NEEDS_OCR,
        PageStatus.OK,
    ]
    assert [p.metadata["ocr_reason"] for p in doc.pages] == REASONS
    scan, layer = doc.pages[1], doc.pages[3]
    for page in (scan, layer):
        assert page.metadata["route"] == "needs_ocr"
        assert page.error is not None and "no GPU" in page.error
    assert "no text layer" in (scan.error or "")
    assert "Total amount due within thirty days" in layer.markdown  # best effort kept
    assert "<!-- page 2 needs_ocr: no text layer" in doc.to_markdown()
    assert doc.pages[0].ok and "Quarterly Field Report" in doc.pages[0].markdown


def test_missing_ocr_engine_is_a_reason_not_a_crash(mixed: bytes) -> None:
    doc = convert(mixed, ocr_engine="no-such-ocr", pages="2-3")
    scan, text = doc.pages
    assert scan.status is PageStatus.NEEDS_OCR
    assert "OCR engine 'no-such-ocr' unavailable: EngineError" in (scan.error or "")
    assert text.ok


def test_model_load_failure_falls_back(mixed: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_get_engine(name: str, **options: object) -> Engine:
        assert (name, options) == ("deepseek-ocr-2", {"model": "some/weights"})
        raise ModelLoadError("weights are pickle-only")

    monkeypatch.setattr(auto_module, "accelerator", lambda: "cuda")
    monkeypatch.setattr(auto_module, "get_engine", failing_get_engine)
    doc = convert(mixed, model="some/weights", pages="2")
    (page,) = doc.pages
    assert page.status is PageStatus.NEEDS_OCR
    assert "ModelLoadError: weights are pickle-only" in (page.error or "")


class _Exploding(Engine):
    name = "exploding"

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        raise ImportError("torch is not installed")


def test_ocr_engine_failing_at_run_time(mixed: bytes) -> None:
    doc = convert(mixed, engine=AutoEngine(ocr_engine=_Exploding()), pages="1-2")
    text, scan = doc.pages
    assert text.ok
    assert scan.status is PageStatus.NEEDS_OCR
    assert "OCR engine 'exploding' failed: ImportError" in (scan.error or "")


def test_force_ocr_routes_every_page(mixed: bytes) -> None:
    outputs = {i: f"<|ref|>text<|/ref|><|det|>[[0, 0, 999, 99]]<|/det|>\nocr {i}" for i in range(5)}
    engine = AutoEngine(ocr_engine=RecordedEngine(outputs), force_ocr=True)
    doc = convert(mixed, engine=engine)
    assert [p.metadata["route"] for p in doc.pages] == ["ocr"] * 5
    assert {p.metadata["ocr_reason"] for p in doc.pages} == {"forced"}
    assert [p.markdown for p in doc.pages] == [f"ocr {i}" for i in range(5)]


def test_ocr_for_table_pages(mixed: bytes) -> None:
    outputs = {0: "<|ref|>table<|/ref|><|det|>[[0, 0, 999, 500]]<|/det|>\n<table></table>"}
    doc = convert(mixed, ocr_engine="recorded", ocr_options={"outputs": outputs}, ocr_tables=True)
    first = doc.pages[0]
    assert (first.metadata["route"], first.metadata["ocr_reason"]) == ("ocr", "tables")
    assert doc.pages[2].metadata["route"] == "text-layer"  # no table there


def test_ocr_for_table_pages_without_ocr_keeps_the_text(mixed: bytes) -> None:
    doc = convert(mixed, ocr_tables=True, pages="1")
    (page,) = doc.pages
    assert page.status is PageStatus.NEEDS_OCR
    assert page.metadata["ocr_reason"] == "tables" and "table region" in (page.error or "")
    assert "Quarterly Field Report" in page.markdown


@pytest.mark.slow
def test_with_the_deepseek_ocr2_engine(
    mixed: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real OCR engine by name (a tiny random-weight model on the CPU) takes the scan."""
    pytest.importorskip("transformers")
    import tiny_ocr2

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = tiny_ocr2.save_tiny_model(tmp_path / "tiny-ocr2")
    options = {"local_files_only": True, "device": "cpu", "mode": "small", "max_new_tokens": 6}
    doc = convert(
        mixed,
        ocr_engine="deepseek-ocr-2",
        model=str(model),
        ocr_options={**options, "retry_truncated": False},
        pages="1-2",
        dpi=36,
    )
    text, scan = doc.pages
    assert (text.engine, text.metadata["route"], text.status) == (
        "text-layer",
        "text-layer",
        PageStatus.OK,
    )
    assert (scan.engine, scan.metadata["route"]) == ("deepseek-ocr-2", "ocr")
    assert scan.metadata["ocr_reason"] == "no_text" and scan.raw_output is not None
    # The tiny model never ends its output: the page is kept, marked truncated.
    assert scan.status is PageStatus.TRUNCATED


def test_text_lost_in_layout_goes_to_ocr() -> None:
    outputs = {0: "<|ref|>text<|/ref|><|det|>[[0, 0, 999, 999]]<|/det|>\nAlpha column opens"}
    doc = convert(factory.rotated_pdf(), ocr_engine="recorded", ocr_options={"outputs": outputs})
    (page,) = doc.pages
    assert (page.metadata["route"], page.metadata["ocr_reason"]) == ("ocr", "text_lost")
    assert page.ok and page.markdown == "Alpha column opens"
