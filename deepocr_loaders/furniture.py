"""Page furniture found across pages: running headers and footers, and page numbers.

A layout model labels a page header or footer page by page, and misses some: a running title
called ``text`` on one page, a page number called ``section-header`` on another (it then opens a
heading path: ``6 > 3.7 Alignment``). Seen across the document, furniture gives itself away:

* **repetition**: the same short text (digits ignored, so ``Page 3`` and ``Page 4`` match) in
  the top or bottom margin, at the same height, on at least ``min_pages`` pages;
* **page numbers**: a bare number (``7``, ``vii``, ``Page 7 of 9``, ``- 7 -``) in the margin
  whose value follows the page sequence: it equals the page's label, or its distance to the
  page index is the one another page's number has.

A block found so is marked with the labels the layout models already use (``page_header`` in
the top margin, ``page_footer`` in the bottom one), keeps its box, its raw label and its text,
and says why in ``block.metadata["furniture"]``: it stays in the document, out of heading paths
and chunk text. Headings repeated at the same place on every page and never labelled anything
else (slide titles) are not furniture: a layout model that calls every occurrence a heading is
taken at its word.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .document import BBox, Block, BlockKind, Document, Page

__all__ = ["FurnitureMark", "find_furniture", "mark_furniture", "page_number_value"]

#: Share of the page height at the top and at the bottom that counts as margin (the chunker's
#: margin for bare page numbers too).
MARGIN = 0.1
#: Occurrences of a repeated text may differ this much in height (share of the page height).
_Y_TOLERANCE = 0.03
#: Longer texts are body, not furniture, even when repeated.
_MAX_CHARS = 200

# Blocks that may be furniture the layout model missed; tables, figures, captions, equations,
# code and footnotes are never running furniture.
_CANDIDATES = frozenset(
    {
        BlockKind.TEXT,
        BlockKind.OTHER,
        BlockKind.HEADING,
        BlockKind.TITLE,
        BlockKind.LIST_ITEM,
        BlockKind.PAGE_HEADER,
        BlockKind.PAGE_FOOTER,
    }
)
_HEADINGS = frozenset({BlockKind.HEADING, BlockKind.TITLE})

_MARKUP_RE = re.compile(r"[#*_`>|]+")
_DIGITS_RE = re.compile(r"\d+")
_WS_RE = re.compile(r"\s+")
_ROMAN_RE = re.compile(r"(?i)m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})")
_NUMBER_RE = re.compile(
    r"(?i)(?:page|p\.|seite|pagina|página)?\s*[-–—]?\s*(\d{1,4}|[ivxlcdm]{1,9})\s*[-–—]?"
    r"(?:\s*(?:/|of|von|de)\s*\d{1,4})?"
)
_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100, "d": 500, "m": 1000}


@dataclass(frozen=True)
class FurnitureMark:
    """One block found to be page furniture, and why."""

    page_index: int
    order: int
    """The block's reading order on its page (with ``page_index``: its ``Block.id``)."""
    kind: BlockKind
    """``PAGE_HEADER`` (top margin) or ``PAGE_FOOTER`` (bottom margin)."""
    reason: str
    """``page_number`` (a number following the page sequence) or ``repeated``."""
    text: str
    bbox: BBox

    @property
    def block_id(self) -> str:
        return f"p{self.page_index}-b{self.order}"


def _plain(text: str) -> str:
    return _WS_RE.sub(" ", _MARKUP_RE.sub(" ", text)).strip()


def _roman(text: str) -> int | None:
    low = text.lower()
    if not low or not _ROMAN_RE.fullmatch(low):
        return None
    total = 0
    for ch, nxt in zip(low, [*low[1:], ""], strict=True):
        value = _ROMAN_VALUES[ch]
        total += -value if nxt and _ROMAN_VALUES[nxt] > value else value
    return total


def page_number_value(text: str) -> int | None:
    """The number a page-number text shows (``7``, ``vii``, ``Page 7 of 9``, ``- 7 -``), or
    None when the text is anything else.

    Args:
        text: a block's text; Markdown emphasis and heading marks are ignored.
    """
    m = _NUMBER_RE.fullmatch(_plain(text))
    if m is None:
        return None
    token = m.group(1)
    if token.isdigit():
        return int(token)
    # "I", "C" or "D" alone is a letter (an index heading) more often than a page number.
    return _roman(token) if token.islower() or len(token) > 1 else None


def _band(block: Block, page: Page) -> BlockKind | None:
    """``PAGE_HEADER`` for a block in the top margin, ``PAGE_FOOTER`` in the bottom one."""
    box = block.bbox
    if box is None or page.height <= 0:
        return None
    if box.y1 <= MARGIN * page.height:
        return BlockKind.PAGE_HEADER
    if box.y0 >= (1 - MARGIN) * page.height:
        return BlockKind.PAGE_FOOTER
    return None


