"""The heading check of the text layer: code lines, body-font regions and numbering breaks are
not headings; larger, styled, consistently numbered or outlined ones are."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from deepocr_loaders.document import BlockKind
from deepocr_loaders.engines.heading_check import (
    FontStats,
    check_heading,
    font_stats,
    numbering_fits,
    section_number,
)

BODY = 10.0
PLAIN = FontStats(size=10.0, chars=20)
BOLD = FontStats(size=10.0, chars=20, bold=1.0)


def _span(text: str, font: str = "CMR10", size: float = 10.0, flags: int = 4) -> dict:
    return {"text": text, "font": font, "size": size, "flags": flags}


def test_font_stats_shares_by_flags_and_names() -> None:
    stats = font_stats(
        [
            _span("3. ", "CMR10"),
            _span("Separator", "CMB10"),  # bold by name: TeX fonts often lack the flag
            _span("  ", "CMTT10"),  # blank spans count for nothing
        ]
    )
    assert stats.chars == 11 and stats.bold == 9 / 11 and stats.mono == 0
    code = font_stats([_span("\\begin{acks}", "Inconsolatazi4-Regular", 9.0)])
    assert code.mono == 1.0 and code.size == 9.0
    assert font_stats([_span("x", "Foo", flags=8 | 2)]).italic == 1.0
    assert font_stats([]) == FontStats()


def test_code_lines_are_code() -> None:
    mono = FontStats(size=9.0, chars=20, mono=1.0)
    assert check_heading("x = 1", mono, body_size=BODY, last_number=None).kind is BlockKind.CODE
    for text in ("\\documentclass{mnras}", "% kilometres per second", "80 \\def\\ASYprefix{}"):
        verdict = check_heading(text, BOLD, body_size=BODY, last_number=None, title=True)
        assert verdict.kind is BlockKind.CODE and not verdict.kept, text
    # A heading that merely mentions a command is kept.
    kept = check_heading(
        "I. THE LINE BREAK WAS FORCED via \\\\", BOLD, body_size=BODY, last_number=None
    )
    assert kept.kept


def test_fonts_decide_unnumbered_headings() -> None:
    big = FontStats(size=14.3, chars=20)
    assert check_heading("Introduction", big, body_size=BODY, last_number=None).reason == "larger"
    assert check_heading("Method", BOLD, body_size=BODY, last_number=None).reason == "styled"
    assert check_heading("ABSTRACT", PLAIN, body_size=BODY, last_number=None).kept
    sentence = check_heading("Please refer below.", PLAIN, body_size=BODY, last_number=None)
    assert sentence.kind is BlockKind.TEXT and sentence.reason == "body_font"
    small = FontStats(size=8.0, chars=20, bold=1.0)  # a bold running title, smaller than body
    assert not check_heading("QUICK LINKS", small, body_size=BODY, last_number=None).kept
    # REVTeX sets section heads in small bold type (9 pt on 10): still headings.
    small_bold = FontStats(size=9.0, chars=20, bold=1.0)
    assert check_heading(
        "I. FIRST-LEVEL HEADING", small_bold, body_size=BODY, last_number=None
    ).kept
    small_plain = FontStats(size=9.0, chars=20)
    assert not check_heading("Quick links", small_plain, body_size=BODY, last_number=None).kept
    # Nothing known about the body: the layout model is taken at its word.
    assert check_heading("Please refer below.", PLAIN, body_size=0, last_number=None).kept


def test_numbering_breaks_demote_body_size_headings_only() -> None:
    broken = check_heading("3. Separator", BOLD, body_size=BODY, last_number=(1, 2))
    assert broken.kind is BlockKind.TEXT and broken.reason == "numbering"
    big = FontStats(size=14.0, chars=20)
    assert check_heading("3 Results", big, body_size=BODY, last_number=(1, 2)).kept
    small_caps = check_heading("1.3. Tables", PLAIN, body_size=BODY, last_number=(1, 2))
    assert small_caps.kept and small_caps.reason == "numbered" and small_caps.number == (1, 3)
    outlined = check_heading(
        "3. Separator", BOLD, body_size=BODY, last_number=(1, 2), in_outline=True
    )
    assert outlined.kept and outlined.reason == "outline"


def test_numbering_cases() -> None:
    assert numbering_fits((2,), (1, 4))
    assert numbering_fits((2, 1), (1, 4))
    assert numbering_fits((1, 5), (1, 4))
    assert numbering_fits((1, 4, 1), (1, 4))
    assert numbering_fits((1,), (5, 2))  # a restart (appendix, a new part)
    assert not numbering_fits((3,), (1, 2))
    assert not numbering_fits((11,), (2, 1))
    assert not numbering_fits((1, 6), (1, 4))
    assert section_number("3.1.2 Decimal alignment") == (3, 1, 2)
    assert section_number("3. Separator") == (3,)
    assert section_number("Separator") is None


numbers = st.lists(st.integers(1, 30), min_size=1, max_size=4).map(tuple)


@given(numbers, st.data())
def test_every_successor_fits(last: tuple[int, ...], data: st.DataObject) -> None:
    depth = data.draw(st.integers(0, len(last) - 1))
    extra = data.draw(st.integers(0, 2))
    successor = (*last[:depth], last[depth] + 1, *([1] * extra))
    assert numbering_fits(successor, last)
    assert numbering_fits((*last, *([1] * (extra + 1))), last)
    assert numbering_fits(last, last)


@given(numbers, numbers)
def test_a_jump_ahead_does_not_fit(last: tuple[int, ...], new: tuple[int, ...]) -> None:
    # Two or more ahead of the last number at the first depth where they differ.
    diff = next((d for d, (a, b) in enumerate(zip(new, last, strict=False)) if a != b), None)
    if diff is not None and new[diff] >= last[diff] + 2:
        assert not numbering_fits(new, last)


def test_a_numbered_heading_the_outline_leaves_out_is_a_list_item() -> None:
    # "3. Separator" after section 2.1 continues the chapters (3 after 2), so numbering alone
    # keeps it; the outline, which numbers chapters and sections, does not list it.
    depths = {1, 2}
    item = check_heading(
        "3. Separator", BOLD, body_size=BODY, last_number=(2, 1), outline_depths=depths
    )
    assert item.kind is BlockKind.TEXT and item.reason == "not_in_outline"
    assert check_heading("3. Separator", BOLD, body_size=BODY, last_number=(2, 1)).kept
    listed = check_heading(
        "3 Importing",
        BOLD,
        body_size=BODY,
        last_number=(2, 1),
        in_outline=True,
        outline_depths=depths,
    )
    assert listed.reason == "outline"
    # Set larger than the body text, or of a depth the outline does not number: kept.
    big = FontStats(size=14.0, chars=20)
    assert check_heading(
        "3 Results", big, body_size=BODY, last_number=(2, 1), outline_depths=depths
    ).kept
    assert check_heading(
        "2.1.1 Encodings", BOLD, body_size=BODY, last_number=(2, 1), outline_depths=depths
    ).kept
