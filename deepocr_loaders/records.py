"""Plain records for framework adapters: page text + metadata, and back to a Document.

The LlamaIndex and LangChain packages wrap these in their own Document types; keeping the
mapping here means both frameworks see the same keys and the same stable ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .document import Document, Page

__all__ = [
    "BULKY_KEYS",
    "EMBED_EXCLUDED_KEYS",
    "LLM_EXCLUDED_KEYS",
    "PAGE_JSON_KEY",
    "ROW_KEY_EXCLUDED_KEYS",
    "PageRecord",
    "document_from_records",
    "page_id",
    "page_record",
]

#: Metadata key holding the page's full JSON (blocks and boxes), so a node parser or splitter
#: downstream can chunk by layout without re-running the engine.
PAGE_JSON_KEY = "deepocr_page"

#: Keys that help citations and re-chunking but only add noise (and length) to an embedding or
#: an LLM prompt; adapters exclude them from both.
BULKY_KEYS = (
    PAGE_JSON_KEY,
    "boxes",
    "block_ids",
    "document_sha256",
    "page_sizes",
    "page_width",
    "page_height",
    "contextualized_text",
    "chunk_id",
    "status",
    "error",
    "engine",
    "heading_path",
    "page_labels",
    "pages",
    "token_count",
    "overlap_tokens",
    "chunk_index",
    "image_paths",
    "row_keys",
)


#: Keys an LLM may read (citations) but that are noise to an embedding model: page numbers,
#: counts, paths, part numbers. Adapters embed a chunk's text with its ``headings``, its
#: ``table_keys`` and any metadata the caller added.
EMBED_EXCLUDED_KEYS = (
    *BULKY_KEYS,
    "source",
    "file_name",
    "file_path",
    "total_pages",
    "page",
    "page_label",
    "kind",
    "page_start",
    "page_end",
    "page_label_start",
    "page_label_end",
    "table_part",
    "table_parts",
)

#: Keys written for the embedding only, left out of an LLM prompt (the text holds the cells).
LLM_EXCLUDED_KEYS = (*BULKY_KEYS, "table_keys")

#: Keys a row-key vector's copy of its chunk's metadata leaves out (it keeps what filters read:
#: file, pages, headings); retrieval returns the chunk itself, with everything.
ROW_KEY_EXCLUDED_KEYS = frozenset({*BULKY_KEYS, "table_keys"})


def page_id(document_sha256: str, page_index: int) -> str:
    """Stable id of one page of one document: the same bytes give the same id on every run."""
    return f"{document_sha256[:32]}-p{page_index}"


@dataclass
class PageRecord:
    """One page as text plus flat metadata (str/int/float only), with a stable id."""

    id: str
    text: str
    metadata: dict[str, Any]


def page_record(doc: Document, page: Page, *, with_page_json: bool = True) -> PageRecord:
    """The page's Markdown and LangChain-style flat metadata (``page`` is 0-based)."""
    meta: dict[str, Any] = {
        "source": doc.source,
        "file_name": doc.source.replace("\\", "/").rsplit("/", 1)[-1],
        "page": page.index,
        "page_label": page.label,
        "total_pages": doc.page_count,
        "document_sha256": doc.sha256,
        "engine": page.engine or "",
        "status": page.status.value,
        "page_width": float(page.width),
        "page_height": float(page.height),
    }
    if page.error:
        meta["error"] = page.error
    if with_page_json:
        meta[PAGE_JSON_KEY] = json.dumps(page.to_dict(), ensure_ascii=False)
    text = page.markdown
    if not page.ok and not text:
        # An empty string would vanish in most stores; say what happened instead.
        text = f"<!-- page {page.label} {page.status.value}: {page.error or ''} -->"
    return PageRecord(page_id(doc.sha256, page.index), text, meta)


def document_from_records(records: Iterable[Mapping[str, Any]]) -> list[Document]:
    """Rebuild Documents from page metadata dicts (as :func:`page_record` wrote them).

    Pages are grouped by document hash (then source), in first-seen document order and page
    order; metadata without the page JSON is skipped by the caller's choice, not here: it raises
    ``KeyError`` naming the missing key.
    """
    docs: dict[tuple[str, str], Document] = {}
    for meta in records:
        if PAGE_JSON_KEY not in meta:
            raise KeyError(
                f"metadata has no {PAGE_JSON_KEY!r}: these pages were not loaded by a "
                "deepocr-loaders reader/loader with page JSON kept"
            )
        key = (str(meta.get("document_sha256", "")), str(meta.get("source", "")))
        doc = docs.get(key)
        if doc is None:
            doc = docs[key] = Document(
                source=key[1], sha256=key[0], page_count=int(meta.get("total_pages", 0))
            )
        doc.pages.append(Page.from_dict(json.loads(meta[PAGE_JSON_KEY])))
    for doc in docs.values():
        doc.pages.sort(key=lambda p: p.index)
        doc.page_count = max(doc.page_count, len(doc.pages))
    return list(docs.values())
