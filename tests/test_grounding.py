"""Grounded-output parser: labels, box forms, stripped tokens, Free OCR, truncation, no loss."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepocr_loaders import BlockKind, PageStatus, parse_grounded_output, parse_grounded_page
from deepocr_loaders.grounding import EOS_TOKENS, block_kind_for_label, build_page
from deepocr_loaders.samples import sample_grounded_output

W, H = 612.0, 792.0


def anchor(label: str, *boxes: tuple[int, int, int, int]) -> str:
    det = ", ".join(f"[{a}, {b}, {c}, {d}]" for a, b, c, d in boxes)
    return f"<|ref|>{label}<|/ref|><|det|>[{det}]<|/det|>\n"


@pytest.mark.parametrize(
    "label,kind",
    [
        ("title", BlockKind.TITLE),
        ("sub_title", BlockKind.HEADING),
        ("text", BlockKind.TEXT),
        ("table", BlockKind.TABLE),
        ("table_caption", BlockKind.CAPTION),
        ("image", BlockKind.FIGURE),
        ("image_caption", BlockKind.CAPTION),
        ("equation", BlockKind.EQUATION),
        ("figure", BlockKind.FIGURE),
        ("figure_caption", BlockKind.CAPTION),
        ("header", BlockKind.PAGE_HEADER),
        ("footer", BlockKind.PAGE_FOOTER),
        ("footnote", BlockKind.FOOTNOTE),
        ("code", BlockKind.CODE),
        ("list_item", BlockKind.LIST_ITEM),
        ("some_new_label", BlockKind.OTHER),
    ],
)
def test_every_label_maps_and_keeps_raw_label(label: str, kind: BlockKind) -> None:
    raw = anchor(label, (100, 200, 300, 400)) + "Some content"
    (block,) = parse_grounded_output(raw, W, H)
    assert block.kind is kind
    assert block.label == label
    assert block.norm_boxes == [(100, 200, 300, 400)]
    if kind is not BlockKind.FIGURE:
        assert "Some content" in block.text


def test_page_number_label_is_header_or_footer_by_position() -> None:
    assert block_kind_for_label("page_number", (480, 950, 520, 970)) is BlockKind.PAGE_FOOTER
    assert block_kind_for_label("page_number", (480, 10, 520, 30)) is BlockKind.PAGE_HEADER


def test_sample_page_parses_in_reading_order() -> None:
    blocks = parse_grounded_output(sample_grounded_output(), W, H, page_index=2)
    kinds = [b.kind for b in blocks]
    assert kinds == [
        BlockKind.PAGE_HEADER,
        BlockKind.TITLE,
        BlockKind.TEXT,
        BlockKind.HEADING,
        BlockKind.CAPTION,
        BlockKind.TABLE,
        BlockKind.HEADING,
        BlockKind.TEXT,
        BlockKind.EQUATION,
        BlockKind.FIGURE,
        BlockKind.CAPTION,
        BlockKind.PAGE_FOOTER,
    ]
    assert [b.order for b in blocks] == list(range(len(blocks)))
    assert all(b.page_index == 2 for b in blocks)
    title = blocks[1]
    assert title.text == "# Spring Survey of the Alder Creek Watershed"
    assert title.level == 1
    assert blocks[3].level == 2 and blocks[3].plain_text == "1. Discharge by station"
    # Captions lose their <center> wrapper.
    assert blocks[4].text == "Table 1: Mean discharge (m³/s) by station and month"
    assert blocks[8].text == "$$\nL = a \\, Q^{b}, \\quad b \\approx 1.6\n$$"
    figure = blocks[9]
    assert figure.text == "" and figure.bbox is not None


def test_table_with_spans_keeps_html_and_repeats_spanned_text() -> None:
    html = (
        '<table><tr><td rowspan="2">Station</td><td colspan="2">Month</td></tr>'
        "<tr><td>March</td><td>April</td></tr>"
        "<tr><td>AC-01</td><td>0.42</td><td>1.87</td></tr></table>"
    )
    (block,) = parse_grounded_output(anchor("table", (10, 10, 900, 500)) + html, W, H)
    assert block.kind is BlockKind.TABLE
    assert block.html == html
    assert block.text.splitlines() == [
        "| Station | Month | Month |",
        "| --- | --- | --- |",
        "| Station | March | April |",
        "| AC-01 | 0.42 | 1.87 |",
    ]


def test_multi_box_ref_keeps_every_box_and_their_union() -> None:
    raw = anchor("text", (0, 0, 499, 100), (500, 200, 999, 300)) + "Spans two columns"
    (block,) = parse_grounded_output(raw, W, H)
    assert len(block.boxes) == 2
    assert block.norm_boxes == [(0, 0, 499, 100), (500, 200, 999, 300)]
    assert block.bbox is not None
    assert block.bbox.as_tuple() == pytest.approx((0, 0, W, 300 / 999 * H))


@pytest.mark.parametrize("width,height", [(612, 792), (842, 595), (200, 300)])
def test_full_grid_box_maps_to_whole_page(width: float, height: float) -> None:
    (block,) = parse_grounded_output(anchor("image", (0, 0, 999, 999)), width, height)
    assert block.bbox is not None
    assert block.bbox.as_tuple() == pytest.approx((0, 0, width, height))


def test_boxes_are_clamped_and_ordered() -> None:
    (block,) = parse_grounded_output(
        "<|ref|>text<|/ref|><|det|>[[900, 1200, 100, -5]]<|/det|>\nx", W, H
    )
    assert block.norm_boxes == [(100, 0, 900, 999)]


def test_stripped_special_tokens_form() -> None:
    raw = (
        "title[[120, 307, 878, 351]]\n# Oracle Notes  \n\n"
        "text[[483, 373, 515, 402]]\nI  \n\n"
        "sub_title[[732, 147, 887, 170]]\n## Contents\n\n"
        "image[[166, 99, 831, 370]]\n"
        "image_caption[[508, 858, 822, 881]]\n<center>Figure 2: A chart</center>\n"
    )
    result = parse_grounded_page(raw, W, H)
    assert result.grounded
    assert [(b.kind, b.text) for b in result.blocks] == [
        (BlockKind.TITLE, "# Oracle Notes"),
        (BlockKind.TEXT, "I"),
        (BlockKind.HEADING, "## Contents"),
        (BlockKind.FIGURE, ""),
        (BlockKind.CAPTION, "Figure 2: A chart"),
    ]
    assert result.blocks[3].norm_boxes == [(166, 99, 831, 370)]


def test_bracket_text_inside_a_line_is_not_a_tag() -> None:
    raw = anchor("text", (1, 2, 3, 4)) + "see item[[1, 2, 3, 4]] in the list"
    (block,) = parse_grounded_output(raw, W, H)
    assert block.text == "see item[[1, 2, 3, 4]] in the list"


def test_free_ocr_output_is_split_by_markdown_structure() -> None:
    raw = (
        "# Annual Report\n\nRevenue grew.\nIt grew a lot.\n\n## Results\n\n"
        "- first\n- second\n\n\\[E = mc^2\\]\n\n"
        "<table><tr><td>a</td><td>b</td></tr></table>\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n"
        "```python\nprint(1)\n\nprint(2)\n```\n"
    )
    result = parse_grounded_page(raw, W, H)
    assert not result.grounded
    assert [(b.kind, b.level) for b in result.blocks] == [
        (BlockKind.HEADING, 1),
        (BlockKind.TEXT, None),
        (BlockKind.HEADING, 2),
        (BlockKind.LIST_ITEM, None),
        (BlockKind.EQUATION, None),
        (BlockKind.TABLE, None),
        (BlockKind.TABLE, None),
        (BlockKind.CODE, None),
    ]
    assert result.blocks[1].text == "Revenue grew.\nIt grew a lot."
    assert result.blocks[7].text == "```python\nprint(1)\n\nprint(2)\n```"
    assert all(b.bbox is None for b in result.blocks)


def test_eos_token_is_removed_and_reported() -> None:
    for eos in EOS_TOKENS:
        result = parse_grounded_page(anchor("text", (1, 2, 3, 4)) + "done." + eos, W, H)
        assert result.eos and not result.cut_off
        assert [b.text for b in result.blocks] == ["done."]


@pytest.mark.parametrize(
    "tail",
    [
        "<|ref|>tex",
        "<|ref|>text<|/re",
        "<|ref|>text<|/ref|><|det|>[[12, 3",
        "<|ref|>text<|/ref|><|det|>[[12, 30, 40, 50]]",
        "<|",
        "<｜end▁of",
    ],
)
def test_output_cut_mid_tag_is_flagged_and_text_kept(tail: str) -> None:
    raw = anchor("text", (10, 10, 500, 50)) + "The last full paragraph.\n\n" + tail
    result = parse_grounded_page(raw, W, H)
    assert result.cut_off
    assert result.blocks[0].text == "The last full paragraph."
    page = build_page(raw, index=0, width=W, height=H)
    assert page.status is PageStatus.TRUNCATED
    assert "The last full paragraph." in page.markdown


def test_output_cut_mid_content_is_truncated_when_eos_expected() -> None:
    raw = anchor("text", (10, 10, 500, 50)) + "A sentence that never ends because the"
    assert build_page(raw, index=0, width=W, height=H).status is PageStatus.OK
    page = build_page(raw, index=0, width=W, height=H, expect_eos=True)
    assert page.status is PageStatus.TRUNCATED
    assert page.error == "no end-of-sequence token"
    assert page.markdown == "A sentence that never ends because the"
    done = build_page(raw + EOS_TOKENS[0], index=0, width=W, height=H, expect_eos=True)
    assert done.status is PageStatus.OK


def test_stray_markers_and_prompt_echo_are_removed() -> None:
    raw = "<image>\n<|grounding|>" + anchor("text", (1, 2, 3, 4)) + "alpha<|/ref|>beta"
    blocks = parse_grounded_output(raw, W, H)
    assert [b.text for b in blocks] == ["alpha", "beta"]
    assert blocks[0].norm_boxes == [(1, 2, 3, 4)] and blocks[1].norm_boxes == []


def test_text_before_the_first_tag_is_kept() -> None:
    blocks = parse_grounded_output("Preamble line\n" + anchor("text", (1, 2, 3, 4)) + "x", W, H)
    assert [b.text for b in blocks] == ["Preamble line", "x"]


def test_ref_without_det_and_det_without_ref() -> None:
    blocks = parse_grounded_output(
        "<|ref|>the red car<|/ref|>\n<|det|>[[5, 6, 7, 8]]<|/det|>\nhello", W, H
    )
    assert blocks[0].label == "the red car" and blocks[0].norm_boxes == []
    assert blocks[1].norm_boxes == [(5, 6, 7, 8)] and blocks[1].text == "hello"


def test_text_block_of_bullets_is_a_list() -> None:
    (block,) = parse_grounded_output(anchor("text", (1, 2, 3, 4)) + "- one\n- two", W, H)
    assert block.kind is BlockKind.LIST_ITEM


def test_heading_levels() -> None:
    blocks = parse_grounded_output(
        anchor("sub_title", (1, 2, 3, 4))
        + "### 3.1 Deep\n"
        + anchor("sub_title", (1, 2, 3, 4))
        + "No hashes\n"
        + anchor("title", (1, 2, 3, 4))
        + "## Title emitted with two hashes\n",
        W,
        H,
    )
    assert [(b.level, b.text) for b in blocks] == [
        (3, "### 3.1 Deep"),
        (2, "## No hashes"),
        (1, "# Title emitted with two hashes"),
    ]


def test_never_raises_on_junk() -> None:
    for junk in ["", "\x00", "<|ref|>", "<|det|>", "[[", "]]<|/det|>", "<table><tr><td", None]:
        parse_grounded_page(junk, W, H)  # type: ignore[arg-type]


# --- properties ------------------------------------------------------------------------------

_TAG_OR_SPACE = re.compile(
    r"<\|ref\|>[^\n<]*(?:<\|/ref\|>)?|<\|det\|>[\[\]\d\s,.\-]*(?:<\|/det\|>)?|"
    r"[A-Za-z_][\w\-]*\[\[[\[\]\d\s,.\-]*\]\]|<\|/?(?:ref|det|grounding)\|>|<image>|\s+|"
    + "|".join(re.escape(t) for t in EOS_TOKENS)
    + r"|<\|?[/a-z▁_]*\|?\Z|<｜[^｜\n]*\Z"
)


def _check_partition(raw: str) -> None:
    result = parse_grounded_page(raw, W, H)
    spans = [b.source_span for b in result.blocks]
    assert all(s is not None for s in spans)
    ordered = sorted(spans)  # type: ignore[type-var]
    # Block spans are disjoint and in reading order.
    assert ordered == spans
    for (_, e1), (s2, _) in itertools.pairwise(ordered):  # type: ignore[misc]
        assert e1 <= s2
    # Spans and tag spans never overlap: no character is counted twice.
    for s, e in spans:  # type: ignore[misc]
        for ts, te in result.tag_spans:
            assert e <= ts or te <= s or s == e
    # Whatever is in no block is grounding syntax or whitespace, never text.
    covered = [False] * len(raw)
    for s, e in spans:  # type: ignore[misc]
        for i in range(s, e):
            covered[i] = True
    runs = [m.span() for m in re.finditer("0+", "".join("1" if c else "0" for c in covered))]
    for s, e in runs:
        piece = raw[s:e]
        assert _TAG_OR_SPACE.sub("", piece) == "", (raw, piece)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_strings_never_raise_and_lose_nothing(raw: str) -> None:
    _check_partition(raw)


_words = st.text(
    alphabet=st.characters(blacklist_characters="<>|[]\\$#`~*-+•|", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=30,
).filter(lambda s: s.strip() != "")
_labels = st.sampled_from(
    ["title", "sub_title", "text", "table_caption", "image_caption", "footer", "weird"]
)
_coords = st.tuples(*[st.integers(0, 999)] * 4)


@st.composite
def _grounded(draw: st.DrawFn) -> tuple[str, list[str]]:
    parts: list[str] = []
    texts: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        form = draw(st.sampled_from(["full", "bare", "plain", "stray", "eos"]))
        label = draw(_labels)
        box = draw(_coords)
        if form == "full":
            parts.append(anchor(label, box))
        elif form == "bare":
            parts.append(f"\n{label}[[{box[0]}, {box[1]}, {box[2]}, {box[3]}]]\n")
        elif form == "stray":
            parts.append("<|/ref|>")
        elif form == "eos":
            parts.append(EOS_TOKENS[0])
        text = draw(_words)
        texts.append(text)
        parts.append(text + draw(st.sampled_from(["\n\n", "\n", "  \n", ""])))
    if draw(st.booleans()):
        parts.append(draw(st.sampled_from(["<|ref|>te", "<|ref|>text<|/ref|><|det|>[[1, 2", "<|"])))
    return "".join(parts), texts


@settings(max_examples=300, deadline=None)
@given(_grounded())
def test_grounded_mixtures_keep_every_text_in_order(case: tuple[str, list[str]]) -> None:
    raw, texts = case
    _check_partition(raw)
    blocks = parse_grounded_output(raw, W, H)
    joined = "\n".join(raw[b.source_span[0] : b.source_span[1]] for b in blocks if b.source_span)
    rendered = " ".join(b.text for b in blocks)
    pos = 0
    for text in texts:
        for word in text.split():
            found = joined.find(word, pos)
            assert found >= 0, (raw, word)
            pos = found + len(word)
            assert word in rendered
