"""A chunk's LlamaIndex metadata, and which keys go into the embedding and the LLM prompt.

LlamaIndex's own readers name the file ``file_path`` and ``file_name`` and the page
``page_label`` (the printed label, what the LLM reads back in a citation); their ``source`` is a
page number in some readers, so ours has none. 0-based indices (``page``, ``page_start``...)
stay in the metadata for filters but out of the LLM's view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chunking import Chunk
from deepocr_loaders.records import EMBED_EXCLUDED_KEYS, INTERNAL_KEYS, LLM_EXCLUDED_KEYS

__all__ = ["chunk_metadata", "exclusions", "page_metadata"]


def page_metadata(record_metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A page record's metadata as LlamaIndex names it: ``file_path`` for the path, no
    ``source``.

    Args:
        record_metadata: :func:`deepocr_loaders.records.page_record`'s metadata.
    """
    return {k: v for k, v in record_metadata.items() if k != "source"}


def chunk_metadata(
    chunk: Chunk, inherited: Mapping[str, Any], *, flat: bool = True
) -> dict[str, Any]:
    """LlamaIndex metadata for ``chunk``.

    Args:
        chunk: the chunk.
        inherited: what the chunk keeps: its page document's metadata, or the reader's
            ``extra_info`` (``SimpleDirectoryReader``'s file keys, a user's own keys).
        flat: lists and dicts as JSON strings, for scalar-only vector stores.
    """
    own: dict[str, Any] = (
        chunk.flat_metadata(exclude=("contextualized_text", "source"))
        if flat
        else {k: v for k, v in chunk.metadata.items() if k not in ("contextualized_text", "source")}
    )
    kept = {k: v for k, v in inherited.items() if k not in INTERNAL_KEYS and k != "source"}
    meta = {**kept, **own}
    meta["file_path"] = kept.get("file_path") or chunk.source
    meta["file_name"] = kept.get("file_name") or chunk.source.replace("\\", "/").rsplit("/", 1)[-1]
    meta["page"] = chunk.page_start if chunk.page_start is not None else 0
    meta["page_label"] = chunk.page_label_start or ""
    return meta


def exclusions(
    metadata: Mapping[str, Any], embed: Iterable[str] = (), llm: Iterable[str] = ()
) -> dict[str, list[str]]:
    """``excluded_embed_metadata_keys`` / ``excluded_llm_metadata_keys`` for a node.

    LlamaIndex embeds every metadata key it is not told to leave out, so page numbers, paths
    and counts would crowd the embedding model's short window; the embedding gets the
    ``headings`` (and a table part's ``table_keys``) with the text. The LLM reads the file
    name, printed page labels, headings and kind, never a 0-based index.

    Args:
        metadata: the node's metadata.
        embed: keys a source node already left out of its embedding (e.g.
            ``SimpleDirectoryReader``'s file dates).
        llm: keys a source node already left out of the LLM prompt.
    """
    embed_keys = {*EMBED_EXCLUDED_KEYS, *embed}
    llm_keys = {*LLM_EXCLUDED_KEYS, *llm}
    if metadata.get("page_label_end") == metadata.get("page_label"):
        llm_keys.add("page_label_end")  # a one-page chunk: page_label says it all
    embed_out = [k for k in metadata if k in embed_keys]
    llm_out = [k for k in metadata if k in llm_keys]
    return {"excluded_embed_metadata_keys": embed_out, "excluded_llm_metadata_keys": llm_out}
