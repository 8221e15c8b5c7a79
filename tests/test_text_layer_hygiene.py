"""The text layer's heading and furniture hygiene on a generated report, with the layout model's
mistakes seen on real PDFs replayed: a page number and a code line called section headers, a
running title called text. Headings must come out clean and the furniture labelled, in place."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pdf_factory as factory
import pymupdf
import pytest
from pymupdf4llm.helpers import document_layout, table_html

from chunking import LayoutChunker
from deepocr_loaders import Document
from deepocr_loaders.document import BlockKind
from deepocr_loaders.engines.text_layer import TextLayerEngine, has_vertical_rules
from deepocr_loaders.pipeline import convert


def _relabelled(relabel: Callable[[Any, str], None]) -> Callable[..., Any]:
    """``parse_document`` with ``relabel(box, text)`` applied to every layout box: replays a
    mistake the layout model made on a real PDF."""
    parse = document_layout.parse_document

    def parse_document(*args: Any, **kwargs: Any) -> Any:
        parsed = parse(*args, **kwargs)
        for page in parsed.pages:
            for box in page.boxes:
                relabel(box, " ".join(s["text"] for ln in box.textlines or () for s in ln["spans"]))
        return parsed

    return parse_document


def _convert_relabelled(pdf: bytes, relabel: Callable[[Any, str], None]) -> Document:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(document_layout, "parse_document", _relabelled(relabel))
        return convert(pdf, engine=TextLayerEngine())


def _mislabel(box: Any, text: str) -> None:
    if box.boxclass == "page-footer" or "documentclass" in text:
        box.boxclass = "section-header"
        box.max_fontsize = 9
    elif box.boxclass == "page-header":
        box.boxclass = "text"


@pytest.fixture(scope="module")
def doc() -> Document:
    return _convert_relabelled(factory.furniture_pdf(), _mislabel)


def test_code_lines_and_page_numbers_never_become_headings(doc: Document) -> None:
    headings = [b for b in doc.blocks if b.kind in (BlockKind.HEADING, BlockKind.TITLE)]
    assert [b.plain_text for b in headings] == [
        f"{i} Gauge Readings Part {i}" for i in (1, 2, 3, 4)
    ]
    code = [b for b in doc.blocks if "documentclass" in b.text]
    assert len(code) == 4
    for block in code:
        assert block.kind is BlockKind.CODE and block.label == "section-header"
        assert block.metadata["heading_check"] == "code"


def test_furniture_is_labelled_with_boxes_and_kept(doc: Document) -> None:
    for page in doc.pages:
        title = next(b for b in page.blocks if factory.RUNNING_TITLE in b.text)
        number = next(b for b in page.blocks if b.text.strip() == str(page.index + 1))
        assert title.kind is BlockKind.PAGE_HEADER and title.metadata["furniture"] == "repeated"
        assert number.kind is BlockKind.PAGE_FOOTER and number.level is None
        assert title.bbox is not None and number.bbox is not None
        assert number.bbox.y0 > page.height * 0.9


def test_chunks_are_clean(doc: Document) -> None:
    chunks = LayoutChunker(max_tokens=200).chunk(doc)
    assert chunks
    for c in chunks:
        path = c.metadata["heading_path"]
        assert len(path) == 1 and "Gauge Readings" in path[0]
        assert factory.RUNNING_TITLE not in c.text
        assert not any(p.strip().isdigit() for p in c.text.split("\n\n"))
        # The heading path is embedded once: the heading line is not repeated under it.
        embed = c.metadata["contextualized_text"]
        assert embed.count(path[0]) == 1, embed[:200]


def _drawn(*items: tuple[str, tuple[float, ...]]) -> pymupdf.Page:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 100), "Some text.")
    for kind, coords in items:
        if kind == "line":
            page.draw_line(coords[:2], coords[2:])
        else:
            page.draw_rect(pymupdf.Rect(coords))
    return page


def test_html_tables_run_only_on_pages_with_vertical_rules() -> None:
    # A footnote rule and booktabs-style rules are horizontal: the layout grid serves.
    assert not has_vertical_rules(_drawn())
    assert not has_vertical_rules(
        _drawn(("line", (72, 700, 200, 700)), ("line", (72, 300, 500, 300)))
    )
    assert not has_vertical_rules(_drawn(("rect", (72, 300, 500, 300.4))))  # a rule as a thin fill
    assert has_vertical_rules(_drawn(("line", (300, 100, 300, 400))))
    assert has_vertical_rules(_drawn(("rect", (72, 100, 300, 200))))
    # The engine's gate sits in front of PyMuPDF4LLM's HTML table engine.
    assert getattr(table_html.page_html_tables, "gated", False)
    assert table_html.page_html_tables(_drawn(("line", (72, 300, 500, 300)))) == []


def _outlined_manual() -> bytes:
    """A two-chapter manual with an outline, whose chapter 1 holds a numbered list of bold
    terms at the body size ("2. Separator"), as the R Data manual's section 2.1 does."""
    pdf = pymupdf.open()
    body = "Body text of the manual that runs over the whole line to set the body size here."
    for title, items in (("1 Reading data", ("1. Header", "2. Separator")), ("2 Writing data", ())):
        page = pdf.new_page()
        page.insert_text((72, 80), title, fontname="hebo", fontsize=16)
        y = 120
        for _ in range(6):
            page.insert_text((72, y), body, fontname="helv", fontsize=10)
            y += 16
        for item in items:
            page.insert_text((72, y + 12), item, fontname="hebo", fontsize=10)
            page.insert_text((72, y + 30), body, fontname="helv", fontsize=10)
            y += 48
    pdf.set_toc([[1, "1 Reading data", 1], [1, "2 Writing data", 2]])
    return pdf.tobytes()


