"""Property tests of LayoutChunker over random documents: no content lost, ids deterministic.

No loss, precisely: with overlap off, let S be the concatenation of all chunk texts in order
with every whitespace character removed. Then for every block the chunker does not report as
furniture (:func:`chunking.furniture_blocks`, which may only hold page headers, footers,
margin page numbers and text repeated in a page margin): its text without whitespace is a
substring of S (headings: the text without ``#`` marks; tables: every row line of the table's
Markdown, since row groups repeat the header), and its id is in some chunk's ``block_ids``.
"""

from __future__ import annotations

import re

from chunk_docs import H, W, html_table
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chunking import LayoutChunker, furniture_blocks
from chunking.units import _PAGE_NUMBER_RE
from deepocr_loaders import BBox, Block, BlockKind, Document, Page
from deepocr_loaders.furniture import find_furniture
from deepocr_loaders.tables import grid_to_markdown, html_table_to_grid

WORDS = ["flow", "gauge", "Creek", "April", "peak", "rose", "the", "and", "12.5", "(m3/s)", "3"]
PUNCT = ["", "", "", ".", ",", ":", "-", "?"]

word = st.builds(lambda w, p: w + p, st.sampled_from(WORDS), st.sampled_from(PUNCT))
sentence = st.lists(word, min_size=1, max_size=40).map(" ".join)
cell = st.sampled_from(WORDS)

TEXT_KINDS = [
    BlockKind.TEXT,
    BlockKind.TEXT,
    BlockKind.TEXT,
    BlockKind.LIST_ITEM,
    BlockKind.CAPTION,
    BlockKind.EQUATION,
    BlockKind.CODE,
    BlockKind.FOOTNOTE,
    BlockKind.OTHER,
    BlockKind.PAGE_HEADER,
    BlockKind.PAGE_FOOTER,
]


@st.composite
def boxes(draw: st.DrawFn) -> BBox:
    x0 = draw(st.sampled_from([50.0, 320.0]))
    y0 = draw(st.floats(0, H - 40))
    return BBox(x0, y0, x0 + draw(st.sampled_from([240.0, 500.0])), y0 + 30)


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    choice = draw(st.integers(0, 9))
    bbox = draw(boxes())
    if choice == 0:
        level = draw(st.integers(1, 4))
        kind = BlockKind.TITLE if level == 1 else BlockKind.HEADING
        number = draw(st.sampled_from(["", "1 ", "2.1 ", "3.1.2 "]))
        text = f"{'#' * level} {number}{draw(sentence)}"
        return Block(kind, text, level=level, bbox=bbox, boxes=[bbox])
    if choice == 1:
        cols = draw(st.integers(1, 4))
        head = draw(st.lists(cell, min_size=cols, max_size=cols))
        rows = draw(st.lists(st.lists(cell, min_size=cols, max_size=cols), max_size=25))
        if draw(st.booleans()):
            html = html_table(head, rows, th=draw(st.booleans()))
            md = grid_to_markdown(html_table_to_grid(html))
            return Block(BlockKind.TABLE, md, html=html, bbox=bbox, boxes=[bbox])
        grid_md = grid_to_markdown(html_table_to_grid(html_table(head, rows)))
        return Block(BlockKind.TABLE, grid_md, bbox=bbox, boxes=[bbox])
    if choice == 2:
        text = draw(st.sampled_from(["", "", "chart text"]))
        meta = draw(st.sampled_from([{}, {"image_path": "c.png"}, {"description": "a bar chart"}]))
        return Block(BlockKind.FIGURE, text, bbox=bbox, boxes=[bbox], metadata=meta)
    if choice == 3:
        text = draw(st.sampled_from(["7", "Page 2 of 5", "iv"]))  # page-number-like text
        return Block(BlockKind.TEXT, text, bbox=bbox, boxes=[bbox])
    kind = draw(st.sampled_from(TEXT_KINDS))
    text = draw(sentence)
    if kind is BlockKind.EQUATION:
        text = f"$$\n{text}\n$$"
    return Block(kind, text, bbox=bbox, boxes=[bbox] if draw(st.booleans()) else [])


@st.composite
def documents(draw: st.DrawFn) -> Document:
    pages = []
    for index in range(draw(st.integers(1, 4))):
        page_blocks = draw(st.lists(blocks(), max_size=12))
        for order, b in enumerate(page_blocks):
            b.page_index, b.order = index, order
        pages.append(Page(index=index, width=W, height=H, blocks=page_blocks))
    return Document(source="random.pdf", sha256="ab" * 32, pages=pages)


_WS = re.compile(r"\s+")


def squash(text: str) -> str:
    return _WS.sub("", text)


def expected_pieces(block: Block) -> list[str]:
    if block.kind in (BlockKind.TITLE, BlockKind.HEADING):
        return [block.plain_text]
    if block.kind is BlockKind.TABLE and block.text.startswith("|"):
        # Row groups repeat the header: each row line must be there whole (HTML without spans
        # has exactly these lines as its Markdown).
        return block.text.split("\n")
    return [block.text]


# A bare page number in an unlabelled block at the top margin: furniture (found by hypothesis).
_PAGE_NUMBER_AS_OTHER = Document(
    source="random.pdf",
    sha256="ab" * 32,
    pages=[
        Page(
            index=0,
            width=W,
            height=H,
            blocks=[Block(BlockKind.OTHER, "3", bbox=BBox(50, 0, 290, 30))],
        )
    ],
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    documents(),
    st.integers(8, 300),
    st.integers(0, 100),
)
@example(_PAGE_NUMBER_AS_OTHER, 8, 0)
def test_no_content_is_lost(document: Document, max_tokens: int, min_tokens: int) -> None:
    chunker = LayoutChunker(max_tokens=max_tokens, min_tokens=min(min_tokens, max_tokens))
    chunks = chunker.chunk(document)
    dropped = {b.id for b in furniture_blocks(document)}
    # Running text: the same short text in a page margin on several pages (find_furniture).
    running = {m.block_id for m in find_furniture(document.pages)}
    for b in furniture_blocks(document):
        # Headers and footers, or a bare page number (a text or unlabelled block) in a margin.
        bare_number = b.kind in (BlockKind.TEXT, BlockKind.OTHER) and bool(
            _PAGE_NUMBER_RE.fullmatch(b.text.strip())
        )
        assert b.kind.is_furniture or bare_number or b.id in running, b
    everything = squash("".join(c.text for c in chunks))
    ids = {i for c in chunks for i in c.metadata["block_ids"]}
    for block in document.blocks:
        if block.id in dropped or not (block.text.strip() or block.kind is BlockKind.FIGURE):
            continue
        assert block.id in ids, block
        for piece in expected_pieces(block):
            assert squash(piece) in everything, (block, piece)
    for c in chunks:
        assert c.text.strip()
        boxes = c.metadata["boxes"]
        assert {b["page"] for b in boxes} <= set(c.metadata["pages"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.integers(8, 300), st.integers(0, 60))
def test_ids_are_deterministic_and_unique(
    document: Document, max_tokens: int, overlap: int
) -> None:
    chunker = LayoutChunker(max_tokens=max_tokens, overlap_tokens=min(overlap, max_tokens - 1))
    first = chunker.chunk(document)
    again = chunker.chunk(Document.from_json(document.to_json()))
    assert [(c.id, c.text) for c in first] == [(c.id, c.text) for c in again]
    assert len({c.id for c in first}) == len(first)
