"""A chunk's LangChain metadata: its page document's keys, then the chunk's own.

LangChain's PDF loaders (PyMuPDFLoader) name a page ``source`` and ``file_path`` (the path),
``page`` (0-based), ``page_label``, ``total_pages`` and the PDF's info fields; stock splitters
copy every key of their input. A chunk here does the same: it keeps its first page document's
keys (a user's ``tenant`` or ``url`` included), less the internal page key, and adds its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chunking import Chunk
from deepocr_loaders.records import INTERNAL_KEYS

__all__ = ["chunk_metadata", "inherited"]


def inherited(page_metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The keys a chunk takes over from its page document: all but the internal ones.

    Args:
        page_metadata: the page document's metadata.
    """
    return {k: v for k, v in page_metadata.items() if k not in INTERNAL_KEYS}


def chunk_metadata(
    chunk: Chunk, page_metadata: Mapping[str, Any], *, flat: bool = True
) -> dict[str, Any]:
    """LangChain metadata for ``chunk``.

    Args:
        chunk: the chunk.
        page_metadata: the metadata of the page document the chunk starts on.
        flat: lists and dicts as JSON strings (``boxes``, ``pages``...), so that every value is
            a str, int, float or bool, as Chroma and ``filter_complex_metadata`` want.
    """
    own: dict[str, Any] = (
        chunk.flat_metadata(exclude=("contextualized_text",))
        if flat
        else {k: v for k, v in chunk.metadata.items() if k != "contextualized_text"}
    )
    meta = {**inherited(page_metadata), **own}
    meta["source"] = chunk.source
    meta.setdefault("file_path", chunk.source)
    meta["page"] = chunk.page_start if chunk.page_start is not None else 0
    meta["page_label"] = chunk.page_label_start or ""
    return meta