@dataclass
class _Candidate:
    block: Block
    page: Page
    band: BlockKind
    text: str
    y: float
    """Centre height as a share of the page height."""


def _repeated(cands: list[_Candidate], min_pages: int) -> list[_Candidate]:
    """The candidates whose text recurs at the same height on ``min_pages`` pages or more."""
    groups: dict[tuple[BlockKind, str], list[_Candidate]] = defaultdict(list)
    for c in cands:
        if page_number_value(c.text) is not None:
            continue  # numbers are judged by the page sequence, not by repetition
        if _continued_sentence(c.text):
            continue  # the end of a paragraph from the page before, not a running title
        groups[(c.band, _DIGITS_RE.sub("#", c.text.casefold()))].append(c)
    found: list[_Candidate] = []
    for members in groups.values():
        if len({c.page.index for c in members}) < min_pages:
            continue
        ys = sorted(c.y for c in members)
        mid = ys[len(ys) // 2]
        near = [c for c in members if abs(c.y - mid) <= _Y_TOLERANCE]
        if len({c.page.index for c in near}) < min_pages:
            continue
        if all(c.block.kind in _HEADINGS for c in near):
            continue  # a title on every slide is the slide's heading
        found.extend(near)
    return found


def _continued_sentence(text: str) -> bool:
    """Whether ``text`` reads as the end of a sentence begun on the page before: it opens in
    lower case and ends a sentence. Templated prose (``... kept in key safe K-784 beside the
    gate.``) continued onto the top of several pages is body text, though it repeats with its
    digits ignored; running titles do not read so."""
    words = text.split()
    return bool(words) and words[0][:1].islower() and text.rstrip()[-1:] in ".!?"


def _numbered(cands: list[_Candidate]) -> list[_Candidate]:
    """Bare numbers that follow the page sequence: equal to the page label, or as far from the
    page index as another page's number is."""
    numbers: list[tuple[_Candidate, int]] = []
    for c in cands:
        value = page_number_value(c.text)
        if value is not None:
            numbers.append((c, value))
    offsets: dict[int, set[int]] = defaultdict(set)
    for c, value in numbers:
        offsets[value - c.page.index].add(c.page.index)
    return [
        c
        for c, value in numbers
        if len(offsets[value - c.page.index]) >= 2 or c.page.label.strip() == str(value)
    ]


def find_furniture(pages: Sequence[Page], *, min_pages: int = 2) -> list[FurnitureMark]:
    """Blocks of ``pages`` that are page furniture the engine did not label so, in page and
    reading order. Blocks already labelled page header or footer are evidence, not results.

    Args:
        pages: the document's pages, in order.
        min_pages: on how many pages a text must recur to count as repeated.
    """
    cands: list[_Candidate] = []
    for page in pages:
        for block in page.blocks:
            if block.kind not in _CANDIDATES:
                continue
            band = _band(block, page)
            text = _plain(block.text)
            if band is None or not text or len(text) > _MAX_CHARS:
                continue
            assert block.bbox is not None  # _band checked it
            y = (block.bbox.y0 + block.bbox.y1) / 2 / page.height
            cands.append(_Candidate(block, page, band, text, y))
    reasons: dict[int, tuple[_Candidate, str]] = {}
    for c in _numbered(cands):
        reasons[id(c.block)] = (c, "page_number")
    for c in _repeated(cands, min_pages):
        reasons.setdefault(id(c.block), (c, "repeated"))
    marks = [
        FurnitureMark(c.page.index, c.block.order, c.band, reason, c.text, c.block.bbox)
        for c, reason in reasons.values()
        if not c.block.kind.is_furniture and c.block.bbox is not None
    ]
    return sorted(marks, key=lambda m: (m.page_index, m.order))


def mark_furniture(document: Document, *, min_pages: int = 2) -> list[FurnitureMark]:
    """Label the furniture :func:`find_furniture` finds in ``document`` (kind ``page_header``
    or ``page_footer``, heading marks and level dropped, ``metadata["furniture"]`` the reason);
    returns the marks. The blocks keep their box, raw label and place in reading order.

    Args:
        document: the document to mark, in place.
        min_pages: on how many pages a text must recur to count as repeated.
    """
    marks = find_furniture(document.pages, min_pages=min_pages)
    blocks = {(b.page_index, b.order): b for p in document.pages for b in p.blocks}
    for mark in marks:
        block = blocks[(mark.page_index, mark.order)]
        block.text = block.plain_text  # a heading's "#" marks go; other text is kept as is
        block.kind = mark.kind
        block.level = None
        block.metadata["furniture"] = mark.reason
    return marks
