"""docling-core's ``HybridChunker`` as a retrieval baseline, run offline on our documents.

docling's PDF models need a download, so instead our :class:`~deepocr_loaders.Document` (the
one a perfect OCR engine would return) is rebuilt as the ``DoclingDocument`` docling's PDF
pipeline would produce for the same page, with docling-core's own builder API: titles, section
headers, text, list groups, tables with cell grids, pictures with captions, formulas, code, and
page headers and footers in the furniture layer; every item has a provenance (1-based page,
bbox in points with a top-left origin, charspan) and every page its size. Two things follow
docling's PDF pipeline rather than our model:

* ``heading_levels="flat"`` makes every section header level 1, as docling's layout model
  emits them (``"true"`` keeps our levels, the best case for docling);
* a paragraph cut by a page or column break is merged into one text item when docling's
  rule-based reading-order model would merge it (``ReadingOrderPredictor.predict_merges`` in
  docling-ibm-models: a text ending in a lower-case letter, comma or hyphen, followed, past
  headers, footers, tables, pictures, captions and footnotes, by a text on a later page or in a
  column to its right that starts with a letter). Tables continued over pages stay separate,
  as docling does not stitch them either.

Needs ``docling-core[chunking]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from docling_core.transforms.chunker.hybrid_chunker import HybridChunker
from docling_core.transforms.chunker.tokenizer.huggingface import HuggingFaceTokenizer
from docling_core.types.doc import (
    BoundingBox,
    ContentLayer,
    CoordOrigin,
    DescriptionMetaField,
    DocItemLabel,
    DoclingDocument,
    ListGroup,
    NodeItem,
    PictureMeta,
    ProvenanceItem,
    Size,
    TableCell,
    TableData,
    TextItem,
)

from chunking.tables import block_table, cells
from deepocr_loaders import BBox, Block, BlockKind, Document, Page
from deepocr_loaders.tables import html_table_to_grid

if TYPE_CHECKING:
    from corpus import CorpusDoc

__all__ = ["HeadingLevels", "docling_chunks", "to_docling"]

HeadingLevels = Literal["flat", "true"]

_LIST_MARKER_RE = re.compile(r"^\s*([-*+•‣◦]|\d+[.)]|[a-zA-Z][.)])\s+")
_FENCE_RE = re.compile(r"^\s*```[^\n]*\n(.*?)\n?```\s*$", re.DOTALL)
_DISPLAY_MATH_RE = re.compile(r"^\s*(?:\$\$(.*)\$\$|\\\[(.*)\\\])\s*$", re.DOTALL)
# docling-ibm-models' merge rule: the first part ends mid-sentence, the next starts a word.
_ENDS_OPEN_RE = re.compile(r".+([a-z,\-\u00AD])\s*", re.DOTALL)
_STARTS_WORD_RE = re.compile(r"\s*[a-zA-Z\u00C0-\u024F].+", re.DOTALL)
# Labels docling's merge rule looks past when it searches the continuation of a paragraph.
_MERGE_SKIPS = frozenset(
    {
        BlockKind.PAGE_HEADER,
        BlockKind.PAGE_FOOTER,
        BlockKind.TABLE,
        BlockKind.FIGURE,
        BlockKind.CAPTION,
        BlockKind.FOOTNOTE,
    }
)
_TEXT_LABELS = {
    BlockKind.TEXT: DocItemLabel.TEXT,
    BlockKind.OTHER: DocItemLabel.TEXT,
    BlockKind.FOOTNOTE: DocItemLabel.FOOTNOTE,
    BlockKind.CAPTION: DocItemLabel.CAPTION,
    BlockKind.PAGE_HEADER: DocItemLabel.PAGE_HEADER,
    BlockKind.PAGE_FOOTER: DocItemLabel.PAGE_FOOTER,
}


def _box(block: Block, page: Page) -> BBox:
    # docling requires a box on every provenance; a block without one covers its page.
    return block.bbox or BBox(0.0, 0.0, page.width, page.height)


def _prov(block: Block, page: Page, start: int, end: int) -> ProvenanceItem:
    b = _box(block, page)
    return ProvenanceItem(
        page_no=block.page_index + 1,
        bbox=BoundingBox(l=b.x0, t=b.y0, r=b.x1, b=b.y1, coord_origin=CoordOrigin.TOPLEFT),
        charspan=(start, end),
    )


def _table_rows(block: Block) -> tuple[list[list[str]], int]:
    """Cell texts row by row and the number of header rows, from the HTML when there is
    some (it keeps spans, spread over the slots they cover), else from the pipe table."""
    if block.html and "<table" in block.html.lower():
        grid = html_table_to_grid(block.html)
        if grid.rows:
            return grid.rows, grid.header_rows
    lines = block_table(block)
    if lines is None:  # not a table after all: one cell, so its text is not lost
        return [[block.text.strip()]], 0
    head = lines.head[:-1]  # the last head line is the |---| separator
    rows = [[c.replace("\\|", "|") for c in cells(line)] for line in [*head, *lines.rows]]
    return rows, len(head)


def _table_data(block: Block) -> TableData:
    rows, header_rows = _table_rows(block)
    n_cols = max(len(r) for r in rows)
    table_cells = [
        TableCell(
            text=text,
            start_row_offset_idx=r,
            end_row_offset_idx=r + 1,
            start_col_offset_idx=c,
            end_col_offset_idx=c + 1,
            column_header=r < header_rows,
        )
        for r, row in enumerate(rows)
        for c, text in enumerate(row + [""] * (n_cols - len(row)))
    ]
    return TableData(num_rows=len(rows), num_cols=n_cols, table_cells=table_cells)


def _pair_captions(blocks: list[Block]) -> dict[int, Block]:
    """Caption blocks by the index of the table or figure they belong to: the neighbour on
    the same page, the next block for a table caption and the previous one for a figure
    caption first (where they are usually printed), the other side second."""
    body = [i for i, b in enumerate(blocks) if not b.kind.is_furniture]
    paired: dict[int, Block] = {}
    for pos, i in enumerate(body):
        cap = blocks[i]
        if cap.kind is not BlockKind.CAPTION:
            continue
        label = cap.label.lower()
        kinds = (
            {BlockKind.TABLE}
            if "table" in label
            else {BlockKind.FIGURE}
            if "image" in label or "figure" in label
            else {BlockKind.TABLE, BlockKind.FIGURE}
        )
        before = body[pos - 1] if pos > 0 else None
        after = body[pos + 1] if pos + 1 < len(body) else None
        order = (after, before) if kinds == {BlockKind.TABLE} else (before, after)
        for j in order:
            if (
                j is not None
                and j not in paired
                and blocks[j].kind in kinds
                and blocks[j].page_index == cap.page_index
            ):
                paired[j] = cap
                break
    return paired


class _Builder:
    """Adds our blocks to a DoclingDocument in reading order."""

    def __init__(self, document: Document, heading_levels: HeadingLevels) -> None:
        if heading_levels not in ("flat", "true"):
            raise ValueError(f"heading_levels must be 'flat' or 'true', not {heading_levels!r}")
        name = str(document.metadata.get("name") or Path(document.source).stem or "document")
        self.doc = DoclingDocument(name=name)
        self.flat = heading_levels == "flat"
        self.pages = {p.index: p for p in document.pages}
        self.list_group: ListGroup | None = None
        # The last body text item and its block, while docling's merge rule could still
        # continue it (only skipped kinds seen since).
        self.open_text: tuple[TextItem, Block] | None = None

    def page(self, block: Block) -> Page:
        return self.pages[block.page_index]

    def add_caption(self, cap: Block, parent: NodeItem) -> None:
        text = cap.text.strip()
        item = self.doc.add_text(
            label=DocItemLabel.CAPTION,
            text=text,
            prov=_prov(cap, self.page(cap), 0, len(text)),
            parent=parent,
        )
        parent.captions.append(item.get_ref())  # type: ignore[attr-defined]

    def continues(self, block: Block, text: str) -> TextItem | None:
        """The open text item this TEXT block continues by docling's merge rule, or None."""
        if self.open_text is None:
            return None
        item, prev = self.open_text
        next_page = block.page_index != prev.page_index
        right_column = (
            prev.bbox is not None and block.bbox is not None and prev.bbox.x1 < block.bbox.x0
        )
        if (
            (next_page or right_column)
            and _ENDS_OPEN_RE.fullmatch(item.text)
            and _STARTS_WORD_RE.fullmatch(text)
        ):
            return item
        return None

    def add(self, block: Block, caption: Block | None) -> None:
        """Add one block (and the caption paired with it, for a table or figure)."""
        doc, kind, page = self.doc, block.kind, self.page(block)
        text = block.text.strip()
        if kind is not BlockKind.LIST_ITEM and not kind.is_furniture:
            self.list_group = None
        if kind not in _MERGE_SKIPS and kind is not BlockKind.TEXT:
            self.open_text = None

        if kind.is_furniture:
            if text:
                doc.add_text(
                    label=_TEXT_LABELS[kind],
                    text=text,
                    prov=_prov(block, page, 0, len(text)),
                    content_layer=ContentLayer.FURNITURE,
                )
        elif kind is BlockKind.TITLE:
            title = block.plain_text
            doc.add_title(text=title, prov=_prov(block, page, 0, len(title)))
        elif kind is BlockKind.HEADING:
            title = block.plain_text
            level = 1 if self.flat else max(1, block.level or 1)
            doc.add_heading(text=title, level=level, prov=_prov(block, page, 0, len(title)))
        elif kind is BlockKind.LIST_ITEM:
            m = _LIST_MARKER_RE.match(text)
            marker = m.group(1) if m else ""
            body = text[m.end() :] if m else text
            if self.list_group is None:
                self.list_group = doc.add_list_group()
            doc.add_list_item(
                text=body,
                enumerated=marker[:1].isalnum(),
                marker=marker or None,
                prov=_prov(block, page, 0, len(body)),
                parent=self.list_group,
            )
        elif kind is BlockKind.TABLE:
            if not text and not block.html:  # nothing to tabulate; keep its caption as text
                if caption is not None:
                    self.add(caption, None)
                return
            table = doc.add_table(data=_table_data(block), prov=_prov(block, page, 0, 0))
            if caption is not None:
                self.add_caption(caption, table)
        elif kind is BlockKind.FIGURE:
            picture = doc.add_picture(prov=_prov(block, page, 0, 0))
            if text:  # the model's description of the figure, as docling keeps one
                picture.meta = PictureMeta(description=DescriptionMetaField(text=text))
            if caption is not None:
                self.add_caption(caption, picture)
        elif kind is BlockKind.EQUATION:
            m = _DISPLAY_MATH_RE.match(text)
            latex = next((g for g in m.groups() if g is not None), "").strip() if m else text
            if latex:
                doc.add_formula(text=latex, prov=_prov(block, page, 0, len(latex)))
        elif kind is BlockKind.CODE:
            m = _FENCE_RE.match(text)
            code = m.group(1) if m else text
            if code:
                doc.add_code(text=code, prov=_prov(block, page, 0, len(code)))
        elif text:  # text, footnote, other, a caption paired with nothing
            item = self.continues(block, text) if kind is BlockKind.TEXT else None
            if item is not None:
                start = len(item.text) + 1
                item.text = f"{item.text} {text}"
                item.orig = item.text
                item.prov.append(_prov(block, page, start, start + len(text)))
                self.open_text = (item, block)
                return
            new = doc.add_text(
                label=_TEXT_LABELS[kind], text=text, prov=_prov(block, page, 0, len(text))
            )
            if kind is BlockKind.TEXT:
                self.open_text = (new, block)