def test_the_outline_demotes_the_numbered_list_items_it_leaves_out() -> None:
    def as_headers(box: Any, text: str) -> None:
        # The layout model's mistake seen on the R manual: bold list terms as section headers.
        if text.strip() in ("1. Header", "2. Separator"):
            box.boxclass = "section-header"

    doc = _convert_relabelled(_outlined_manual(), as_headers)
    headings = [b.plain_text for b in doc.blocks if b.kind in (BlockKind.HEADING, BlockKind.TITLE)]
    assert headings == ["1 Reading data", "2 Writing data"]
    items = [b for b in doc.blocks if "Separator" in b.text or "Header" in b.text]
    assert [b.metadata.get("heading_check") for b in items] == ["not_in_outline"] * 2
    assert all(b.kind is BlockKind.TEXT for b in items)


def test_a_title_set_below_a_larger_heading_is_a_line_of_text() -> None:
    # FHS 3.0's cover: "Filesystem Hierarchy Standard" (25 pt) came out a section header and
    # "LSB Workgroup, The Linux Foundation" (17 pt) the title, which then headed every chunk.
    pdf = pymupdf.open()
    page = pdf.new_page()
    page.insert_text((72, 100), "Filesystem Hierarchy Standard", fontname="hebo", fontsize=25)
    page.insert_text((72, 300), "LSB Workgroup, The Linux Foundation", fontname="hebo", fontsize=17)
    for k in range(8):
        page.insert_text((72, 450 + 16 * k), "Body text of the standard. " * 3, fontsize=10)

    def swap(box: Any, text: str) -> None:
        if text.startswith("Filesystem"):
            box.boxclass = "section-header"
        elif text.startswith("LSB"):
            box.boxclass = "title"

    doc = _convert_relabelled(pdf.tobytes(), swap)
    title = next(b for b in doc.blocks if b.kind is BlockKind.TITLE)
    assert title.plain_text == "Filesystem Hierarchy Standard" and title.level == 1
    line = next(b for b in doc.blocks if "LSB Workgroup" in b.text)
    assert line.kind is BlockKind.TEXT and line.metadata["heading_check"] == "below_title"
    chunks = LayoutChunker().chunk(doc)
    assert all(c.heading_path[:1] == ["Filesystem Hierarchy Standard"] for c in chunks)


def test_a_new_document_never_inherits_the_previous_ones_outline() -> None:
    # The engine keeps one document's state (outline, body font, numbering) while streaming
    # its pages; a document opened after another was freed often gets the same id() (this
    # loop finds one when the engine keys by id; the engine now holds its last document).
    engine = TextLayerEngine()
    first = pymupdf.open(stream=_outlined_manual())
    assert engine._state(first).toc_depths == {1}
    freed = id(first)
    first.close()
    del first
    for _ in range(20):
        gc.collect()
        second = pymupdf.open(stream=factory.furniture_pdf())
        if id(second) == freed:
            break
    assert not engine._state(second).toc_depths
    assert engine._state(second) is engine._state(second)


def _turned_table() -> pymupdf.Page:
    """A ruled table set turned by 90 degrees (a landscape table on a portrait page), with
    horizontal words beside and across it."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 60), "Table 3 lists the gauges; values in metres.")
    for col in range(4):
        x = 120 + col * 40
        page.draw_line((x - 14, 100), (x - 14, 500))
        for row in range(5):
            y = 480 - row * 80
            page.insert_text((x, y), f"g{row}{col} {row * col + 0.5:.1f} m", rotate=90)
    page.draw_line((266, 100), (266, 500))
    page.insert_text((200, 300), "across")  # a horizontal word inside the turned cells
    page.insert_text((72, 560), "Below the table.")
    return page


def test_table_words_are_pymupdfs_refinement_words() -> None:
    from pymupdf import _table_refine

    from deepocr_loaders.engines.text_layer import table_words

    old = pymupdf.TOOLS.set_small_glyph_heights()
    pymupdf.TOOLS.set_small_glyph_heights(True)
    try:
        theirs = _table_refine._refine_page_words(_turned_table())
        ours = table_words(_turned_table())
    finally:
        pymupdf.TOOLS.set_small_glyph_heights(old)
    assert any(" " in w[4] for w in theirs)  # turned spans stand for their words
    assert ours == theirs


def test_primed_words_leave_html_tables_unchanged() -> None:
    from pymupdf4llm.helpers.table_html import reconstruct

    from deepocr_loaders.engines.text_layer import _prime_table_words

    plain = _turned_table()
    primed = _turned_table()
    _prime_table_words(primed)
    assert primed._refine_words_cache  # type: ignore[attr-defined]
    assert repr(reconstruct.page_html_tables(primed)) == repr(reconstruct.page_html_tables(plain))
