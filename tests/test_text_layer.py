"""engine="text-layer" on generated PDFs: kinds, heading levels, tables, reading order, boxes."""

from __future__ import annotations

import io

import pdf_factory as factory
import pymupdf
import pytest
from PIL import Image

from deepocr_loaders import Document
from deepocr_loaders.document import Block, BlockKind, PageStatus
from deepocr_loaders.engines import get_engine
from deepocr_loaders.engines.text_layer import LAYOUT_CLASS_KINDS, TextLayerEngine
from deepocr_loaders.pipeline import convert

# The layout model costs ~0.2 s a page on a CPU, so each PDF is converted once per module.


@pytest.fixture(scope="module")
def born() -> Document:
    return convert(factory.born_digital_pdf(), engine="text-layer")


@pytest.fixture(scope="module")
def mixed() -> Document:
    return convert(factory.mixed_pdf(), engine=TextLayerEngine())


def _first(blocks: list[Block], text: str) -> Block:
    return next(b for b in blocks if text in b.text)


def _table_rows(markdown: str) -> list[list[str]]:
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("|")
    ]
    return [r for r in rows if not all(set(c) <= {"-"} for c in r)]


def test_registered_by_name() -> None:
    assert isinstance(get_engine("text-layer"), TextLayerEngine)


def test_kinds_and_heading_levels(born: Document) -> None:
    page = born.pages[0]
    assert page.status is PageStatus.OK and page.engine == "text-layer"
    headings = [(b.plain_text, b.level) for b in page.blocks if b.kind is BlockKind.HEADING]
    # Three heading sizes (26, 17, 13 px) become levels 1, 2, 3.
    assert headings == [
        ("Quarterly Field Report", 1),
        ("Survey Results", 2),
        ("Measured Values", 3),
    ]
    assert _first(page.blocks, "Survey Results").text == "## Survey Results"
    items = [b for b in page.blocks if b.kind is BlockKind.LIST_ITEM]
    assert [b.text for b in items] == [
        "- Soil samples were collected at twelve sites.",
        "- Water quality met the regional standard.",
        "- Two sensors need replacement before winter.",
    ]
    assert _first(page.blocks, "Field Report 2026").kind is BlockKind.PAGE_HEADER
    assert page.blocks[-1].kind is BlockKind.PAGE_FOOTER
    assert {b.label for b in page.blocks} <= set(LAYOUT_CLASS_KINDS)


def test_table_cells(born: Document) -> None:
    (table,) = [b for b in born.pages[0].blocks if b.kind is BlockKind.TABLE]
    assert _table_rows(table.text) == [
        ["Site", "Depth (m)", "pH", "Nitrate (mg/l)"],
        ["North ridge", "1.5", "6.8", "12.4"],
        ["River bend", "2.0", "7.1", "9.7"],
        ["Old quarry", "0.5", "6.2", "15.1"],
        ["East meadow", "1.0", "6.9", "11.3"],
    ]
    assert table.html is None  # no spanning cells: Markdown says it all
    assert (table.metadata["rows"], table.metadata["cols"]) == (5, 4)


def test_reading_order_of_two_columns(born: Document) -> None:
    page = born.pages[1]
    text = page.markdown
    assert text.index("Two Column Section") < text.index("Alpha column opens")
    assert text.index("Alpha column ends here.") < text.index("Omega column starts")
    left = _first(page.blocks, "Alpha column")
    right = _first(page.blocks, "Omega column")
    assert left.order < right.order
    assert left.bbox is not None and right.bbox is not None
    assert left.bbox.x1 < right.bbox.x0  # side by side, not one over the other
    assert [b.order for b in page.blocks] == list(range(len(page.blocks)))


def test_boxes_are_pdf_points(born: Document) -> None:
    with pymupdf.open("pdf", factory.born_digital_pdf()) as pdf:
        (hit,) = pdf[0].search_for("Survey Results")
    block = _first(born.pages[0].blocks, "Survey Results")
    assert block.bbox is not None and block.boxes == [block.bbox]
    # The block's box sits where PyMuPDF finds the words (top-left origin, points); search_for
    # boxes include the font's ascent and descent, the layout's boxes only the glyphs.
    assert abs(block.bbox.x0 - hit.x0) < 1 and abs(block.bbox.x1 - hit.x1) < 1
    assert hit.y0 <= block.bbox.y0 < block.bbox.y1 <= hit.y1
    for b in born.blocks:
        assert b.bbox is not None
        assert 0 <= b.bbox.x0 <= b.bbox.x1 <= 612 and 0 <= b.bbox.y0 <= b.bbox.y1 <= 792
        (norm,) = b.norm_boxes
        assert all(0 <= v <= 999 for v in norm)


