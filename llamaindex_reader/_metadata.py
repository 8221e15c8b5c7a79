"""Which metadata keys LlamaIndex puts into the embedding and into the LLM prompt."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from deepocr_loaders.records import EMBED_EXCLUDED_KEYS, LLM_EXCLUDED_KEYS

__all__ = ["exclusions"]


def exclusions(
    metadata: Mapping[str, Any], embed: Iterable[str] = (), llm: Iterable[str] = ()
) -> dict[str, list[str]]:
    """``excluded_embed_metadata_keys`` / ``excluded_llm_metadata_keys`` for a node.

    LlamaIndex embeds every metadata key it is not told to leave out, so page numbers, paths
    and counts would crowd the embedding model's short window; the embedding gets the
    ``headings`` (and a table part's ``table_keys``) with the text. ``embed`` and ``llm`` add
    keys a source node already excluded (e.g. ``SimpleDirectoryReader``'s file dates).
    """
    embed_keys = {*EMBED_EXCLUDED_KEYS, *embed}
    llm_keys = {*LLM_EXCLUDED_KEYS, *llm}
    embed_out = [k for k in metadata if k in embed_keys]
    llm_out = [k for k in metadata if k in llm_keys]
    return {"excluded_embed_metadata_keys": embed_out, "excluded_llm_metadata_keys": llm_out}
