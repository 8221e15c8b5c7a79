"""The chunk a retriever sees: one typed record with its id, text and provenance.

Every consumer (CLI, LlamaIndex and LangChain adapters, the highlighter, the inspect view)
reads these fields by attribute; ``metadata`` is the same record as a plain dict, for JSONL and
for callers that index by key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["Box", "Chunk", "ChunkKind", "PageSize"]


class ChunkKind:
    """Values of :attr:`Chunk.kind`."""

    TEXT = "text"
    TABLE = "table"
    FIGURE = "figure"
    EQUATION = "equation"
    MIXED = "mixed"


_SCALARS = (str, int, float, bool)


class Box(NamedTuple):
    """One box a chunk cites: its 0-based page and corners in PDF points, top-left origin."""

    page: int
    x0: float
    y0: float
    x1: float
    y1: float

    def to_dict(self) -> dict[str, float]:
        return {"page": self.page, "x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Box:
        return cls(
            int(data["page"]),
            float(data["x0"]),
            float(data["y0"]),
            float(data["x1"]),
            float(data["y1"]),
        )


class PageSize(NamedTuple):
    """A cited page's size in PDF points."""

    page: int
    width: float
    height: float

    def to_dict(self) -> dict[str, float]:
        return {"page": self.page, "width": self.width, "height": self.height}


