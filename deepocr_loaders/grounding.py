"""Parser for the grounded Markdown of DeepSeek-OCR (v1, v2) and DeepOCR.

For ``<image>\\n<|grounding|>Convert the document to markdown.`` the models emit, per region::

    <|ref|>LABEL<|/ref|><|det|>[[x1, y1, x2, y2]]<|/det|>
    CONTENT

with boxes on a 0-999 grid relative to the page image. Decoding with special tokens stripped
gives ``LABEL[[x1, y1, x2, y2]]`` on its own line instead; Free OCR gives plain Markdown.

Guarantees: the parser never raises, and every character that is not part of a grounding tag
(the ref/det markers, a label, its coordinates, end-of-sequence tokens) lies in exactly one
block's ``source_span``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .document import NORM_MAX, BBox, Block, BlockKind, Page, PageStatus, blocks_to_markdown
from .markdown_blocks import split_markdown
from .tables import html_tables_to_markdown

__all__ = [
    "EOS_TOKENS",
    "GroundedParse",
    "block_kind_for_label",
    "build_page",
    "parse_grounded_output",
    "parse_grounded_page",
]

#: End-of-sequence markers of the model family (DeepSeek's full-width form, Qwen2's for DeepOCR).
EOS_TOKENS = (
    "<｜end▁of▁sentence｜>",
    "<|end▁of▁sentence|>",
    "<|endoftext|>",
    "<|im_end|>",
)

_LABEL_KINDS: dict[str, BlockKind] = {
    "title": BlockKind.TITLE,
    "doc_title": BlockKind.TITLE,
    "sub_title": BlockKind.HEADING,
    "subtitle": BlockKind.HEADING,
    "section_header": BlockKind.HEADING,
    "section-header": BlockKind.HEADING,
    "heading": BlockKind.HEADING,
    "text": BlockKind.TEXT,
    "paragraph": BlockKind.TEXT,
    "plain_text": BlockKind.TEXT,
    "abstract": BlockKind.TEXT,
    "reference": BlockKind.TEXT,
    "list": BlockKind.LIST_ITEM,
    "list_item": BlockKind.LIST_ITEM,
    "list-item": BlockKind.LIST_ITEM,
    "table": BlockKind.TABLE,
    "image": BlockKind.FIGURE,
    "figure": BlockKind.FIGURE,
    "picture": BlockKind.FIGURE,
    "chart": BlockKind.FIGURE,
    "caption": BlockKind.CAPTION,
    "image_caption": BlockKind.CAPTION,
    "figure_caption": BlockKind.CAPTION,
    "table_caption": BlockKind.CAPTION,
    "footnote": BlockKind.FOOTNOTE,
    "table_footnote": BlockKind.FOOTNOTE,
    "image_footnote": BlockKind.FOOTNOTE,
    "equation": BlockKind.EQUATION,
    "formula": BlockKind.EQUATION,
    "isolate_formula": BlockKind.EQUATION,
    "interline_equation": BlockKind.EQUATION,
    "code": BlockKind.CODE,
    "algorithm": BlockKind.CODE,
    "header": BlockKind.PAGE_HEADER,
    "page_header": BlockKind.PAGE_HEADER,
    "page-header": BlockKind.PAGE_HEADER,
    "footer": BlockKind.PAGE_FOOTER,
    "page_footer": BlockKind.PAGE_FOOTER,
    "page-footer": BlockKind.PAGE_FOOTER,
}

_NUM = r"-?\d+(?:\.\d+)?"
_BOX = rf"\[\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*\]"
_BOXES = rf"\[\s*{_BOX}(?:\s*,\s*{_BOX})*\s*\]"
_BOX_RE = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*,\s*({_NUM})\s*\]")
_DET_BODY = r"[\[\]\d\s,.\-]*"

# One alternation so a single left-to-right scan finds every tag; group names tell them apart.
_TAG_RE = re.compile(
    "|".join(
        [
            # Full anchor; the det part (or its closing marker) may be missing in cut-off output.
            rf"(?P<ref><\|ref\|>(?P<label>[^\n<]{{0,200}}?)<\|/ref\|>[ \t]*"
            rf"(?:<\|det\|>(?P<det>{_DET_BODY})(?:<\|/det\|>)?)?)",
            rf"(?P<detonly><\|det\|>(?P<det2>{_DET_BODY})(?:<\|/det\|>)?)",
            # Special tokens stripped by the decoder: ``label[[x1, y1, x2, y2]]`` alone on a line.
            rf"(?P<bare>(?m:^)[ \t]*(?P<blabel>[A-Za-z_][\w\-]{{0,40}})(?P<bboxes>{_BOXES})"
            rf"[ \t]*(?=\r?\n|\Z))",
            # A ref cut off before its closing marker, at the very end of the output.
            r"(?P<cutref><\|ref\|>[^\n<]{0,200}(?:<\|?/?r?e?f?\|?)?\Z)",
            # Stray markers (a lone ``<|/ref|>``, ``<|grounding|>`` echoed from the prompt).
            r"(?P<stray><\|/?(?:ref|det|grounding)\|>|<image>)",
            "(?P<eos>" + "|".join(re.escape(t) for t in EOS_TOKENS) + ")",
            # A special token cut mid-way at the very end (``<|re``, ``<|/de``, ``<｜end▁``).
            r"(?P<cut>(?:<\|[/a-z▁_]{0,16}\|?|<｜[^｜\n]{0,20})\Z)",
        ]
    )
)


@dataclass
class GroundedParse:
    """Blocks of one page plus what the parser noticed about the output as a whole."""

    blocks: list[Block] = field(default_factory=list)
    grounded: bool = False
    """At least one grounding tag was found (False for Free OCR output)."""
    eos: bool = False
    """An end-of-sequence token was present (only visible when special tokens were kept)."""
    cut_off: bool = False
    """The output ends inside a tag: a sure sign generation stopped mid-page."""
    tag_spans: list[tuple[int, int]] = field(default_factory=list)
    """Spans of the raw output that were grounding syntax rather than content."""


def block_kind_for_label(
    label: str, norm_box: tuple[int, int, int, int] | None = None
) -> BlockKind:
    """Our block kind for a model label; unknown labels become ``OTHER`` (the label is kept)."""
    key = label.strip().lower()
    if key in ("page_number", "page-number", "number"):
        # A page number is furniture; where it sits tells header from footer.
        if norm_box is not None and (norm_box[1] + norm_box[3]) / 2 < NORM_MAX / 2:
            return BlockKind.PAGE_HEADER
        return BlockKind.PAGE_FOOTER
    if key == "":
        return BlockKind.TEXT
    return _LABEL_KINDS.get(key, BlockKind.OTHER)


def _parse_boxes(det: str | None) -> list[tuple[int, int, int, int]]:
    boxes = []
    for m in _BOX_RE.finditer(det or ""):
        x0, y0, x1, y1 = (min(max(round(float(v)), 0), NORM_MAX) for v in m.groups())
        boxes.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    return boxes


_CENTER_RE = re.compile(r"</?center\s*>", re.IGNORECASE)
_DISPLAY_EQ_RE = re.compile(r"\A\\\[(.*)\\\]\Z", re.DOTALL)
_LIST_LINE_RE = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+\S")


def _to_markdown(kind: BlockKind, content: str, level: int | None) -> tuple[str, str | None]:
    """Block Markdown (and the HTML for tables) from a region's raw content."""
    text = _CENTER_RE.sub("", content).strip()
    html: str | None = None
    if "<table" in text.lower():
        html = text
        text = html_tables_to_markdown(text)
    if kind is BlockKind.EQUATION:
        m = _DISPLAY_EQ_RE.match(text)
        if m:
            text = f"$$\n{m.group(1).strip()}\n$$"
    elif kind in (BlockKind.TITLE, BlockKind.HEADING) and text:
        body = text.lstrip("#").strip()
        text = f"{'#' * (level or 1)} {body}" if body else ""
    return text, html


