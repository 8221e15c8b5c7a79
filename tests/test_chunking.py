"""LayoutChunker structure rules, one test (or a few) per rule, on hand-built documents."""

from __future__ import annotations

import itertools
import json

import pytest
from chunk_docs import (
    SENTENCE,
    STATION_HEADER,
    blk,
    doc,
    footer,
    header,
    heading,
    para,
    sample_document,
    station_rows,
    table,
)

from chunking import (
    Chunk,
    LayoutChunker,
    default_token_count,
    furniture_blocks,
    numbering_depth,
    resolve_token_counter,
)
from chunking.tables import block_table, cells, first_cell, words_tell_rows_apart
from deepocr_loaders import Block, BlockKind, Document


def chunk(document: Document, **kw: object) -> list[Chunk]:
    return LayoutChunker(**kw).chunk(document)  # type: ignore[arg-type]


def containing(chunks: list[Chunk], needle: str) -> Chunk:
    found = [c for c in chunks if needle in c.text]
    assert found, f"{needle!r} in no chunk"
    return found[0]


# -- headings -------------------------------------------------------------------------------


def test_heading_path_is_a_real_hierarchy() -> None:
    d = doc(
        [
            [
                heading("Annual Report", 1),
                para("Intro text."),
                heading("Methods", 2),
                para("Methods text."),
                heading("Sampling", 3),
                para("Sampling text."),
                heading("Results", 2),
                para("Results text."),
            ]
        ]
    )
    chunks = chunk(d, min_tokens=0)
    assert containing(chunks, "Intro text.").heading_path == ["Annual Report"]
    assert containing(chunks, "Sampling text.").heading_path == [
        "Annual Report",
        "Methods",
        "Sampling",
    ]
    assert containing(chunks, "Results text.").heading_path == ["Annual Report", "Results"]
    ctx = containing(chunks, "Sampling text.").contextualized_text
    assert ctx.startswith("Annual Report > Methods > Sampling\n\n")


def test_flat_heading_levels_nest_by_numbering() -> None:
    # DeepSeek-OCR labels every heading sub_title (##): numbering restores the hierarchy.
    d = doc(
        [
            [
                heading("2. Sediment", 2),
                para("Load text."),
                heading("2.1 Rating curve", 2),
                para("Curve text."),
                heading("2.1.1 Fit", 2),
                para("Fit text."),
                heading("3. Turbidity", 2),
                para("Turbidity text."),
            ]
        ]
    )
    chunks = chunk(d, min_tokens=0)
    assert containing(chunks, "Fit text.").heading_path == [
        "2. Sediment",
        "2.1 Rating curve",
        "2.1.1 Fit",
    ]
    assert containing(chunks, "Turbidity text.").heading_path == ["3. Turbidity"]
    # Levels are normalised without a title: top sections are level 1, rendered as "#".
    assert containing(chunks, "Load text.").text.startswith("# 2. Sediment")
    assert "### 2.1.1 Fit" in containing(chunks, "Fit text.").text


def test_consecutive_headings_nest_instead_of_overwriting() -> None:
    d = doc([[heading("Part One", 2), heading("Background", 2), para("Body text.")]])
    (only,) = chunk(d)
    assert only.heading_path == ["Part One", "Background"]
    assert only.text.startswith("# Part One\n\n## Background\n\nBody text.")


def test_title_is_level_one_and_sections_never_share_a_chunk() -> None:
    d = doc(
        [
            [
                heading("Report", 1),
                heading("A", 3),
                para("alpha."),
                heading("B", 3),
                para("beta."),
            ]
        ]
    )
    chunks = chunk(d, max_tokens=400, min_tokens=100)
    assert [c.heading_path for c in chunks] == [["Report", "A"], ["Report", "B"]]
    assert chunks[0].text.startswith("# Report\n\n## A")


def h1(text: str) -> Block:
    """A level-1 heading that is not labelled a title (as text layers give it)."""
    return blk(BlockKind.HEADING, f"# {text}", level=1)


def test_a_lone_level_one_heading_opening_the_document_is_its_title() -> None:
    # "# Manual" must not be replaced by "## 1. Pumps", which numbering puts at depth 1 too.
    d = doc([[h1("Manual"), heading("1. Pumps", 2), heading("1.1 Seals", 3), para("Seal.")]])
    (only,) = chunk(d)
    assert only.heading_path == ["Manual", "1. Pumps", "1.1 Seals"]
    # With several "#" headings, "#" is the section level and none becomes a title.
    two = doc([[h1("A"), para("a."), h1("B"), para("b.")]])
    assert [c.heading_path for c in chunk(two, min_tokens=0)] == [["A"], ["B"]]


