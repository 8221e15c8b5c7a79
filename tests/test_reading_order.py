"""XY-cut reading order: columns before rows, full-width elements as separators."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from deepocr_loaders.document import BBox
from deepocr_loaders.reading_order import xy_cut_order


def test_two_columns_under_a_title_read_column_by_column() -> None:
    boxes = [
        BBox(50, 40, 560, 70),  # 0 title, full width
        BBox(50, 100, 290, 200),  # 1 left, top
        BBox(320, 100, 560, 200),  # 2 right, top (same row as 1)
        BBox(50, 220, 290, 400),  # 3 left, bottom
        BBox(320, 220, 560, 400),  # 4 right, bottom
        BBox(50, 700, 560, 740),  # 5 full-width closing paragraph
    ]
    assert xy_cut_order(boxes) == [0, 1, 3, 2, 4, 5]


def test_full_width_figure_separates_column_runs() -> None:
    boxes = [
        BBox(50, 100, 290, 200),
        BBox(320, 100, 560, 200),
        BBox(50, 220, 560, 400),  # figure across both columns
        BBox(50, 420, 290, 500),
        BBox(320, 420, 560, 500),
    ]
    assert xy_cut_order(boxes) == [0, 1, 2, 3, 4]


def test_single_column_keeps_top_to_bottom() -> None:
    boxes = [BBox(50, y, 560, y + 30) for y in (300, 100, 200)]
    assert xy_cut_order(boxes) == [1, 2, 0]


_box = st.tuples(
    st.floats(0, 500, allow_nan=False),
    st.floats(0, 700, allow_nan=False),
    st.floats(1, 100, allow_nan=False),
    st.floats(1, 100, allow_nan=False),
).map(lambda t: BBox(t[0], t[1], t[0] + t[2], t[1] + t[3]))


@given(st.lists(_box, max_size=25))
def test_order_is_a_permutation(boxes: list[BBox]) -> None:
    assert sorted(xy_cut_order(boxes)) == list(range(len(boxes)))


def _card_grid_pdf(numbers: list[int]) -> bytes:
    """Four cards in a 2x2 grid; ``numbers`` label them top-left, top-right, bottom-left,
    bottom-right."""
    import pymupdf

    pdf = pymupdf.open()
    page = pdf.new_page(width=612, height=792)
    spots = [(60, 100), (330, 100), (60, 400), (330, 400)]
    for n, (x, y) in zip(numbers, spots, strict=True):
        page.insert_text((x, y), f"{n}. Card number {n}", fontsize=16)
        page.insert_textbox(
            pymupdf.Rect(x, y + 15, x + 220, y + 200),
            f"Body of card {n}. " + "Some words about this card. " * 8,
            fontsize=10,
        )
    return pdf.tobytes()


def test_card_grids_follow_their_numbering_either_way() -> None:
    from deepocr_loaders import convert

    for numbers in ([1, 2, 3, 4], [1, 3, 2, 4]):  # row-major, column-major
        doc = convert(_card_grid_pdf(numbers), engine="text-layer")
        md = doc.pages[0].markdown
        positions = [md.find(f"Body of card {n}.") for n in (1, 2, 3, 4)]
        assert all(p >= 0 for p in positions), md
        assert positions == sorted(positions), (numbers, md)


def test_rows_first_variant_reads_grids_by_row() -> None:
    grid = [BBox(50, 100, 290, 200), BBox(320, 100, 560, 200), BBox(50, 220, 290, 400)]
    assert xy_cut_order(grid) == [0, 2, 1]
    assert xy_cut_order(grid, columns_first=False) == [0, 1, 2]
