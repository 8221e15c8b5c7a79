"""Document model: JSON round trip, Markdown rendering, box mapping, block ids."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepocr_loaders import BBox, Block, BlockKind, Document, Page, PageStatus
from deepocr_loaders.document import blocks_to_markdown


def _doc() -> Document:
    title = Block(
        BlockKind.TITLE,
        "# Report",
        page_index=0,
        order=0,
        label="title",
        level=1,
        bbox=BBox(10, 20, 300, 40),
        boxes=[BBox(10, 20, 300, 40)],
        norm_boxes=[(16, 25, 490, 50)],
        source_span=(30, 38),
    )
    header = Block(BlockKind.PAGE_HEADER, "ACME confidential", order=1, label="header")
    table = Block(
        BlockKind.TABLE,
        "| a | b |\n| --- | --- |\n| 1 | 2 |",
        order=2,
        label="table",
        html="<table><tr><td>a</td><td>b</td></tr><tr><td>1</td><td>2</td></tr></table>",
        metadata={"rows": 2},
    )
    figure = Block(BlockKind.FIGURE, "", order=3, label="image")
    ok = Page(0, 612, 792, dpi=144, blocks=[title, header, table, figure], engine="test")
    ok.markdown = ok.render_markdown()
    failed = Page(1, 612, 792, status=PageStatus.FAILED, error="CUDA OOM -- twice", label="ii")
    return Document("report.pdf", sha256="ab" * 32, page_count=5, pages=[ok, failed])


def test_json_round_trip_is_lossless() -> None:
    doc = _doc()
    text = doc.to_json()
    again = Document.from_json(text)
    assert again == doc
    assert again.to_json() == text
    assert json.loads(text)["schema_version"] == 1
    assert again.pages[0].blocks[0].bbox == BBox(10, 20, 300, 40)
    assert again.pages[0].blocks[0].norm_boxes == [(16, 25, 490, 50)]
    assert again.pages[1].status is PageStatus.FAILED


def test_page_count_keeps_unconverted_pages_and_defaults_label() -> None:
    doc = _doc()
    assert doc.page_count == 5
    assert doc.pages[0].label == "1"
    assert doc.pages[1].label == "ii"
    assert Document("x.pdf", pages=[Page(0, 1, 1)]).page_count == 1


def test_to_markdown_notes_failed_pages_and_separators() -> None:
    doc = _doc()
    md = doc.to_markdown(page_separator="\n\n<!-- page {label} -->\n\n")
    assert md.startswith("# Report")
    assert "<!-- page ii -->" in md
    # A failed page is reported, never silently missing; "--" cannot end the comment early.
    assert "<!-- page ii failed: CUDA OOM - - twice -->" in md
    assert "<!-- image -->" in md
    assert "| 1 | 2 |" in md
    assert "failed" not in doc.to_markdown(status_notes=False)


def test_to_markdown_can_drop_furniture() -> None:
    doc = _doc()
    assert "ACME confidential" in doc.to_markdown()
    md = doc.to_markdown(exclude={BlockKind.PAGE_HEADER, BlockKind.PAGE_FOOTER})
    assert "ACME confidential" not in md
    assert "# Report" in md


def test_figure_with_crop_renders_as_image_link() -> None:
    fig = Block(BlockKind.FIGURE, "", metadata={"image_path": "images/p0-b3.png"})
    assert blocks_to_markdown([fig]) == "![figure](images/p0-b3.png)"


def test_block_ids_and_plain_text() -> None:
    block = Block(BlockKind.HEADING, "## Methods", page_index=3, order=7, level=2)
    assert block.id == "p3-b7"
    assert block.plain_text == "Methods"
    assert Block(BlockKind.TEXT, "# not a heading").plain_text == "# not a heading"


def test_problem_pages_and_blocks_order() -> None:
    doc = _doc()
    assert [p.index for p in doc.problem_pages] == [1]
    assert [b.order for b in doc.blocks] == [0, 1, 2, 3]


@pytest.mark.parametrize("width,height", [(612, 792), (595.28, 841.89), (100, 5000)])
def test_full_grid_box_covers_page(width: float, height: float) -> None:
    box = BBox.from_norm((0, 0, 999, 999), width, height)
    assert box.as_tuple() == pytest.approx((0, 0, width, height))


def test_bbox_helpers() -> None:
    a, b = BBox(0, 0, 10, 10), BBox(5, -5, 20, 8)
    assert a.union(b) == BBox(0, -5, 20, 10)
    assert a.scale(2, 3) == BBox(0, 0, 20, 30)
    assert (a.width, a.height) == (10, 10)


_text = st.text(max_size=40)
_box = st.builds(
    BBox,
    st.floats(0, 1000, allow_nan=False),
    st.floats(0, 1000, allow_nan=False),
    st.floats(0, 1000, allow_nan=False),
    st.floats(0, 1000, allow_nan=False),
)
_block = st.builds(
    Block,
    kind=st.sampled_from(list(BlockKind)),
    text=_text,
    page_index=st.integers(0, 50),
    order=st.integers(0, 50),
    label=_text,
    level=st.none() | st.integers(1, 6),
    html=st.none() | _text,
    bbox=st.none() | _box,
    boxes=st.lists(_box, max_size=3),
    norm_boxes=st.lists(st.tuples(*[st.integers(0, 999)] * 4), max_size=3),
    source_span=st.none() | st.tuples(st.integers(0, 99), st.integers(0, 99)),
    metadata=st.dictionaries(st.text(max_size=5), st.integers() | _text, max_size=3),
)
_page = st.builds(
    Page,
    index=st.integers(0, 50),
    width=st.floats(1, 5000, allow_nan=False),
    height=st.floats(1, 5000, allow_nan=False),
    label=_text,
    dpi=st.none() | st.floats(1, 600, allow_nan=False),
    blocks=st.lists(_block, max_size=4),
    markdown=_text,
    raw_output=st.none() | _text,
    status=st.sampled_from(list(PageStatus)),
    error=st.none() | _text,
    engine=st.none() | _text,
)


@given(st.lists(_page, max_size=3), _text, st.text("0123456789abcdef", max_size=64))
def test_json_round_trip_property(pages: list[Page], source: str, sha: str) -> None:
    doc = Document(source, sha256=sha, pages=pages, metadata={"k": [1, "x"]})
    assert Document.from_json(doc.to_json()) == doc