@pytest.mark.parametrize(
    "text,depth",
    [("3 Results", 1), ("3.2 Fit", 2), ("3.2.1. Residuals", 3), ("A.1 Data", 2), ("IV. End", 1)],
)
def test_numbering_depth(text: str, depth: int) -> None:
    assert numbering_depth(text) == depth


def test_years_are_not_section_numbers() -> None:
    assert numbering_depth("2024 Annual Report") == 0
    assert numbering_depth("Results") == 0


# -- tables ---------------------------------------------------------------------------------


def long_table_doc(rows: int = 60) -> Document:
    caption = blk(BlockKind.CAPTION, "Table 4: Station readings", label="table_caption")
    return doc(
        [[heading("Readings", 2), caption, table(STATION_HEADER, station_rows(rows))]],
    )


def test_long_table_splits_into_row_groups_that_repeat_the_header() -> None:
    chunks = chunk(long_table_doc(), max_tokens=150, min_tokens=0)
    assert len(chunks) > 2
    header_line = "| Station | March | April | Status |"
    rows_seen: list[str] = []
    for i, c in enumerate(chunks):
        assert c.metadata["kind"] == "table"
        assert c.metadata["token_count"] <= 150
        assert "Table 4: Station readings" in c.text  # the caption travels with every part
        assert c.metadata["table_part"] == i + 1
        assert c.metadata["table_parts"] == len(chunks)
        lines = c.text.split("\n")
        start = lines.index(header_line)
        assert lines[start + 1] == "| --- | --- | --- | --- |"
        rows_seen.extend(ln for ln in lines[start + 2 :] if ln.startswith("| AC-"))
    # Every row whole, exactly once, in order.
    assert rows_seen == [
        f"| AC-{i:03d} | {i * 0.37:.2f} | {i * 1.13:.2f} | ok |" for i in range(60)
    ]


def test_small_table_stays_whole_with_caption() -> None:
    (c,) = chunk(sample_document())[1:2]
    assert c.metadata["kind"] == "table"
    assert "Table 1: Mean discharge" in c.text
    assert "| AC-12 (outlet) | 2.31 | 7.96 | 3.48 |" in c.text
    assert c.heading_path[-1] == "1. Discharge by station"


def test_table_continued_on_next_page_is_stitched() -> None:
    first = table(STATION_HEADER, station_rows(8), y=400)
    second = table(STATION_HEADER, station_rows(14, start=8), y=60)  # repeats its header
    d = doc(
        [
            [heading("Readings", 2), para("Readings follow."), first, footer("1")],
            [header(), second, para("After the table.", y=400), footer("2")],
        ]
    )
    chunks = chunk(d, max_tokens=1000)
    tab = containing(chunks, "AC-013")
    assert "AC-000" in tab.text
    assert tab.text.count("| Station |") == 1  # the repeated header row is dropped
    assert {b["page"] for b in tab.metadata["boxes"]} == {0, 1}
    assert tab.metadata["page_start"] == 0 and tab.metadata["page_end"] == 1
    assert "p0-b2" in tab.metadata["block_ids"] and "p1-b1" in tab.metadata["block_ids"]


def test_row_groups_of_a_stitched_table_cite_only_the_pages_of_their_rows() -> None:
    caption = blk(BlockKind.CAPTION, "Table 2: Readings", (72, 380, 400, 395))
    first = table(STATION_HEADER, station_rows(20), y=400)
    second = table(STATION_HEADER, station_rows(40, start=20), y=60)
    d = doc(
        [
            [heading("Readings", 2), caption, first, footer("1")],
            [header(), second, para("After the table.", y=700), footer("2")],
        ]
    )
    parts = [c for c in chunk(d, max_tokens=120) if c.metadata["kind"] == "table"]
    assert len(parts) > 3
    for k, c in enumerate(parts):
        assert "Table 2: Readings" in c.text  # the caption text travels with every part
        ids = [int(first_cell(ln)[3:]) for ln in c.text.splitlines() if ln.startswith("| AC-")]
        pages = sorted({0 if i < 20 else 1 for i in ids})
        assert c.metadata["pages"] == pages, (k, ids)
        assert {b["page"] for b in c.metadata["boxes"]} == set(pages)
        # The caption's box goes with the first part only: it is printed once.
        assert ("p0-b1" in c.metadata["block_ids"]) == (k == 0)


