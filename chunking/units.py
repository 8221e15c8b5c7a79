"""From a document's blocks to ordered units: the pieces of meaning the chunker packs.

A unit is a heading, a paragraph (blocks cut by a page or column break joined back), a list (a
run of items), a code block, a table (captions, page continuations and table footnotes
included), a figure (with its captions, crop path and description) or a run of equations (with
the paragraph that introduces them). Each unit knows its section and heading path.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

from deepocr_loaders.document import Block, BlockKind, Document, Page
from deepocr_loaders.furniture import find_furniture

from .headings import HEADING_KINDS, heading_levels
from .tables import TableLines, block_table, stitch_tables

__all__ = ["Unit", "build_units", "furniture_blocks", "is_furniture"]

# A bare page number or "Page 3 of 9" in the page margin is furniture even when the engine
# called it text (text layers do).
_PAGE_NUMBER_RE = re.compile(
    r"(?i)(?:page\s+)?(?:\d{1,4}|[ivxlcdm]{1,7})(?:\s*(?:/|of)\s*\d{1,4})?|[-–—]\s*\d{1,4}\s*[-–—]"
)
_MARGIN = 0.1
_SENTENCE_END = (
    *(".", "!", "?", ":", ";", '."', ".'", ".)", '?"', '!"', ".”", "?”", "!”"),
    # Scripts written without spaces between sentences (CJK), and the danda.
    *("。", "．", "｡", "！", "？", "；", "：", "。」", "。』", "。”", "。）", "！」", "？」"),
    *("।", "॥"),
)


@dataclass
class Unit:
    """One indivisible-by-default piece of a section, in reading order."""

    kind: str
    """``heading``, ``text``, ``list``, ``code``, ``table``, ``figure`` or ``equation``."""
    text: str
    blocks: list[Block]
    section: int
    path: tuple[str, ...]
    level: int = 0
    """Headings: normalised level (1 = title)."""
    table: TableLines | None = None
    """Tables: the (stitched) table; ``text`` is then empty and parts are made later."""
    before: list[str] = field(default_factory=list)
    """Tables: caption text placed before the table in every part."""
    after: list[str] = field(default_factory=list)
    """Tables: caption text placed after the table in every part."""
    notes: list[Block] = field(default_factory=list)
    """Tables: footnotes, placed after the last part only."""
    row_starts: list[tuple[int, Block]] = field(default_factory=list)
    """Tables: each printed part (a table block) with the index of its first row in the
    stitched table, so a row group cites only the parts its rows come from."""
    intro: Unit | None = None
    """Equations: the paragraph that introduces them."""
    image_paths: list[str] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    """Text, lists and code: where each block's text starts in ``text`` (in block order) and,
    in ``ends``, where it ends; so a piece cut from the unit cites only the blocks it holds
    text of."""
    ends: list[int] = field(default_factory=list)

    def blocks_in(self, start: int, end: int) -> list[Block]:
        """The blocks whose text overlaps ``text[start:end]`` (all of them without spans)."""
        if not self.starts:
            return self.blocks
        lo = bisect_right(self.ends, start)
        hi = bisect_left(self.starts, end)
        if lo >= hi:  # nothing but the gap between two blocks: the nearest one
            lo = min(lo, len(self.blocks) - 1)
            hi = lo + 1
        return self.blocks[lo:hi]


def is_furniture(block: Block, page: Page | None) -> bool:
    """Page headers and footers, and bare page numbers sitting in the top or bottom margin."""
    if block.kind.is_furniture:
        return True
    if block.kind not in (BlockKind.TEXT, BlockKind.OTHER) or block.bbox is None or page is None:
        return False
    if not page.height or not _PAGE_NUMBER_RE.fullmatch(block.text.strip()):
        return False
    top, bottom = block.bbox.y1 / page.height, block.bbox.y0 / page.height
    return top < _MARGIN or bottom > 1 - _MARGIN


def _pages(document: Document) -> dict[int, Page]:
    return {p.index: p for p in document.pages}


def _furniture_test(document: Document) -> Callable[[Block], bool]:
    """Whether a block of ``document`` is furniture: by itself (:func:`is_furniture`), or by
    repetition and the page sequence across the pages
    (:func:`deepocr_loaders.furniture.find_furniture`; :func:`deepocr_loaders.convert` labels
    those already, a document built or loaded otherwise may not have them labelled)."""
    pages = _pages(document)
    found = {(m.page_index, m.order) for m in find_furniture(document.pages)}
    return lambda b: (b.page_index, b.order) in found or is_furniture(b, pages.get(b.page_index))


def furniture_blocks(document: Document) -> list[Block]:
    """The blocks the chunker leaves out of chunk text by default (headers, footers, page
    numbers, running titles), in document order: still available to a caller who wants them."""
    furniture = _furniture_test(document)
    return [b for b in document.blocks if furniture(b)]


def _has_content(block: Block) -> bool:
    return bool(block.text.strip()) or block.kind is BlockKind.FIGURE


def _wants(caption: Block) -> BlockKind | None:
    text = caption.plain_text.strip().lower()
    label = caption.label.lower()
    if text.startswith(("table", "tab.")) or "table" in label:
        return BlockKind.TABLE
    if text.startswith(("fig", "figure", "chart", "image", "plate")) or any(
        k in label for k in ("image", "figure", "picture", "chart")
    ):
        return BlockKind.FIGURE
    return None


def _caption_targets(body: list[Block], tables: dict[int, TableLines]) -> dict[int, int]:
    """Position of each caption -> position of the table or figure it belongs to."""
    targets: dict[int, int] = {}
    for i, block in enumerate(body):
        if block.kind is not BlockKind.CAPTION:
            continue
        cands = [
            j
            for j in (i - 1, i + 1)
            if 0 <= j < len(body)
            and body[j].page_index == block.page_index
            and (j in tables or body[j].kind is BlockKind.FIGURE)
        ]
        want = _wants(block)
        if want is not None:
            fitting = [j for j in cands if body[j].kind is want]
            cands = fitting or cands
            if want is BlockKind.TABLE:
                # Table captions usually sit above the table, figure captions below.
                cands.sort(reverse=True)
        if cands:
            targets[i] = cands[0]
    return targets


def _ends_mid_sentence(text: str) -> bool:
    end = text.rstrip()
    return bool(end) and not end.endswith(_SENTENCE_END)


def _continues(a: Block, b: Block) -> bool:
    """``b`` carries on the paragraph ``a`` was cut in, by a page or column break."""
    if a.kind is not BlockKind.TEXT or b.kind is not BlockKind.TEXT:
        return False
    if not _ends_mid_sentence(a.text):
        return False
    if b.page_index != a.page_index:
        return True
    # The next column: starts higher up and to the right of where ``a`` started.
    if (
        a.bbox is not None
        and b.bbox is not None
        and b.bbox.y0 < a.bbox.y0
        and b.bbox.x0 > a.bbox.x0 + a.bbox.width / 2
    ):
        return True
    return b.text.lstrip()[:1].islower()


def _gap(left: str, right: str) -> str:
    """What joins a paragraph's text ``left`` (right-stripped) to its continuation ``right``
    (left-stripped) across a break."""
    if left.endswith("-") and right[:1].islower():
        return ""  # a word hyphenated across the break
    return " "


def _interleave(texts: list[str], gaps: list[str]) -> list[str]:
    out = [texts[0]]
    for gap, text in zip(gaps, texts[1:], strict=True):
        out += (gap, text)
    return out


def _locate(unit: Unit, texts: list[str], gaps: list[str]) -> None:
    """Record where each of ``unit``'s blocks (whose texts, joined by ``gaps``, make its text)
    lies in its text."""
    pos = 0
    for k, text in enumerate(texts):
        unit.starts.append(pos)
        pos += len(text)
        unit.ends.append(pos)
        if k < len(gaps):
            pos += len(gaps[k])


def _figure_text(block: Block) -> str:
    parts = []
    text = block.text.strip()
    crop = block.metadata.get("image_path")
    if text:
        parts.append(text)
    elif crop:
        parts.append(f"![figure]({crop})")
    else:
        parts.append("[figure]")
    description = block.metadata.get("description")
    if isinstance(description, str) and description.strip():
        parts.append(description.strip())
    return "\n\n".join(parts)


def build_units(document: Document, *, include_furniture: bool = False) -> list[Unit]:
    """The document's units in reading order; furniture left out unless asked for."""
    furniture = _furniture_test(document)
    body = [
        b for b in document.blocks if _has_content(b) and (include_furniture or not furniture(b))
    ]
    tables: dict[int, TableLines] = {}
    for i, b in enumerate(body):
        if b.kind is BlockKind.TABLE:
            grid = block_table(b)
            if grid is not None:
                tables[i] = grid
    targets = _caption_targets(body, tables)
    captioned = set(targets.values())
    levels = heading_levels(body)

    units: list[Unit] = []
    stack: list[tuple[int, str]] = []
    section = 0
    i, n = 0, len(body)
    path: tuple[str, ...] = ()
    while i < n:
        block = body[i]
        kind = block.kind
        if i in targets:
            i += 1  # emitted with its table or figure
            continue
        if kind in HEADING_KINDS:
            level = levels[i]
            title = block.plain_text.strip()
            prev = body[i - 1] if i else None
            if (
                kind is BlockKind.TITLE
                and prev is not None
                and prev.kind is BlockKind.TITLE
                and prev.page_index == block.page_index
                and units
                and units[-1].kind == "heading"
                and stack
            ):
                # A title wrapped over two blocks is one title.
                stack[-1] = (stack[-1][0], f"{stack[-1][1]} {title}")
                units[-1].path = tuple(text for _, text in stack)
            else:
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, title))
                section += 1
            path = tuple(text for _, text in stack)
            units.append(Unit("heading", f"{'#' * min(level, 6)} {title}", [block], section, path))
            units[-1].level = level
            i += 1
        elif i in tables:
            unit, i = _table_unit(body, i, tables, targets, captioned, section, path)
            units.append(unit)
        elif kind is BlockKind.FIGURE:
            blocks = [body[j] for j in sorted([i, *(k for k, t in targets.items() if t == i)])]
            texts = [_figure_text(b) if b is block else b.text.strip() for b in blocks]
            crop = block.metadata.get("image_path")
            units.append(
                Unit(
                    "figure",
                    "\n\n".join(texts),
                    blocks,
                    section,
                    path,
                    image_paths=[crop] if isinstance(crop, str) and crop else [],
                )
            )
            i += 1
        elif kind is BlockKind.EQUATION:
            j = i
            while j + 1 < n and body[j + 1].kind is BlockKind.EQUATION and j + 1 not in targets:
                j += 1
            eqs = body[i : j + 1]
            unit = Unit("equation", "\n\n".join(b.text.strip() for b in eqs), eqs, section, path)
            if units and units[-1].kind == "text" and units[-1].section == section:
                unit.intro = units.pop()
            units.append(unit)
            i = j + 1
        elif kind is BlockKind.LIST_ITEM:
            j = i
            while j + 1 < n and body[j + 1].kind is BlockKind.LIST_ITEM:
                j += 1
            items = body[i : j + 1]
            texts = [b.text.strip() for b in items]
            unit = Unit("list", "\n".join(texts), items, section, path)
            _locate(unit, texts, ["\n"] * (len(texts) - 1))
            units.append(unit)
            i = j + 1
        elif kind is BlockKind.CODE:
            units.append(Unit("code", block.text.strip(), [block], section, path))
            i += 1
        else:
            blocks = [block]
            texts = [block.text.strip()]
            gaps: list[str] = []
            while i + 1 < n and i + 1 not in targets and _continues(body[i], body[i + 1]):
                i += 1
                blocks.append(body[i])
                texts[-1] = texts[-1].rstrip()
                right = body[i].text.lstrip()
                gaps.append(_gap(texts[-1], right))
                texts.append(right)
            unit = Unit("text", "".join(_interleave(texts, gaps)), blocks, section, path)
            if len(blocks) > 1:
                _locate(unit, texts, gaps)
            units.append(unit)
            i += 1
    return units


