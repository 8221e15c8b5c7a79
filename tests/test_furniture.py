"""Page furniture found across pages (running headers/footers, page numbers), and the chunker
keeping it out of heading paths and chunk text while the document keeps the blocks."""

from __future__ import annotations

from chunk_docs import H, W, blk, heading
from hypothesis import given
from hypothesis import strategies as st

from chunking import LayoutChunker, furniture_blocks
from deepocr_loaders import BBox, Block, BlockKind, Document, Page
from deepocr_loaders.furniture import find_furniture, mark_furniture, page_number_value

BODY = "The gauge at the mill bridge recorded a steady rise through the night. " * 3


def _doc(pages: list[list[Block]]) -> Document:
    out = []
    for i, blocks in enumerate(pages):
        for n, b in enumerate(blocks):
            b.page_index, b.order = i, n
        out.append(Page(index=i, width=W, height=H, label=str(i + 1), blocks=blocks))
    return Document(source="t.pdf", pages=out)


def _running_doc(n: int = 4) -> Document:
    """``n`` pages with a running title (alternating sides, as books do), a page number in the
    top margin that the layout model called a heading, a section heading and body text."""
    pages = []
    for i in range(n):
        x = 72 if i % 2 else 400
        pages.append(
            [
                blk(BlockKind.TEXT, "Hydrology of the Upper Creek", (x, 30, x + 140, 42)),
                blk(BlockKind.HEADING, f"## {i + 1}", (560 - x, 30, 570 - x, 42), level=2),
                heading(f"{i + 1}.1 Gauge readings", level=2, y=120),
                blk(BlockKind.TEXT, BODY, (72, 150, 540, 300)),
                blk(BlockKind.TEXT, f"Page {i + 1} of {n}", (280, 760, 330, 772)),
            ]
        )
    return _doc(pages)


def test_running_title_and_page_numbers_are_marked_with_their_boxes() -> None:
    doc = _running_doc()
    marks = mark_furniture(doc)
    reasons = {(m.page_index, m.order): m.reason for m in marks}
    for page in doc.pages:
        title, number, head, body, footer = page.blocks
        assert title.kind is BlockKind.PAGE_HEADER and reasons[(page.index, 0)] == "repeated"
        assert number.kind is BlockKind.PAGE_HEADER and number.level is None
        assert number.text == str(page.index + 1)  # heading marks dropped, text kept
        assert number.metadata["furniture"] == "page_number"
        assert number.label  # the raw label still says what the layout model called it
        assert footer.kind is BlockKind.PAGE_FOOTER
        assert head.kind is BlockKind.HEADING and body.kind is BlockKind.TEXT
        assert all(b.bbox is not None for b in page.blocks)  # nothing lost, boxes kept
        assert len(page.blocks) == 5
    assert mark_furniture(doc) == []  # idempotent: they are labelled now


def test_chunker_keeps_furniture_out_of_paths_and_text_without_labels() -> None:
    # Not marked: the chunker finds the same furniture itself (documents built elsewhere).
    doc = _running_doc()
    chunks = LayoutChunker(max_tokens=200).chunk(doc)
    for c in chunks:
        assert c.metadata["heading_path"] and c.metadata["heading_path"][-1].endswith("readings")
        assert "Hydrology" not in c.text and "Page " not in c.text
        assert all(not p.isdigit() for p in c.metadata["heading_path"])
    found = {b.id for b in furniture_blocks(doc)}
    assert len(found) == 12


def test_slide_titles_repeated_as_headings_are_not_furniture() -> None:
    pages = [
        [heading("Results", level=2, y=20), blk(BlockKind.TEXT, BODY, (72, 150, 540, 300))]
        for _ in range(5)
    ]
    assert find_furniture(_doc(pages).pages) == []