def test_tables_with_own_caption_or_other_columns_are_not_stitched() -> None:
    captioned = doc(
        [
            [table(STATION_HEADER, station_rows(3), y=400)],
            [
                blk(BlockKind.CAPTION, "Table 2: Other", label="table_caption"),
                table(STATION_HEADER, station_rows(6, start=3), y=60),
            ],
        ]
    )
    # Two logical tables (each with its own header), even when packed into one chunk.
    assert "\n".join(c.text for c in chunk(captioned)).count("| Station | March") == 2
    other_cols = doc(
        [
            [table(STATION_HEADER, station_rows(3), y=400)],
            [table(["A", "B"], [["x", "y"]], y=60)],
        ]
    )
    chunks = chunk(other_cols, min_tokens=0, max_tokens=30)
    assert not any("AC-000" in c.text and "| x | y |" in c.text for c in chunks)


def test_pipe_table_without_html_is_split_by_rows_too() -> None:
    rows = "\n".join(f"| r{i} | {i} |" for i in range(40))
    md = f"| name | value |\n| --- | --- |\n{rows}"
    chunks = chunk(doc([[blk(BlockKind.TABLE, md)]]), max_tokens=60, min_tokens=0)
    assert len(chunks) > 1
    assert all(c.text.startswith("| name | value |\n| --- | --- |") for c in chunks)


def _table_rows(chunks: list[Chunk], prefix: str) -> list[str]:
    return [ln for c in chunks for ln in c.text.split("\n") if ln.startswith(prefix)]


def test_split_table_embeds_captions_columns_and_keys_not_cells() -> None:
    chunks = chunk(long_table_doc(), max_tokens=150, min_tokens=0)
    assert len(chunks) > 2
    for c in chunks:
        keys = [ln.split(" | ")[0][2:] for ln in c.text.split("\n") if ln.startswith("| AC-")]
        ctx = c.contextualized_text
        assert ctx.startswith("Readings\n\n## Readings\n\n") or ctx.startswith("Readings\n\n")
        assert "Table 4: Station readings" in ctx
        assert "Station | March | April | Status" in ctx
        assert f"Station: {', '.join(keys)}" in ctx  # exactly this group's keys, in order
        assert "0.37" not in ctx and "| ok |" not in ctx  # the cells stay in the text only
    # The chunk text, and so the ids, do not depend on what is embedded.
    as_rows = chunk(long_table_doc(), max_tokens=150, min_tokens=0, table_embedding="rows")
    assert [c.text for c in as_rows] == [c.text for c in chunks]
    assert [c.id for c in as_rows] == [c.id for c in chunks]
    # The heading path opens what is embedded, and the heading line is not repeated under it.
    opening = "# Readings\n\n"
    assert as_rows[0].text.startswith(opening)
    assert all(
        c.contextualized_text == "Readings\n\n" + c.text.removeprefix(opening) for c in as_rows
    )


def test_a_table_that_fits_embeds_its_rows_unless_keys_are_asked_for() -> None:
    (auto,) = chunk(sample_document())[1:2]
    assert "| AC-12 (outlet) | 2.31 | 7.96 | 3.48 |" in auto.contextualized_text
    (keys,) = chunk(sample_document(), table_embedding="keys")[1:2]
    assert keys.text == auto.text
    assert "AC-12 (outlet)" in keys.contextualized_text
    assert "2.31" not in keys.contextualized_text


def test_a_split_table_of_descriptions_embeds_its_rows() -> None:
    # A manual's option table: the descriptions are what a question asks about ("which option
    # simulates a black and white printer?"), so "auto" embeds them, not the option names.
    options = [
        [f"opt{n}", f"Convert every colour to model {n} before output, {word} the page."]
        for n, word in zip(range(40), itertools.cycle(["shading", "printing", "previewing"]))
    ]
    d = doc([[heading("Package options", 2), table(["Option", "Description"], options)]])
    chunks = chunk(d, max_tokens=150, min_tokens=0)
    assert len(chunks) > 2
    for c in chunks:
        assert c.table_keys is None
        assert "before output" in c.contextualized_text
    assert words_tell_rows_apart(block_table(d.blocks[1]), 0)  # type: ignore[arg-type]
    # Rows of numbers and recurring words (the station table's status) keep their keys.
    readings = block_table(long_table_doc().blocks[2])
    assert readings is not None and not words_tell_rows_apart(readings, 0)