def _heading_level(kind: BlockKind, content: str) -> int | None:
    if kind is BlockKind.TITLE:
        return 1
    if kind is BlockKind.HEADING:
        hashes = len(content.strip()) - len(content.strip().lstrip("#"))
        return min(hashes, 6) if hashes else 2
    return None


def _make_block(
    label: str,
    norm_boxes: list[tuple[int, int, int, int]],
    raw: str,
    span: tuple[int, int],
    page_width: float,
    page_height: float,
    page_index: int,
    kind: BlockKind | None = None,
    level: int | None = None,
) -> Block:
    content = raw[span[0] : span[1]]
    if kind is None:
        kind = block_kind_for_label(label, norm_boxes[0] if norm_boxes else None)
        if kind is BlockKind.TEXT and content.strip():
            lines = [ln for ln in content.strip().splitlines() if ln.strip()]
            if lines and all(_LIST_LINE_RE.match(ln) for ln in lines):
                kind = BlockKind.LIST_ITEM
    if level is None:
        level = _heading_level(kind, content)
    text, html = _to_markdown(kind, content, level)
    boxes = [BBox.from_norm(b, page_width, page_height) for b in norm_boxes]
    bbox = None
    for b in boxes:
        bbox = b if bbox is None else bbox.union(b)
    return Block(
        kind=kind,
        text=text,
        page_index=page_index,
        label=label,
        level=level,
        html=html,
        bbox=bbox,
        boxes=boxes,
        norm_boxes=norm_boxes,
        source_span=span,
    )


def _trim(raw: str, start: int, end: int) -> tuple[int, int]:
    """Span without surrounding whitespace (an empty span sits at ``start``)."""
    chunk = raw[start:end]
    lead = len(chunk) - len(chunk.lstrip())
    if lead == len(chunk):
        return (start, start)
    return (start + lead, start + len(chunk.rstrip()))


