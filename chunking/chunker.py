"""LayoutChunker: a Document's units packed into chunks that respect its structure."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from math import floor
from typing import Any, Literal

from deepocr_loaders.document import Block, BlockKind, Document, Page

from .chunk import Box, Chunk, ChunkKind, PageSize
from .headings import contextualize
from .settings import ChunkerSettings, settings_from
from .split import split_spans, tail_sentences, tail_start
from .tables import (
    TableLines,
    cells,
    key_column,
    names_rows,
    part_text,
    row_groups,
    words_tell_rows_apart,
)
from .tokens import resolve_token_counter
from .units import Unit, build_units

__all__ = ["LayoutChunker"]

_KIND_OF_UNIT = {
    "text": ChunkKind.TEXT,
    "list": ChunkKind.TEXT,
    "code": ChunkKind.TEXT,
    "table": ChunkKind.TABLE,
    "figure": ChunkKind.FIGURE,
    "equation": ChunkKind.EQUATION,
}
_PROSE = ("text", "list")


@dataclass
class _Piece:
    """A unit, or a part of a split one: what the packer places whole."""

    kind: str
    text: str
    blocks: list[Block]
    tokens: int
    section: int
    path: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)
    index: str | None = None
    """What stands for ``text`` in the text to embed, when that differs (a table's keys)."""
    unit: Unit | None = None
    """Prose: the unit the piece was cut from, and where in its text the piece lies."""
    span: tuple[int, int] = (0, 0)


def _table_keys(table: TableLines) -> tuple[str, str, list[str], int]:
    """The table's column names joined, the key column's name, per body row the value of
    its key column, and that column's index."""
    names = cells(table.head[0])
    col = key_column(table)
    key_name = names[col] if col < len(names) and names[col] else "Rows"
    if col == 0:  # the usual case, and a cheaper one: no need to split whole rows
        keys = table.first_cells()
    else:
        keys = [c[col] if col < len(c) else "" for c in map(cells, table.rows)]
    return f"{' | '.join(names)}\n{key_name}: ", key_name, keys, col


def _group_keys(keys: list[str], labels: list[int], start: int, end: int) -> str:
    """The key column's values of rows ``start:end``, under the label rows they sit under
    (``Water supply: Revenue, Depreciation; Wastewater: Revenue``), so look-alike rows of
    different segments stay apart."""
    label = labels[start]
    segments: list[tuple[str, list[str]]] = [(keys[label] if 0 <= label < start else "", [])]
    for k in range(start, end):
        if labels[k] == k:
            segments.append((keys[k], []))
        elif keys[k]:
            segments[-1][1].append(keys[k])
    return "; ".join(
        f"{name}: {', '.join(values)}" if name and values else name or ", ".join(values)
        for name, values in segments
        if name or values
    )


def _row_keys(
    key_name: str, keys: list[str], firsts: list[str], labels: list[int], start: int, end: int
) -> list[str]:
    """One short text per keyed row of rows ``start:end``, ``Asset FA-8514`` or, under a label
    row, ``Wastewater: Revenue``: what a multi-vector index stores so that a lookup by id finds
    the row's chunk, which a dense embedding of many look-alike rows cannot single out."""
    out = []
    for k in range(start, end):
        key = keys[k]
        if not key or labels[k] == k:
            continue
        label = labels[k]
        out.append(f"{firsts[label]}: {key}" if label >= 0 else f"{key_name} {key}")
    return out


def _table_index(captions: list[str], columns: str, keys: str) -> str:
    """A row group as an embedding model can tell it apart from its siblings: captions, the
    column names and the key column's values, without the cells (numbers drown the keys)."""
    return "\n".join([*captions, columns + keys])


def _figure_index(unit: Unit) -> str | None:
    """What stands for a figure in the text to embed: its captions and description, without
    the text drawn inside it (a chart's tick labels and legend, read from a vector figure) or
    its crop's path, which only dilute the vector; None when that is the figure's text."""
    parts = []
    for b in unit.blocks:
        if b.kind is BlockKind.FIGURE:
            parts.append("[figure]")
            description = b.metadata.get("description")
            if isinstance(description, str) and description.strip():
                parts.append(description.strip())
        elif b.text.strip():
            parts.append(b.text.strip())
    index = "\n\n".join(parts)
    return None if index == unit.text else index


def _boxes(block: Block) -> list[Box]:
    """The block's boxes with its page, points rounded to 0.01."""
    # floor(v * 100 + 0.5) / 100 rounds like round(v, 2) but for exact binary ties, at less
    # than half the cost (boxes are the chunker's most frequent metadata).
    page = block.page_index
    return [
        Box(
            page,
            floor(box.x0 * 100 + 0.5) / 100,
            floor(box.y0 * 100 + 0.5) / 100,
            floor(box.x1 * 100 + 0.5) / 100,
            floor(box.y1 * 100 + 0.5) / 100,
        )
        for box in block.boxes or ([block.bbox] if block.bbox is not None else [])
    ]


def _uuid5_str(digest: bytes) -> str:
    """``str(uuid.UUID(bytes=digest[:16], version=5))``, formatted here because the UUID
    class checks its arguments at several times the cost of the hash itself."""
    raw = bytearray(digest[:16])
    raw[6] = raw[6] & 0x0F | 0x50  # version 5
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _part_blocks(unit: Unit, start: int, end: int, first: bool, last: bool) -> list[Block]:
    """The blocks a row group (rows ``start:end``) of a split table cites: the printed parts
    its rows come from, the captions above the table with the first group, the captions below
    and the footnotes with the last. The text repeats the captions; the boxes do not."""
    assert unit.table is not None
    parts = [b for _, b in unit.row_starts]
    bounds = [s for s, _ in unit.row_starts] + [len(unit.table.rows)]
    mine = [b for m, b in enumerate(parts) if bounds[m] < end and bounds[m + 1] > start]
    head = unit.blocks.index(parts[0])
    tail = unit.blocks.index(parts[-1]) + 1
    above = unit.blocks[:head] if first else []
    below = unit.blocks[tail:] if last else []
    return [*above, *(mine or parts), *below]


def _source_offset(piece: _Piece, cut: int) -> int:
    """The offset in the text of ``piece``'s unit that offset ``cut`` in the piece's text
    stands for: the piece's text is its stretch of the unit's text with the whitespace between
    sentences and words rewritten, so the two hold the same other characters in order."""
    assert piece.unit is not None
    source = piece.unit.text
    wanted = len("".join(piece.text[:cut].split()))  # its characters other than spaces
    pos = piece.span[0]
    if wanted == 0:
        return pos
    for pos in range(piece.span[0], piece.span[1]):
        if not source[pos].isspace():
            wanted -= 1
            if wanted == 0:
                return pos + 1
    return piece.span[1]


def _cited(piece: _Piece, start: int, end: int) -> list[Block]:
    """The blocks of ``piece``'s unit whose text overlaps ``start:end`` of the unit's text."""
    if piece.unit is None or start >= end:
        return piece.blocks
    return piece.unit.blocks_in(start, end)


class LayoutChunker:
    """Chunks a :class:`~deepocr_loaders.Document` along its layout.

    ``max_tokens`` is the budget per chunk; only what is kept whole exceeds it: an equation, a
    figure, a single table row with the header and caption it must carry, or one character
    that alone counts more. Prose is cut between sentences (the stops of CJK and other
    scripts included), else between words, else at the last token boundary that fits; a run of
    headings without body is cut like prose. A table is cut only between rows, and not inside
    a run of rows under one row label (a first cell that spans them) while the run fits the
    budget. A chunk cites only the blocks, boxes and pages whose text it holds, also when cut
    from a paragraph joined across pages.

    ``min_tokens`` (default 120, or 30% of a smaller budget): a chunk below it merges with the
    previous chunk of its section when the pair fits the budget, and an oversized paragraph is
    cut into balanced pieces rather than leaving a scrap.

    ``overlap_tokens`` repeats the last whole sentences of a chunk at the start of the next one
    when both are prose of the same section. ``tokenizer`` is any ``str -> int`` callable, a
    Hugging Face tokenizer or a tiktoken encoding (default: a fast approximation that needs no
    download). ``include_furniture`` keeps page headers, footers and page numbers in chunk text
    (:func:`chunking.furniture_blocks` lists them otherwise).

    ``table_max_tokens`` is the budget of a table's row groups (default ``max_tokens``); a
    larger one gives fewer, fuller groups, useful with ``table_embedding="keys"``, whose
    embedding text is a fraction of the rows' length. ``table_embedding`` says what a
    table chunk's ``contextualized_text`` holds: ``"rows"``, the heading path and the table
    part as it is; ``"keys"``, the heading path, captions, column names and the key column's
    values of the part's rows (a site id, a row label), not the cells, so that row groups
    that differ only in their keys stay apart for a dense embedder and their text fits its
    window; ``"auto"`` (default), ``"keys"`` for a table split into row groups whose other
    cells do not tell its rows apart (numbers, words that recur from row to row) and whose
    keys are at most half as long as the rows, ``"rows"`` otherwise (a description column
    embeds well). Chunk ``text`` is the same in every mode; a figure embeds its captions and
    description in place of the text drawn inside it.
    """

    def __init__(
        self,
        max_tokens: int = 400,
        min_tokens: int | None = None,
        *,
        overlap_tokens: int = 0,
        tokenizer: Any = None,
        include_furniture: bool = False,
        table_max_tokens: int | None = None,
        table_embedding: Literal["rows", "keys", "auto"] = "auto",
        settings: ChunkerSettings | None = None,
    ) -> None:
        if settings is None:
            settings = ChunkerSettings(
                max_tokens,
                min_tokens,
                overlap_tokens,
                tokenizer,
                include_furniture,
                table_max_tokens,
                table_embedding,
            )
        self.settings = settings
        self.max_tokens = settings.max_tokens
        self.table_max_tokens = settings.table_max_tokens or settings.max_tokens
        self.table_embedding = settings.table_embedding
        self.min_tokens = settings.effective_min_tokens
        self.overlap_tokens = settings.overlap_tokens
        self.include_furniture = settings.include_furniture
        self.count = resolve_token_counter(settings.tokenizer)
        # The default counter is additive over whitespace-joined parts, so a chunk's count is
        # the sum of its pieces'; a real tokenizer recounts the joined text to be exact.
        self._recount = settings.tokenizer is not None

    @classmethod
    def from_settings(
        cls, settings: ChunkerSettings | None = None, **options: Any
    ) -> LayoutChunker:
        """A chunker for ``settings`` with ``options`` applied (see :func:`settings_from`).

        Args:
            settings: the settings, or None for the defaults.
            **options: :class:`ChunkerSettings` fields that override ``settings``.
        """
        return cls(settings=settings_from(settings, **options))

    # -- pieces ----------------------------------------------------------------------------

    def _split_prose(self, unit: Unit, reserved: int) -> list[_Piece]:
        budget = max(self.max_tokens - reserved, 1)
        parts = split_spans(unit.text, budget, self.count, by_line=unit.kind in ("list", "code"))
        # Each piece cites only the blocks it holds text of (a paragraph joined across pages
        # can be long: citing all of its blocks in every piece grows with its square).
        return [
            _Piece(
                unit.kind,
                t,
                unit.blocks_in(a, b),
                n,
                unit.section,
                unit.path,
                unit=unit,
                span=(a, b),
            )
            for t, n, a, b in parts
        ]

    def _split_headings(self, heads: list[Unit]) -> list[_Piece]:
        """A run of headings with no body between them, as pieces of their own that keep the
        budget: cut between headings, and a heading over the budget like any text."""
        pieces: list[_Piece] = []
        group: list[Unit] = []
        used = 0

        def flush() -> None:
            if group:
                text = "\n\n".join(h.text for h in group)
                blocks = [b for h in group for b in h.blocks]
                end = group[-1]
                tokens = self.count(text)
                pieces.append(_Piece("heading", text, blocks, tokens, end.section, end.path))
                group.clear()

        for head in heads:
            cost = self.count(head.text)
            if cost > self.max_tokens:
                flush()
                used = 0
                pieces.extend(
                    _Piece("heading", t, head.blocks, n, head.section, head.path)
                    for t, n, _, _ in split_spans(head.text, self.max_tokens, self.count)
                )
                continue
            if group and used + cost + 1 > self.max_tokens:
                flush()
                used = 0
            used += cost + 1 if group else cost
            group.append(head)
        flush()
        return pieces

    def _table_pieces(self, unit: Unit, reserved: int) -> list[_Piece]:
        assert unit.table is not None
        before = "\n\n".join(unit.before)
        after = "\n\n".join(unit.after)
        notes = "\n\n".join(b.text.strip() for b in unit.notes)
        frame = (self.count(before) + 1 if before else 0) + (self.count(after) + 1 if after else 0)
        note_tokens = self.count(notes) + 1 if notes else 0
        groups = row_groups(unit.table, self.table_max_tokens, self.count, frame + reserved)
        split = len(groups) > 1
        table = unit.table
        columns, key_name, row_keys, key_col = _table_keys(table)
        # "auto" weighs keys only for a split table whose other cells do not tell its rows
        # apart (numbers, recurring words; not an option's description, which is what a
        # question asks for).
        keys_for_auto = (
            self.table_embedding == "auto" and split and not words_tell_rows_apart(table, key_col)
        )
        labels = table.label_of()
        keyed = names_rows(row_keys)
        pieces = []
        for k, (start, end, tokens) in enumerate(groups):
            last = k == len(groups) - 1
            part = part_text(table, start, end)
            text = "\n\n".join(t for t in (before, part, after, notes if last else "") if t)
            extra: dict[str, Any] = {}
            if len(groups) > 1:
                extra = {"table_part": k + 1, "table_parts": len(groups)}
            keys_text, embed_keys = "", False
            if self.table_embedding == "keys" or keys_for_auto:
                keys_text = _group_keys(row_keys, labels, start, end)
                # "auto" takes them only where they are at most half as long as the part: on
                # real tables (manuals, standards) the key column is most of a row, and keys
                # that long only push the part past the embedder's window.
                embed_keys = (
                    self.table_embedding == "keys" or 2 * self.count(columns + keys_text) <= tokens
                )
            if embed_keys:
                extra["table_keys"] = columns + keys_text
            if keyed:
                extra["row_keys"] = _row_keys(
                    key_name, row_keys, table.first_cells(), labels, start, end
                )
            cited = _part_blocks(unit, start, end, k == 0, last) if split else unit.blocks
            pieces.append(
                _Piece(
                    "table",
                    text,
                    cited,
                    tokens + frame + (note_tokens if last else 0),
                    unit.section,
                    unit.path,
                    extra,
                    _table_index(unit.before + unit.after, columns, keys_text)
                    if embed_keys
                    else None,
                )
            )
        return pieces

    def _pieces(self, units: list[Unit]) -> list[_Piece]:
        pieces: list[_Piece] = []
        heads: list[Unit] = []
        reserved = 0
        for unit in units:
            if unit.kind == "heading":
                cost = self.count(unit.text) + 1
                if heads and reserved + cost > self.max_tokens // 2:
                    # A run of headings that would leave what follows less than half the
                    # budget: the run so far becomes pieces of its own.
                    pieces.extend(self._split_headings(heads))
                    heads, reserved = [], 0
                heads.append(unit)
                reserved += cost
                continue
            if reserved > self.max_tokens // 2:
                # One heading that long: alone, and split if over the budget.
                pieces.extend(self._split_headings(heads))
                heads, reserved = [], 0
            if unit.kind == "table":
                new = self._table_pieces(unit, reserved)
            elif unit.kind == "equation":
                new = []
                text, tokens = unit.text, self.count(unit.text)
                blocks = list(unit.blocks)
                if unit.intro is not None:
                    intro = self._split_prose(unit.intro, reserved)
                    last = intro.pop()
                    room = self.max_tokens - reserved - tokens - 1
                    if last.tokens > room:
                        # Only the closing sentences that introduce the equation go with it.
                        cut = tail_start(last.text, room, self.count, at_least_one=True)
                        head = last.text[:cut].strip()
                        mid = _source_offset(last, cut)
                        if head:
                            intro.append(
                                _Piece(
                                    last.kind,
                                    head,
                                    _cited(last, last.span[0], mid),
                                    self.count(head),
                                    last.section,
                                    last.path,
                                )
                            )
                            last.blocks = _cited(last, mid, last.span[1])
                        last.text = last.text[cut:].strip()
                        last.tokens = self.count(last.text)
                    new.extend(intro)
                    text = f"{last.text}\n\n{text}"
                    tokens += last.tokens + 1
                    blocks = last.blocks + blocks
                new.append(_Piece("equation", text, blocks, tokens, unit.section, unit.path))
            elif unit.kind == "figure":
                new = [
                    _Piece(
                        "figure",
                        unit.text,
                        unit.blocks,
                        self.count(unit.text),
                        unit.section,
                        unit.path,
                        {"image_paths": unit.image_paths},
                        _figure_index(unit),
                    )
                ]
            else:
                new = self._split_prose(unit, reserved)
            if heads:
                # Headings open the first piece of what follows them, never a chunk of their own.
                first = new[0]
                first.text = "\n\n".join([*(h.text for h in heads), first.text])
                if first.index is not None:
                    first.index = "\n\n".join([*(h.text for h in heads), first.index])
                first.blocks = [b for h in heads for b in h.blocks] + first.blocks
                first.tokens += reserved
                heads, reserved = [], 0
            pieces.extend(new)
        if heads:
            pieces.extend(self._split_headings(heads))
        return pieces

    # -- packing ---------------------------------------------------------------------------

    def _pack(self, pieces: list[_Piece]) -> list[list[_Piece]]:
        groups: list[list[_Piece]] = []
        used = 0
        for piece in pieces:
            cur = groups[-1] if groups else None
            if (
                cur is not None
                and cur[-1].section == piece.section
                and used + piece.tokens + 1 <= self.max_tokens
            ):
                cur.append(piece)
                used += piece.tokens + 1
            else:
                groups.append([piece])
                used = piece.tokens
        if self.min_tokens:
            groups = self._merge_small(groups)
        return groups

    def _merge_small(self, groups: list[list[_Piece]]) -> list[list[_Piece]]:
        """A chunk under ``min_tokens`` joins the previous chunk of its section if both fit."""
        out: list[list[_Piece]] = []
        sizes: list[int] = []
        for group in groups:
            size = sum(p.tokens + 1 for p in group)
            if (
                out
                and out[-1][-1].section == group[0].section
                and (size < self.min_tokens or sizes[-1] < self.min_tokens)
                and sizes[-1] + size <= self.max_tokens
            ):
                out[-1].extend(group)
                sizes[-1] += size
            else:
                out.append(group)
                sizes.append(size)
        return out

    # -- chunks ----------------------------------------------------------------------------

    def chunk(self, document: Document) -> list[Chunk]:
        """The document's chunks in reading order."""
        units = build_units(document, include_furniture=self.include_furniture)
        groups = self._pack(self._pieces(units))
        pages = {p.index: p for p in document.pages}
        doc_key = document.sha256 or document.source
        engines = sorted({p.engine for p in document.pages if p.engine})
        chunks: list[Chunk] = []
        prev: list[_Piece] | None = None
        for index, group in enumerate(groups):
            text = "\n\n".join(p.text for p in group)
            overlap = ""
            if (
                self.overlap_tokens
                and prev is not None
                and prev[-1].section == group[0].section
                and prev[-1].kind in _PROSE
                and group[0].kind in _PROSE
            ):
                overlap = tail_sentences(prev[-1].text, self.overlap_tokens, self.count)
                if overlap:
                    text = f"{overlap}\n\n{text}"
            prev = group
            tokens = sum(p.tokens for p in group) + (self.count(overlap) if overlap else 0)
            chunk = self._record(document, group, text, overlap, tokens, pages, engines)
            chunk.chunk_index = index
            if overlap:
                chunk.overlap_tokens = tokens - sum(p.tokens for p in group)
            digest = hashlib.sha256(
                "\x1f".join([doc_key, str(index), ",".join(chunk.block_ids), text]).encode()
            ).digest()
            chunk.id = _uuid5_str(digest)
            chunks.append(chunk)
        return chunks

    def _record(
        self,
        document: Document,
        group: list[_Piece],
        text: str,
        overlap: str,
        tokens: int,
        pages: dict[int, Page],
        engines: list[str],
    ) -> Chunk:
        """The chunk of ``group``, its id and index still to be set."""
        blocks: list[Block] = []
        seen: set[int] = set()
        for piece in group:
            for b in piece.blocks:
                if id(b) not in seen:
                    seen.add(id(b))
                    blocks.append(b)
        kinds = {_KIND_OF_UNIT[p.kind] for p in group if p.kind in _KIND_OF_UNIT}
        kind = kinds.pop() if len(kinds) == 1 else (ChunkKind.MIXED if kinds else ChunkKind.TEXT)
        path = list(group[0].path)
        page_ids = sorted({b.page_index for b in blocks})
        engine = sorted({e for i in page_ids if i in pages and (e := pages[i].engine)})
        embed = text
        if any(p.index is not None for p in group):
            embed = "\n\n".join(p.text if p.index is None else p.index for p in group)
            if overlap:
                embed = f"{overlap}\n\n{embed}"
        chunk = Chunk(
            id="",
            text=text,
            kind=kind,
            heading_path=path,
            contextualized_text=contextualize(path, embed, plain=True),
            token_count=self.count(text) if self._recount else tokens,
            pages=page_ids,
            page_labels=[pages[i].label if i in pages else str(i + 1) for i in page_ids],
            page_sizes=[
                PageSize(i, pages[i].width, pages[i].height) for i in page_ids if i in pages
            ],
            boxes=[box for b in blocks for box in _boxes(b)],
            block_ids=[f"p{b.page_index}-b{b.order}" for b in blocks],
            source=document.source,
            document_sha256=document.sha256,
            engine=",".join(engine or engines) or None,
        )
        for piece in group:
            extra = piece.extra
            if "table_part" in extra:
                chunk.table_part = extra["table_part"]
                chunk.table_parts = extra["table_parts"]
            if "table_keys" in extra:
                chunk.table_keys = extra["table_keys"]
            if "row_keys" in extra:
                chunk.row_keys = [*(chunk.row_keys or ()), *extra["row_keys"]]
            if "image_paths" in extra:
                chunk.image_paths = [*(chunk.image_paths or ()), *extra["image_paths"]]
        return chunk