def to_docling(document: Document, *, heading_levels: HeadingLevels) -> DoclingDocument:
    """``document`` as the DoclingDocument docling's PDF pipeline would give for its pages.

    ``heading_levels``: ``"flat"`` (every section header level 1, as docling's PDF pipeline
    does) or ``"true"`` (our heading levels kept).
    """
    builder = _Builder(document, heading_levels)
    for page in document.pages:
        builder.doc.add_page(
            page_no=page.index + 1, size=Size(width=page.width, height=page.height)
        )
    blocks = document.blocks
    captions = _pair_captions(blocks)
    placed = {id(c) for c in captions.values()}
    for i, block in enumerate(blocks):
        if id(block) in placed:
            continue  # added as a child of its table or figure
        builder.add(block, captions.get(i))
    return builder.doc


def docling_chunks(
    corpus: Iterable[CorpusDoc],
    hf_tokenizer: Any,
    max_tokens: int,
    heading_levels: HeadingLevels,
) -> list[tuple[str, str, str, set[int]]]:
    """Chunks of docling's ``HybridChunker`` (``merge_peers=True``, budget in the tokens of
    ``hf_tokenizer``) over the corpus: ``(doc name, chunk text, embed text, 0-based pages)``.

    The embed text is ``chunker.contextualize(chunk)`` (headings, then the text: docling's
    documented text to embed); the pages come from the provenance of the chunk's items.
    """
    chunker = HybridChunker(
        tokenizer=HuggingFaceTokenizer(tokenizer=hf_tokenizer, max_tokens=max_tokens),
        merge_peers=True,
    )
    out = []
    for d in corpus:
        dl_doc = to_docling(d.document, heading_levels=heading_levels)
        for chunk in chunker.chunk(dl_doc=dl_doc):
            items = chunk.meta.doc_items  # type: ignore[attr-defined]
            pages = {prov.page_no - 1 for item in items for prov in item.prov}
            out.append((d.name, chunk.text, chunker.contextualize(chunk=chunk), pages))
    return out