def test_numbers_off_the_page_sequence_or_mid_page_are_kept() -> None:
    pages = [
        [
            # A chapter number set large in the top margin of one page only, not its label.
            blk(BlockKind.HEADING, "# 7", (72, 30, 100, 70), level=1),
            blk(BlockKind.TEXT, BODY, (72, 150, 540, 300)),
            blk(BlockKind.TEXT, "12", (300, 400, 320, 412)),  # a number in the body
        ],
        [blk(BlockKind.TEXT, BODY, (72, 150, 540, 300))],
    ]
    assert find_furniture(_doc(pages).pages) == []


def test_repeated_text_must_sit_at_the_same_height() -> None:
    pages = [[blk(BlockKind.TEXT, "Notes", (72, 20 + 40 * i, 140, 32 + 40 * i))] for i in range(3)]
    assert find_furniture(_doc(pages).pages) == []


def test_a_sentence_continued_onto_the_top_of_pages_is_body_text() -> None:
    # Templated prose whose paragraphs run over page breaks: the same sentence tail, digits
    # aside, opens several pages at the same height. It is text, and it stays in the chunks.
    tail = "valve chamber are kept in key safe K-{} beside the gate."
    pages = [
        [
            blk(BlockKind.TEXT, tail.format(100 + i), (72, 40, 540, 52)),
            blk(BlockKind.TEXT, "Hydrology of the Upper Creek", (72, 20, 240, 30)),
            blk(BlockKind.TEXT, BODY, (72, 150, 540, 300)),
        ]
        for i in range(4)
    ]
    doc = _doc(pages)
    marks = find_furniture(doc.pages)
    assert {m.text for m in marks} == {"Hydrology of the Upper Creek"}  # the title still is
    text = "\n".join(c.text for c in LayoutChunker(max_tokens=400).chunk(doc))
    assert all(tail.format(100 + i) in text for i in range(4))


def _roman(n: int) -> str:
    out = ""
    for value, sym in (
        (1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"),
        (50, "l"), (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"),
    ):  # fmt: skip
        while n >= value:
            out += sym
            n -= value
    return out


@given(st.integers(1, 9999), st.integers(1, 9999))
def test_page_number_forms(n: int, total: int) -> None:
    for text in (
        str(n),
        f"Page {n}",
        f"Page {n} of {total}",
        f"- {n} -",
        f"{n}/{total}",
        f"**{n}**",
    ):
        assert page_number_value(text) == n, text


@given(st.integers(1, 200))
def test_roman_page_numbers(n: int) -> None:
    assert page_number_value(_roman(n)) == n


@given(st.text(alphabet="abefghjknopqrstuwyz .,", min_size=1, max_size=20))
def test_words_are_not_page_numbers(text: str) -> None:
    assert page_number_value(text) is None


@given(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from([BlockKind.TEXT, BlockKind.HEADING, BlockKind.LIST_ITEM]),
                st.sampled_from(["Annual report", "1", "2", "ii", "Page 3", "Results", BODY]),
                st.floats(0, H - 20),
            ),
            max_size=6,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_marking_keeps_every_block_and_only_touches_margins(
    spec: list[list[tuple[BlockKind, str, float]]],
) -> None:
    pages = [
        [
            Block(
                kind,
                f"## {text}" if kind is BlockKind.HEADING else text,
                level=2 if kind is BlockKind.HEADING else None,
                bbox=BBox(72, y, 300, y + 12),
            )
            for kind, text, y in page
        ]
        for page in spec
    ]
    doc = _doc(pages)
    before = [(b.id, b.bbox, b.plain_text) for b in doc.blocks]
    marks = mark_furniture(doc)
    assert [(b.id, b.bbox, b.plain_text) for b in doc.blocks] == before
    for m in marks:
        block = doc.pages[m.page_index].blocks[m.order]
        assert block.kind is m.kind and block.kind.is_furniture
        y0, y1 = m.bbox.y0 / H, m.bbox.y1 / H
        assert y1 <= 0.1 if m.kind is BlockKind.PAGE_HEADER else y0 >= 0.9
    assert mark_furniture(doc) == []