@dataclass
class Chunk:
    """One chunk: a deterministic ``id``, Markdown ``text`` and its provenance.

    Pages are 0-based indices (``pages``) with their printed labels (``page_labels``, what a
    citation shows); ``boxes`` are the cited blocks' boxes, each with its own page, since a
    chunk may span pages. ``heading_path`` runs from the title down. ``contextualized_text`` is
    what to embed: the heading path plus the text as plain text (no Markdown emphasis, code
    ticks or heading marks), with a figure's captions and description
    instead of the text drawn inside it (tick labels), and for a table split into row groups
    of numbers (by default) its captions, column names and row keys instead of its cells (see
    ``LayoutChunker(table_embedding=...)``). A split table's parts number ``table_part`` of
    ``table_parts``; ``table_keys`` is the part's column names and row keys.

    ``row_keys`` lists, for a table whose rows are named (an id, a label: not numbers), one
    short text per row in the chunk: ``Asset FA-8514``, or ``Wastewater: Revenue`` under a
    label row. Indexed as extra vectors that point to the chunk (a multi-vector index, e.g.
    ``LayoutNodeParser(row_key_nodes=True)``), they let a dense retriever find a row by its
    id, which one embedding of many look-alike rows cannot.
    """

    id: str
    text: str
    kind: str = ChunkKind.TEXT
    heading_path: list[str] = field(default_factory=list)
    contextualized_text: str = ""
    token_count: int = 0
    chunk_index: int = 0
    pages: list[int] = field(default_factory=list)
    page_labels: list[str] = field(default_factory=list)
    page_sizes: list[PageSize] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    block_ids: list[str] = field(default_factory=list)
    source: str = ""
    document_sha256: str = ""
    engine: str | None = None
    table_part: int | None = None
    table_parts: int | None = None
    table_keys: str | None = None
    row_keys: list[str] | None = None
    """None when the chunk holds no table with named rows (an empty list: such a table, with
    none of its named rows in this part)."""
    image_paths: list[str] | None = None
    overlap_tokens: int | None = None

    # -- derived views ---------------------------------------------------------------------

    @property
    def headings(self) -> str:
        """The heading path joined with `` > ``."""
        return " > ".join(self.heading_path)

    @property
    def page_start(self) -> int | None:
        return self.pages[0] if self.pages else None

    @property
    def page_end(self) -> int | None:
        return self.pages[-1] if self.pages else None

    @property
    def page_label_start(self) -> str | None:
        return self.page_labels[0] if self.page_labels else None

    @property
    def page_label_end(self) -> str | None:
        return self.page_labels[-1] if self.page_labels else None

    @property
    def metadata(self) -> dict[str, Any]:
        """The record as a plain dict (lists and dicts as they are), as ``deepocr chunk``
        writes it. A new dict on every call: edit the chunk's fields, not this."""
        first = self.page_sizes[0] if self.page_sizes else None
        meta: dict[str, Any] = {
            "kind": self.kind,
            "heading_path": list(self.heading_path),
            "headings": self.headings,
            "contextualized_text": self.contextualized_text or self.text,
            "token_count": self.token_count,
            "page_start": self.page_start,
            "page_end": self.page_end,
            "page_label_start": self.page_label_start,
            "page_label_end": self.page_label_end,
            "pages": list(self.pages),
            "page_labels": list(self.page_labels),
            "page_width": first.width if first else None,
            "page_height": first.height if first else None,
            "page_sizes": [s.to_dict() for s in self.page_sizes],
            "boxes": [b.to_dict() for b in self.boxes],
            "block_ids": list(self.block_ids),
            "source": self.source,
            "document_sha256": self.document_sha256,
            "engine": self.engine,
        }
        optional: dict[str, Any] = {
            "table_part": self.table_part,
            "table_parts": self.table_parts,
            "table_keys": self.table_keys,
            "row_keys": None if self.row_keys is None else list(self.row_keys),
            "image_paths": None if self.image_paths is None else list(self.image_paths),
        }
        meta.update((k, v) for k, v in optional.items() if v is not None)
        meta["chunk_index"] = self.chunk_index
        if self.overlap_tokens is not None:
            meta["overlap_tokens"] = self.overlap_tokens
        return meta

    def flat_metadata(
        self, *, keep_scalar_lists: bool = False, exclude: Iterable[str] = ()
    ) -> dict[str, str | int | float | bool | list[str] | list[int] | list[float]]:
        """Metadata a scalar-only vector store accepts (Chroma, Pinecone, Milvus...).

        Args:
            keep_scalar_lists: keep non-empty lists whose items are all of one scalar type,
                for stores that accept those; otherwise lists and dicts become JSON strings
                (``boxes`` included).
            exclude: keys to leave out, e.g. ``contextualized_text`` when the store already
                holds it as the document.

        None values and empty lists, dicts and strings are left out.
        """
        return flatten(self.metadata, keep_scalar_lists=keep_scalar_lists, exclude=exclude)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "metadata": self.metadata}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chunk:
        """The chunk :meth:`to_dict` wrote (``metadata`` may be flat: JSON strings for lists)."""
        meta = dict(data.get("metadata") or {})
        for key in ("heading_path", "pages", "page_labels", "page_sizes", "boxes", "block_ids"):
            if isinstance(meta.get(key), str):
                meta[key] = json.loads(meta[key])
        for key in ("row_keys", "image_paths"):
            if isinstance(meta.get(key), str):
                meta[key] = json.loads(meta[key])
        text = str(data["text"])
        return cls(
            id=str(data["id"]),
            text=text,
            kind=str(meta.get("kind", ChunkKind.TEXT)),
            heading_path=list(meta.get("heading_path") or []),
            contextualized_text=str(meta.get("contextualized_text") or text),
            token_count=int(meta.get("token_count") or 0),
            chunk_index=int(meta.get("chunk_index") or 0),
            pages=[int(p) for p in meta.get("pages") or []],
            page_labels=[str(p) for p in meta.get("page_labels") or []],
            page_sizes=[
                PageSize(int(s["page"]), float(s["width"]), float(s["height"]))
                for s in meta.get("page_sizes") or []
            ],
            boxes=[Box.from_dict(b) for b in meta.get("boxes") or []],
            block_ids=[str(b) for b in meta.get("block_ids") or []],
            source=str(meta.get("source") or ""),
            document_sha256=str(meta.get("document_sha256") or ""),
            engine=meta.get("engine"),
            table_part=meta.get("table_part"),
            table_parts=meta.get("table_parts"),
            table_keys=meta.get("table_keys"),
            row_keys=None if meta.get("row_keys") is None else list(meta["row_keys"]),
            image_paths=None if meta.get("image_paths") is None else list(meta["image_paths"]),
            overlap_tokens=meta.get("overlap_tokens"),
        )


def flatten(
    metadata: Mapping[str, Any], *, keep_scalar_lists: bool = False, exclude: Iterable[str] = ()
) -> dict[str, Any]:
    """``metadata`` with only scalar values: see :meth:`Chunk.flat_metadata`.

    Args:
        metadata: any mapping.
        keep_scalar_lists: keep lists of one scalar type as lists.
        exclude: keys to leave out.
    """
    skip = set(exclude)
    flat: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in skip or value is None or (not isinstance(value, _SCALARS) and not value):
            continue
        if isinstance(value, str) and not value:
            continue
        if isinstance(value, _SCALARS):
            flat[key] = value
        elif (
            keep_scalar_lists
            and isinstance(value, list)
            and all(isinstance(v, _SCALARS) for v in value)
            and len({type(v) for v in value}) == 1
        ):
            flat[key] = list(value)
        else:
            flat[key] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return flat
