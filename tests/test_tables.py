"""HTML table -> grid -> Markdown."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from deepocr_loaders.tables import grid_to_markdown, html_table_to_grid, html_tables_to_markdown


def test_th_row_is_header_and_entities_and_pipes_are_handled() -> None:
    grid = html_table_to_grid(
        "<table><thead><tr><th>Name</th><th>A &amp; B</th></tr></thead>"
        "<tbody><tr><td>x|y</td><td>1<br>2</td></tr></tbody></table>"
    )
    assert grid.header_rows == 1
    assert grid.rows == [["Name", "A & B"], ["x|y", "1 2"]]
    assert grid_to_markdown(grid).splitlines() == [
        "| Name | A & B |",
        "| --- | --- |",
        "| x\\|y | 1 2 |",
    ]


def test_rowspan_and_colspan_fill_the_grid() -> None:
    grid = html_table_to_grid(
        "<table><tr><td rowspan=3>R</td><td colspan=2>C</td></tr>"
        "<tr><td>1</td><td>2</td></tr><tr><td>3</td></tr></table>"
    )
    assert grid.rows == [["R", "C", "C"], ["R", "1", "2"], ["R", "3", ""]]
    assert grid.header_rows == 3  # the first row's rowspan marks a three-row header


def test_ragged_rows_are_padded_and_huge_spans_capped() -> None:
    grid = html_table_to_grid("<table><tr><td>a</td></tr><tr><td>b</td><td>c</td></tr></table>")
    assert grid.rows == [["a", ""], ["b", "c"]]
    big = html_table_to_grid('<table><tr><td colspan="100000">x</td></tr></table>')
    assert big.n_cols == 100


def test_truncated_table_converts_what_is_there() -> None:
    md = html_tables_to_markdown("Before\n<table><tr><td>a</td><td>b</td></tr><tr><td>1</td>")
    assert md.splitlines() == ["Before", "", "| a | b |", "| --- | --- |", "| 1 |  |"]


def test_text_around_tables_is_kept() -> None:
    md = html_tables_to_markdown("Intro <table><tr><td>k</td></tr></table> outro")
    assert md.startswith("Intro") and md.endswith("outro") and "| k |" in md


def test_nested_table_is_flattened_into_its_cell() -> None:
    grid = html_table_to_grid(
        "<table><tr><td>outer <table><tr><td>in1</td><td>in2</td></tr></table></td>"
        "<td>z</td></tr></table>"
    )
    assert grid.rows == [["outer in1 in2", "z"]]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.text(alphabet="abcXYZ 019.,", max_size=8), min_size=1, max_size=4),
        min_size=1,
        max_size=5,
    )
)
def test_cell_text_survives(rows: list[list[str]]) -> None:
    html = (
        "<table>"
        + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        + "</table>"
    )
    grid = html_table_to_grid(html)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            assert grid.rows[r][c] == " ".join(cell.split())


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    html_tables_to_markdown("<table>" + text)
    html_table_to_grid(text)


def test_leading_th_rows_form_a_multi_row_header() -> None:
    grid = html_table_to_grid(
        '<table><tr><th rowspan="2">Station</th><th colspan="2">Month</th></tr>'
        "<tr><th>March</th><th>April</th></tr><tr><td>AC-01</td><td>1</td><td>2</td></tr></table>"
    )
    assert grid.header_rows == 2
    assert grid_to_markdown(grid).splitlines() == [
        "| Station | Month | Month |",
        "| --- | --- | --- |",
        "| Station | March | April |",
        "| AC-01 | 1 | 2 |",
    ]
