"""The chunk a retriever sees: id, Markdown text, and provenance metadata."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Chunk", "ChunkKind"]


class ChunkKind:
    """Values of ``metadata["kind"]``."""

    TEXT = "text"
    TABLE = "table"
    FIGURE = "figure"
    EQUATION = "equation"
    MIXED = "mixed"


_SCALARS = (str, int, float, bool)


@dataclass
class Chunk:
    """One chunk: a deterministic ``id``, Markdown ``text`` and a ``metadata`` dict.

    Metadata keys: ``chunk_index``, ``kind``, ``heading_path`` (list, title first), ``headings``
    (the path joined with `` > ``), ``contextualized_text`` (what to embed), ``token_count``,
    ``page_start``/``page_end`` (0-based), ``page_label_start``/``page_label_end`` (printed
    labels), ``pages``, ``page_labels``, ``page_width``/``page_height`` (first page, points),
    ``page_sizes``, ``boxes`` (``{page, x0, y0, x1, y1}`` per block box, points, top-left origin),
    ``block_ids``, ``source``, ``document_sha256``, ``engine``; when they apply ``table_part`` and
    ``table_parts``, ``table_keys`` (a row group's column names and row keys, the part of
    ``contextualized_text`` that stands for its cells), ``row_keys``, ``image_paths``,
    ``overlap_tokens``.

    ``row_keys`` lists, for a table whose rows are named (an id, a label: not numbers), one
    short text per row in the chunk: ``Asset FA-8514``, or ``Wastewater: Revenue`` under a
    label row. Indexed as extra vectors that point to the chunk (a multi-vector index, e.g.
    ``LayoutNodeParser(row_key_nodes=True)``), they let a dense retriever find a row by its
    id, which one embedding of many look-alike rows cannot.
    """

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def contextualized_text(self) -> str:
        """Heading path plus text, the string to embed; a table split into row groups gives,
        by default, its captions, column names and row keys instead of its cells (see
        ``LayoutChunker(table_embedding=...)``)."""
        return str(self.metadata.get("contextualized_text", self.text))

    @property
    def kind(self) -> str:
        return str(self.metadata.get("kind", ChunkKind.TEXT))

    @property
    def heading_path(self) -> list[str]:
        return list(self.metadata.get("heading_path", []))

    def flat_metadata(
        self, *, keep_scalar_lists: bool = False, exclude: Iterable[str] = ()
    ) -> dict[str, str | int | float | bool | list[str] | list[int] | list[float]]:
        """Metadata a scalar-only vector store accepts (Chroma, Pinecone, Milvus...).

        None values and empty lists, dicts and strings are left out; lists and dicts become
        JSON strings (``boxes`` included), unless ``keep_scalar_lists`` keeps non-empty lists
        whose items are all of one scalar type, for stores that accept those. ``exclude`` drops
        keys, e.g. ``contextualized_text`` when the store already holds it as the document.
        """
        skip = set(exclude)
        flat: dict[str, Any] = {}
        for key, value in self.metadata.items():
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

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "metadata": self.metadata}