def test_key_column_is_the_first_that_is_not_numbers() -> None:
    rows = [[str(i), f"Site {chr(65 + i)}", f"{i * 1.5:.1f}"] for i in range(20)]
    d = doc([[heading("Sites", 2), table(["No.", "Name", "Level"], rows)]])
    first = chunk(d, max_tokens=60, min_tokens=0)[0]
    assert "Name: Site A, Site B" in first.contextualized_text


def test_table_max_tokens_gives_fewer_fuller_row_groups() -> None:
    small = chunk(long_table_doc(), max_tokens=150, min_tokens=0)
    big = chunk(long_table_doc(), max_tokens=150, min_tokens=0, table_max_tokens=400)
    assert len(big) < len(small)
    assert max(c.metadata["token_count"] for c in big) > 150
    assert all(c.metadata["token_count"] <= 400 for c in big)
    assert _table_rows(big, "| AC-") == _table_rows(small, "| AC-")  # every row once, in order
    assert [c.metadata["table_part"] for c in big] == list(range(1, len(big) + 1))


def test_rows_under_one_spanned_label_stay_in_one_group() -> None:
    zones = ["North", "South", "East", "West", "Centre", "Harbour"]
    html = "<table><tr><th>Zone</th><th>Pump</th><th>Flow</th></tr>"
    for z, zone in enumerate(zones):
        for p in range(4):
            first = f'<td rowspan="4">{zone}</td>' if p == 0 else ""
            html += f"<tr>{first}<td>P{z}{p}</td><td>{z * 10 + p}.5</td></tr>"
    html += "</table>"
    from deepocr_loaders.tables import grid_to_markdown, html_table_to_grid

    md = grid_to_markdown(html_table_to_grid(html))  # spans spread: the label on every row
    d = doc([[blk(BlockKind.TABLE, md, html=html)]])
    chunks = chunk(d, max_tokens=70, min_tokens=0)
    assert len(chunks) > 1
    labels = [{ln.split(" | ")[0][2:] for ln in _table_rows([c], "| ")[2:]} for c in chunks]
    for zone in zones:  # each zone's four rows sit in one chunk
        assert sum(zone in group for group in labels) == 1
    # A run over the budget on its own is still cut between rows.
    tight = chunk(d, max_tokens=25, min_tokens=0)
    assert sum("| North |" in c.text for c in tight) > 1
    assert len(_table_rows(tight, "| North |")) == 4


def _segment_table(segments: list[str], items: list[str], *, spanned: bool) -> Block:
    """An income statement: a label row per segment (one spanning cell, or a first cell with
    the others empty), then the same line items under each."""
    html = "<table><tr><th>Line item</th><th>2025</th><th>2024</th></tr>"
    for s, segment in enumerate(segments):
        if spanned:
            html += f'<tr><td colspan="3">{segment}</td></tr>'
        else:
            html += f"<tr><td>{segment}</td><td></td><td></td></tr>"
        for i, item in enumerate(items):
            html += f"<tr><td>{item}</td><td>{s}{i}.5</td><td>{s}{i}.9</td></tr>"
    html += "</table>"
    from deepocr_loaders.tables import grid_to_markdown, html_table_to_grid

    return blk(BlockKind.TABLE, grid_to_markdown(html_table_to_grid(html)), html=html)


@pytest.mark.parametrize("spanned", [True, False])
def test_a_part_starting_inside_a_segment_repeats_the_segment_label(spanned: bool) -> None:
    segments = ["Water supply", "Wastewater", "Retail services", "Property and land"]
    items = ["Revenue", "Operating costs", "Depreciation", "Interest", "Operating profit"]
    d = doc([[heading("Income", 2), _segment_table(segments, items, spanned=spanned)]])
    parts = chunk(d, max_tokens=60, min_tokens=0)
    assert len(parts) > len(segments)  # parts end inside segments
    seen: list[tuple[str, str]] = []
    for c in parts:
        rows = [cells(ln) for ln in c.text.splitlines() if ln.startswith("|")][2:]
        # Under the header, every part starts with the label of the segment its rows are in:
        # no row is cut off from its segment's name, and no part ends on a bare label.
        assert rows[0][0] in segments, c.text
        assert rows[-1][0] not in segments, c.text
        segment = ""
        for row in rows:
            if row[0] in segments:
                segment = row[0]
            else:
                seen.append((segment, row[0]))
        # The embedding names the segment of every key.
        keys = c.metadata["table_keys"].split("\n")[1]
        assert keys.startswith(f"Line item: {rows[0][0]}: ")
    assert seen == [(s, i) for s in segments for i in items]  # every row once, in order