def test_json_round_trip_and_furniture(born: Document) -> None:
    assert Document.from_json(born.to_json()) == born
    body = born.to_markdown(exclude={BlockKind.PAGE_HEADER, BlockKind.PAGE_FOOTER})
    assert "Field Report 2026" in born.to_markdown()
    assert "Field Report 2026" not in body and "Quarterly Field Report" in body


def test_furniture_option_drops_headers_from_markdown() -> None:
    doc = convert(factory.born_digital_pdf(), engine="text-layer", furniture=False, pages="1")
    page = doc.pages[0]
    assert "Field Report 2026" not in page.markdown
    assert any(b.kind is BlockKind.PAGE_HEADER for b in page.blocks)  # kept as a block


def test_spanning_table_keeps_html() -> None:
    doc = convert(factory.spanning_table_pdf(), engine="text-layer", html_tables=True)
    (table,) = [b for b in doc.blocks if b.kind is BlockKind.TABLE]
    assert table.html is not None and "colspan" in table.html
    rows = _table_rows(table.text)
    # The spanned group header is repeated over the columns it covers.
    assert rows[0][1:3] == ["Baseline", "Baseline"]
    assert ["Parsing", "0.71", "0.64", "0.88", "0.83"] in rows


def test_pages_needing_ocr_are_kept_with_reasons(mixed: Document) -> None:
    statuses = [(p.status, p.metadata["ocr_reason"]) for p in mixed.pages]
    assert statuses == [
        (PageStatus.OK, "text_ok"),
        (PageStatus.NEEDS_OCR, "no_text"),
        (PageStatus.OK, "text_ok"),
        (PageStatus.NEEDS_OCR, "invisible_text"),
        (PageStatus.OK, "blank"),
    ]
    scan, layer = mixed.pages[1], mixed.pages[3]
    assert scan.blocks == [] and scan.error and "no text layer" in scan.error
    assert "engine='auto'" in scan.error
    # The invisible OCR layer is kept as a best effort, flagged as needing OCR.
    assert "SCANNED INVOICE NUMBER 4711" in layer.markdown
    assert "needs_ocr" in mixed.to_markdown()
    assert [p.metadata["route"] for p in mixed.pages] == [
        "text-layer",
        "needs_ocr",
        "text-layer",
        "needs_ocr",
        "text-layer",
    ]


def test_undecodable_text_is_not_kept() -> None:
    doc = convert(factory.no_tounicode_pdf(), engine="text-layer")
    (page,) = doc.pages
    assert page.status is PageStatus.NEEDS_OCR and page.blocks == [] and page.markdown == ""
    assert page.metadata["ocr_reason"] == "undecodable_text"


def test_detection_off_reads_whatever_is_there() -> None:
    doc = convert(factory.invisible_layer_pdf(), engine="text-layer", detect=False)
    (page,) = doc.pages
    assert page.ok and "Delivery of forty garden chairs" in page.markdown


def test_image_input_needs_ocr() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (200, 100), "white").save(buf, format="PNG")
    (page,) = convert(buf.getvalue(), engine="text-layer").pages
    assert page.status is PageStatus.NEEDS_OCR
    assert page.metadata["ocr_reason"] == "not_pdf"


def test_tex_accents_and_quotes_are_joined() -> None:
    from deepocr_loaders.engines.text_layer import _fix_tex_text

    assert _fix_tex_text("J´an Min´aˇc, na¨ıve ‘‘quoted’’") == "Ján Mináč, naïve “quoted”"
    assert _fix_tex_text("it’s plain ´ text") == "it’s plain ´ text"


def test_lost_page_of_a_repaired_file_fails_rather_than_reads_blank() -> None:
    from deepocr_loaders.engines import PageInput
    from deepocr_loaders.sources import PdfSource, open_source

    with open_source(factory.blank_pdf()) as src:
        assert isinstance(src, PdfSource)
        src.missing_pages = frozenset({0})  # as PdfSource marks them for a repaired file
        (page,) = TextLayerEngine().run([PageInput(src, 0, "1", 612, 792)])
    assert page.status is PageStatus.FAILED and "missing" in (page.error or "")


def test_text_lost_by_the_layout_pass_is_flagged() -> None:
    (page,) = convert(factory.rotated_pdf(), engine="text-layer").pages
    assert (page.width, page.height) == (792, 612)  # as displayed
    assert page.status is PageStatus.NEEDS_OCR
    decision = page.metadata["ocr_decision"]
    assert page.metadata["ocr_reason"] == "text_lost" and decision["needs_ocr"]
    assert decision["metrics"]["layout_chars"] < decision["metrics"]["visible_chars"] / 2