def parse_grounded_page(
    raw: str, page_width: float, page_height: float, page_index: int = 0
) -> GroundedParse:
    """Parse one page of model output into blocks in reading order; never raises.

    ``page_width``/``page_height`` are the page size in PDF points; boxes map as
    ``x / 999 * page_width``, so they are right at any rendering DPI.
    """
    result = GroundedParse()
    if not isinstance(raw, str):
        raw = "" if raw is None else str(raw)
    # The text before the first tag is an untagged region (label None): all of it for Free OCR.
    regions: list[_Region] = [_Region(None, [], [])]
    pos = 0
    for m in _TAG_RE.finditer(raw):
        group = m.lastgroup
        regions[-1].pieces.append((pos, m.start()))
        if group == "ref":
            result.grounded = True
            regions.append(
                _Region((m.group("label") or "").strip(), _parse_boxes(m.group("det")), [])
            )
            if m.group("det") is not None and not m.group(0).endswith("<|/det|>"):
                # An unclosed det is only a cut-off when nothing follows it.
                result.cut_off = result.cut_off or not raw[m.end() :].strip()
        elif group == "detonly":
            result.grounded = True
            regions.append(_Region("", _parse_boxes(m.group("det2")), []))
        elif group == "bare":
            result.grounded = True
            regions.append(_Region(m.group("blabel"), _parse_boxes(m.group("bboxes")), []))
        elif group == "eos":
            result.eos = True
        elif group in ("cutref", "cut"):
            result.cut_off = True
            result.grounded = result.grounded or group == "cutref"
        # Stray markers just end the current piece; the region goes on after them.
        result.tag_spans.append((m.start(), m.end()))
        pos = m.end()
    regions[-1].pieces.append((pos, len(raw)))

    blocks: list[Block] = []
    for region in regions:
        blocks.extend(_region_blocks(raw, region, page_width, page_height, page_index))
    for order, block in enumerate(blocks):
        block.order = order
    result.blocks = blocks
    return result


@dataclass
class _Region:
    label: str | None
    boxes: list[tuple[int, int, int, int]]
    pieces: list[tuple[int, int]]


def _region_blocks(
    raw: str, region: _Region, page_width: float, page_height: float, page_index: int
) -> list[Block]:
    pieces = [t for t in (_trim(raw, s, e) for s, e in region.pieces) if t[1] > t[0]]
    if region.label is None:
        out = []
        for s, e in pieces:
            for seg in split_markdown(raw[s:e]):
                out.append(
                    _make_block(
                        "",
                        [],
                        raw,
                        (s + seg.start, s + seg.end),
                        page_width,
                        page_height,
                        page_index,
                        kind=seg.kind,
                        level=seg.level,
                    )
                )
        return out
    if not pieces:
        # Image regions legitimately have no content: keep the region and its boxes.
        anchor = region.pieces[0][0] if region.pieces else 0
        return [
            _make_block(
                region.label,
                region.boxes,
                raw,
                (anchor, anchor),
                page_width,
                page_height,
                page_index,
            )
        ]
    # Content split by a stray marker yields one block per piece, so that every block keeps one
    # contiguous span and no character is shared or lost; the boxes stay on the first.
    return [
        _make_block(
            region.label,
            region.boxes if i == 0 else [],
            raw,
            span,
            page_width,
            page_height,
            page_index,
        )
        for i, span in enumerate(pieces)
    ]


def parse_grounded_output(
    raw: str, page_width: float, page_height: float, page_index: int = 0
) -> list[Block]:
    """Blocks of one page from grounded (or plain) model output, in reading order.

    ``page_width``/``page_height`` are in PDF points. See :func:`parse_grounded_page` for the
    flags (end-of-sequence seen, output cut off mid-tag) that an engine uses to set page status.
    """
    return parse_grounded_page(raw, page_width, page_height, page_index).blocks


def build_page(
    raw: str,
    *,
    index: int,
    width: float,
    height: float,
    label: str = "",
    dpi: float | None = None,
    engine: str | None = None,
    expect_eos: bool = False,
) -> Page:
    """A :class:`Page` from one page of model output: blocks, Markdown and status.

    The page is ``truncated`` when the output ends inside a tag, or when ``expect_eos`` (the
    engine kept special tokens) and no end-of-sequence token is present; the partial text is kept.
    """
    parsed = parse_grounded_page(raw, width, height, index)
    page = Page(
        index=index,
        width=width,
        height=height,
        label=label,
        dpi=dpi,
        blocks=parsed.blocks,
        markdown=blocks_to_markdown(parsed.blocks),
        raw_output=raw,
        engine=engine,
    )
    if parsed.cut_off or (expect_eos and not parsed.eos):
        page.status = PageStatus.TRUNCATED
        page.error = (
            "output ends inside a grounding tag" if parsed.cut_off else "no end-of-sequence token"
        )
    return page