def test_every_keyed_row_gets_a_row_key_in_the_chunk_that_holds_it() -> None:
    chunks = chunk(long_table_doc(), max_tokens=150, min_tokens=0)
    assert len(chunks) > 2
    for c in chunks:
        stations = [cells(ln)[0] for ln in c.text.splitlines() if ln.startswith("| AC-")]
        assert c.metadata["row_keys"] == [f"Station {s}" for s in stations]
    # A table that fits one chunk has them too; the flat view keeps them as JSON.
    (small,) = chunk(sample_document())[1:2]
    assert "Station AC-12 (outlet)" in small.metadata["row_keys"]
    assert json.loads(small.flat_metadata()["row_keys"]) == small.metadata["row_keys"]


def test_row_keys_name_the_segment_of_rows_under_a_label_row() -> None:
    segments = ["Water supply", "Wastewater"]
    items = ["Revenue", "Operating costs"]
    d = doc([[heading("Income", 2), _segment_table(segments, items, spanned=True)]])
    keys = [k for c in chunk(d, max_tokens=40, min_tokens=0) for k in c.metadata["row_keys"]]
    assert keys == [f"{s}: {i}" for s in segments for i in items]


def test_a_table_keyed_by_numbers_only_gets_no_row_keys() -> None:
    rows = [[str(i), f"{i * 1.5:.1f}"] for i in range(6)]
    d = doc([[heading("Levels", 2), table(["No.", "Level"], rows)]])
    assert all("row_keys" not in c.metadata for c in chunk(d))


def test_spans_the_markdown_does_not_show_come_from_the_html() -> None:
    html = (
        "<table><tr><th>Zone</th><th>Pump</th></tr>"
        '<tr><td rowspan="2">North</td><td>P1</td></tr><tr><td>P2</td></tr></table>'
    )
    ragged = "| Zone | Pump |\n| --- | --- |\n| North | P1 |\n| P2 |"  # the span lost
    (c,) = chunk(doc([[blk(BlockKind.TABLE, ragged, html=html)]]))
    assert "| North | P2 |" in c.text
    spread = "| Zone | Pump |\n| --- | --- |\n| North | P1 |\n| North | P2 |"
    (same,) = chunk(doc([[blk(BlockKind.TABLE, spread, html=html)]]))
    assert same.text == c.text


def test_bad_table_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="table_max_tokens"):
        LayoutChunker(table_max_tokens=0)
    with pytest.raises(ValueError, match="table_embedding"):
        LayoutChunker(table_embedding="cells")  # type: ignore[arg-type]


# -- figures, equations, lists ------------------------------------------------------------


def test_figure_travels_with_caption_and_crop() -> None:
    d = doc(
        [
            [
                heading("Turbidity", 2),
                blk(BlockKind.FIGURE, "", (90, 200, 520, 500), image_path="crops/p0-b1.png"),
                blk(BlockKind.CAPTION, "Figure 3: NTU at the outlet", label="image_caption"),
            ]
        ]
    )
    (c,) = chunk(d)
    assert c.metadata["kind"] == "figure"
    assert "![figure](crops/p0-b1.png)" in c.text
    assert "Figure 3: NTU at the outlet" in c.text
    assert c.metadata["image_paths"] == ["crops/p0-b1.png"]
    assert c.metadata["block_ids"] == ["p0-b0", "p0-b1", "p0-b2"]


def test_a_figure_embeds_its_caption_not_its_tick_labels_or_crop_path() -> None:
    ticks = "2001 2002 2003\nIndex\n0.0\n-0.2\n-0.4"
    d = doc(
        [
            [
                heading("Returns", 2),
                blk(BlockKind.FIGURE, ticks, (90, 200, 520, 500), image_path="crops/p0-b1.png"),
                blk(BlockKind.CAPTION, "Figure 4: Log-difference returns", label="image_caption"),
            ]
        ]
    )
    (c,) = chunk(d)
    assert ticks in c.text  # the reader still gets what the figure shows
    assert c.contextualized_text == "Returns\n\n[figure]\n\nFigure 4: Log-difference returns"
    described = chunk(doc([[blk(BlockKind.FIGURE, "", description="A chart of returns.")]]))
    assert described[0].contextualized_text == "[figure]\n\nA chart of returns."