def _table_unit(
    body: list[Block],
    i: int,
    tables: dict[int, TableLines],
    targets: dict[int, int],
    captioned: set[int],
    section: int,
    path: tuple[str, ...],
) -> tuple[Unit, int]:
    """The table at ``i`` with its captions, continuations on the next pages and footnotes,
    and the position after the last block it took."""
    grid = tables[i]
    members = [i]
    row_starts = [(0, body[i])]
    j = i
    # A continuation: the next body block is a caption-less table on a later page with the same
    # number of columns (so the table was the last body block of its page).
    while (
        j + 1 in tables
        and j + 1 not in captioned
        and body[j + 1].page_index > body[j].page_index
        and tables[j + 1].n_cols == grid.n_cols
    ):
        j += 1
        members.append(j)
        row_starts.append((len(grid.rows), body[j]))
        grid = stitch_tables(grid, tables[j])
    caption_pos = sorted(k for k, t in targets.items() if t in members)
    before = [k for k in caption_pos if k < i]
    after = [k for k in caption_pos if k > i]
    end = max([j, *after])
    notes: list[Block] = []
    while (
        end + 1 < len(body)
        and body[end + 1].kind is BlockKind.FOOTNOTE
        and "table" in body[end + 1].label.lower()
    ):
        end += 1
        notes.append(body[end])
    blocks = [body[k] for k in before] + [body[k] for k in members] + [body[k] for k in after]
    unit = Unit(
        "table",
        "",
        blocks + notes,
        section,
        path,
        table=grid,
        before=[body[k].text.strip() for k in before],
        after=[body[k].text.strip() for k in after],
        notes=notes,
        row_starts=row_starts,
    )
    return unit, end + 1