def test_figure_always_yields_text() -> None:
    bare = chunk(doc([[blk(BlockKind.FIGURE, "")]]))
    assert bare and bare[0].text.strip() == "[figure]"
    described = chunk(
        doc([[blk(BlockKind.FIGURE, "", description="A line chart of turbidity rising in April.")]])
    )
    assert "turbidity rising in April" in described[0].text


def test_caption_above_table_and_below_figure_go_to_the_right_neighbour() -> None:
    d = doc(
        [
            [
                blk(BlockKind.FIGURE, "", (90, 100, 520, 300)),
                blk(BlockKind.CAPTION, "Figure 1: Gauge"),
                blk(BlockKind.CAPTION, "Table 1: Levels"),
                table(["a", "b"], [["1", "2"]]),
            ]
        ]
    )
    chunks = chunk(d, max_tokens=12, min_tokens=0)
    assert "Figure 1: Gauge" in containing(chunks, "[figure]").text
    assert "Table 1: Levels" in containing(chunks, "| 1 | 2 |").text


def test_equation_stays_whole_and_with_its_introduction() -> None:
    (c,) = chunk(sample_document())[2:3]
    assert "rating curve in discharge Q" in c.text
    assert "$$\nL = a \\, Q^{b}, \\quad b \\approx 1.6\n$$" in c.text
    eq = "$$\n" + " + ".join(f"x_{{{i}}}" for i in range(200)) + "\n$$"
    intro = SENTENCE * 30 + "The sum is:"
    d = doc([[para(intro), blk(BlockKind.EQUATION, eq)]])
    chunks = chunk(d, max_tokens=120, min_tokens=0)
    whole = containing(chunks, "x_{0}")
    assert eq in whole.text  # over the budget, still whole
    assert "The sum is:" in whole.text
    assert whole.metadata["kind"] == "equation"


def test_list_items_stay_together() -> None:
    items = [blk(BlockKind.LIST_ITEM, f"- item {i} about the creek") for i in range(6)]
    d = doc([[heading("Checklist", 2), para("Bring these:"), *items, para("Then go.")]])
    chunks = chunk(d, max_tokens=60, min_tokens=0)
    holder = containing(chunks, "item 0")
    assert all(f"- item {i} about the creek" in holder.text for i in range(6))
    assert "- item 0 about the creek\n- item 1" in holder.text


def test_long_list_splits_between_items() -> None:
    items = [blk(BlockKind.LIST_ITEM, f"- item {i} " + "word " * 10) for i in range(30)]
    chunks = chunk(doc([items]), max_tokens=60, min_tokens=0)
    assert len(chunks) > 1
    for c in chunks:
        assert all(line.startswith("- item ") for line in c.text.split("\n"))


# -- breaks ---------------------------------------------------------------------------------


def test_paragraph_cut_by_page_break_is_joined_with_boxes_on_both_pages() -> None:
    d = doc(
        [
            [heading("Flow", 2), para("The peak arrived on the ninth of April and the", y=700)],
            [header(), para("crest passed the outlet two days later.", y=60), footer("8")],
        ],
        labels=["vii", "viii"],
    )
    (c,) = chunk(d)
    assert "and the crest passed the outlet" in c.text
    assert [b["page"] for b in c.metadata["boxes"]] == [0, 0, 1]
    assert c.metadata["page_label_start"] == "vii"
    assert c.metadata["page_label_end"] == "viii"
    assert c.metadata["pages"] == [0, 1]


def test_paragraph_cut_by_column_break_is_joined() -> None:
    left = para("In the left column the sentence runs to the bottom and", y=600, x1=300)
    right = para("Continues at the top of the right column.", y=100, x0=320)
    unrelated = para("A new paragraph starts here.", y=200, x0=320)
    (only,) = chunk(doc([[left, right, unrelated]]))
    assert "bottom and Continues at the top of the right column.\n\nA new paragraph" in only.text


def test_hyphenated_word_across_a_page_break_is_rejoined_without_a_space() -> None:
    # The hyphen is kept: it may be a real compound ("well-known"), and no character is lost.
    d = doc([[para("the measure-", y=700)], [para("ments agree.", y=60)]])
    assert "the measure-ments agree." in chunk(d)[0].text


def test_finished_sentences_are_not_joined() -> None:
    d = doc([[para("First paragraph ends.", y=700)], [para("Second starts anew.", y=60)]])
    (c,) = chunk(d)
    assert "ends.\n\nSecond" in c.text


# -- furniture ------------------------------------------------------------------------------


def furniture_doc() -> Document:
    return doc(
        [
            [header(), heading("Intro", 2), para("Body one."), footer("1")],
            [
                header(),
                para("Body two."),
                blk(BlockKind.TEXT, "Page 2 of 9", (280, 760, 340, 774)),  # text-layer page no.
            ],
        ]
    )


def test_headers_footers_and_page_numbers_are_left_out_by_default() -> None:
    d = furniture_doc()
    text = "\n".join(c.text for c in chunk(d))
    assert "Northwind" not in text and "Page 2 of 9" not in text
    assert "Body one." in text and "Body two." in text
    assert [b.text for b in furniture_blocks(d)] == [
        "Northwind Field Report",
        "1",
        "Northwind Field Report",
        "Page 2 of 9",
    ]


def test_furniture_can_be_kept() -> None:
    text = "\n".join(c.text for c in chunk(furniture_doc(), include_furniture=True))
    assert "Northwind Field Report" in text and "Page 2 of 9" in text


def test_a_number_in_the_body_is_not_furniture() -> None:
    d = doc([[para("42", y=300)]])
    assert chunk(d)[0].text == "42"


# -- sizes ----------------------------------------------------------------------------------


def test_small_neighbours_merge_up_to_the_budget() -> None:
    d = doc(
        [[heading("Notes", 2), *(para(f"Note {i} is short.", y=100 + 30 * i) for i in range(8))]]
    )
    (c,) = chunk(d, max_tokens=200)
    assert all(f"Note {i} is short." in c.text for i in range(8))
    several = chunk(d, max_tokens=20, min_tokens=0)
    assert len(several) > 1
    assert all(c.metadata["token_count"] <= 20 for c in several)


def test_long_paragraph_splits_between_sentences_within_budget() -> None:
    d = doc([[para(SENTENCE * 40)]])
    chunks = chunk(d, max_tokens=100, min_tokens=30)
    assert len(chunks) >= 4
    for c in chunks:
        assert c.metadata["token_count"] <= 100
        assert c.text.endswith("night.")
    sizes = [c.metadata["token_count"] for c in chunks]
    assert min(sizes) >= 30  # balanced: no scrap at the end


def test_overlap_repeats_whole_sentences() -> None:
    d = doc([[para(" ".join(f"Sentence number {i} is here." for i in range(60)))]])
    chunks = chunk(d, max_tokens=80, min_tokens=0, overlap_tokens=20)
    assert len(chunks) > 1
    for prev, cur in itertools.pairwise(chunks):
        assert cur.metadata["overlap_tokens"] > 0
        first_sentence = cur.text.split(". ")[0] + "."
        assert first_sentence in prev.text


def test_bad_budgets_are_rejected() -> None:
    with pytest.raises(ValueError):
        LayoutChunker(max_tokens=0)
    with pytest.raises(ValueError):
        LayoutChunker(max_tokens=100, min_tokens=200)
    with pytest.raises(ValueError):
        LayoutChunker(max_tokens=100, overlap_tokens=100)


# -- tokenizers -----------------------------------------------------------------------------


class FakeTiktoken:
    def encode_ordinary(self, text: str) -> list[int]:
        return [0] * len(text.split())


class FakeHF:
    def __init__(self) -> None:
        self.kwargs: dict[str, object] = {}

    def encode(self, text: str, **kwargs: object) -> list[int]:
        self.kwargs = kwargs
        return [0] * (2 * len(text.split()))


def test_token_counters() -> None:
    assert default_token_count("Discharge peaked.") == 4  # "Discha" "rge" "peaked" "."
    assert resolve_token_counter(FakeTiktoken())("a b c") == 3
    hf = FakeHF()
    assert resolve_token_counter(hf)("a b c") == 6
    assert hf.kwargs == {"add_special_tokens": False}
    assert resolve_token_counter(len)("abcd") == 4
    with pytest.raises(TypeError):
        resolve_token_counter(42)


def test_budget_follows_the_given_tokenizer() -> None:
    d = doc([[para(SENTENCE * 20)]])
    by_words = chunk(d, max_tokens=50, min_tokens=0, tokenizer=FakeTiktoken())
    by_double = chunk(d, max_tokens=50, min_tokens=0, tokenizer=FakeHF())
    assert len(by_double) > len(by_words)
    assert all(len(c.text.split()) <= 50 for c in by_words)


# -- metadata and ids -----------------------------------------------------------------------

REQUIRED = {
    "chunk_index",
    "kind",
    "heading_path",
    "headings",
    "contextualized_text",
    "token_count",
    "page_start",
    "page_end",
    "page_label_start",
    "page_label_end",
    "pages",
    "page_labels",
    "page_width",
    "page_height",
    "page_sizes",
    "boxes",
    "block_ids",
    "source",
    "document_sha256",
    "engine",
}


def test_every_chunk_carries_provenance() -> None:
    d = sample_document()
    chunks = chunk(d)
    assert [c.metadata["kind"] for c in chunks] == ["text", "table", "mixed"]
    for c in chunks:
        md = c.metadata
        assert set(md) >= REQUIRED
        assert md["source"] == "field_report.pdf" and md["document_sha256"] == "f" * 64
        assert md["engine"] == "recorded"
        assert (md["page_width"], md["page_height"]) == (612.0, 792.0)
        assert len(md["boxes"]) == len(md["block_ids"])
        for box in md["boxes"]:
            assert set(box) == {"page", "x0", "y0", "x1", "y1"}
            assert 0 <= box["x0"] <= box["x1"] <= 612 and 0 <= box["y0"] <= box["y1"] <= 792


def test_flat_metadata_is_scalar_only() -> None:
    for c in chunk(sample_document()):
        flat = c.flat_metadata()
        assert all(isinstance(v, (str, int, float, bool)) for v in flat.values())
        assert json.loads(str(flat["boxes"])) == c.metadata["boxes"]
        assert "table_part" not in flat and "image_paths" not in flat  # absent, never None
        kept = c.flat_metadata(keep_scalar_lists=True, exclude=["contextualized_text"])
        assert kept["block_ids"] == c.metadata["block_ids"]
        assert isinstance(kept["boxes"], str) and "contextualized_text" not in kept


def test_ids_are_deterministic_and_unique() -> None:
    d = long_table_doc()
    first = chunk(d, max_tokens=150)
    again = chunk(Document.from_json(d.to_json()), max_tokens=150)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    other = long_table_doc()
    other.sha256 = "1" * 64
    assert not {c.id for c in first} & {c.id for c in chunk(other, max_tokens=150)}
    assert [c.id for c in chunk(d, max_tokens=100)] != [c.id for c in first]


def test_empty_document_gives_no_chunks() -> None:
    assert chunk(doc([[]])) == []
    assert chunk(doc([[header(), footer("1")]])) == []


@pytest.mark.parametrize("mode", ["auto", "keys", "rows"])
def test_auto_embeds_a_split_tables_keys_only_where_they_are_short(mode: str) -> None:
    # A reference table whose key column is most of each row (a manual's option table):
    # its keys are as long as its rows, so "auto" embeds the rows.
    rows = "".join(
        f"| `\\option{i}` sets the spacing of the rule drawn below table row {i} | {i} |\n"
        for i in range(40)
    )
    long_keys = blk(BlockKind.TABLE, "| Option and what it does | Default |\n|---|---|\n" + rows)
    parts = chunk(doc([[heading("Options", 2), long_keys]]), max_tokens=80, min_tokens=0,
                  table_embedding=mode)  # fmt: skip
    assert len(parts) > 2
    assert all(("table_keys" in c.metadata) == (mode == "keys") for c in parts)
    # Short keys beside long rows (the segment table above) keep their keys under "auto".
    short = chunk(
        doc(
            [
                [
                    heading("Income", 2),
                    _segment_table(
                        ["Water supply"], [f"Line {i}" for i in range(30)], spanned=False
                    ),
                ]
            ]
        ),
        max_tokens=60,
        min_tokens=0,
        table_embedding=mode,
    )
    assert len(short) > 1
    assert all(("table_keys" in c.metadata) == (mode != "rows") for c in short)
