"""Plain records for framework adapters: page text + metadata, and back to a Document.

The LlamaIndex and LangChain packages wrap these in their own Document types; keeping the
mapping here means both frameworks see the same keys and the same stable ids.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from . import page_store
from .cache import PageCache
from .document import Document, Page, PageStatus

__all__ = [
    "BULKY_KEYS",
    "EMBED_EXCLUDED_KEYS",
    "INTERNAL_KEYS",
    "LLM_EXCLUDED_KEYS",
    "PAGE_JSON_KEY",
    "PAGE_KEY",
    "ROW_KEY_EXCLUDED_KEYS",
    "PageRecord",
    "document_from_records",
    "has_page",
    "page_id",
    "page_record",
    "pdf_info",
    "stream_documents",
]

T = TypeVar("T")

#: Metadata key holding the page's full JSON (blocks and boxes), only when asked for
#: (``with_page_json=True``): a page document that must be split in a process that shares
#: neither memory nor the page cache with the one that loaded it.
PAGE_JSON_KEY = "deepocr_page"

#: Metadata key holding the page's page-cache key, by which the layout splitters find the page
#: (:mod:`deepocr_loaders.page_store`) while the page document itself stays small.
PAGE_KEY = "deepocr_page_key"

#: Keys only our splitters read; a chunk never inherits them from its page document.
INTERNAL_KEYS = frozenset({PAGE_JSON_KEY, PAGE_KEY})

#: PDF info fields as LangChain's PyMuPDFLoader names them, from PyMuPDF's names.
_INFO_FIELDS = {
    "format": "format",
    "title": "title",
    "author": "author",
    "subject": "subject",
    "keywords": "keywords",
    "creator": "creator",
    "producer": "producer",
    "creationDate": "creationdate",
    "modDate": "moddate",
    "trapped": "trapped",
}


#: Keys that help citations and re-chunking but only add noise (and length) to an embedding or
#: an LLM prompt; adapters exclude them from both.
BULKY_KEYS = (
    PAGE_JSON_KEY,
    PAGE_KEY,
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
    *_INFO_FIELDS.values(),
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

#: Keys left out of an LLM prompt: the bulky ones, 0-based page indices (a model citing them
#: would be off by one or more: the prompt shows the printed ``page_label``), and keys written
#: for the embedding only (the text holds the cells).
LLM_EXCLUDED_KEYS = (
    *BULKY_KEYS,
    "source",
    "page",
    "page_start",
    "page_end",
    "page_label_start",
    "table_keys",
    # PDF info fields that tell a reader nothing about the content (title, author, subject,
    # keywords and dates stay).
    "format",
    "creator",
    "producer",
    "trapped",
)

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


def _iso_date(value: str) -> str:
    """A PDF date (``D:20240131120000+01'00'``) in ISO 8601, or the value as it is."""
    text = value.replace("'", "")
    for fmt in ("D:%Y%m%d%H%M%S%z", "D:%Y%m%d%H%M%S", "D:%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).isoformat("T")
        except ValueError:
            continue
    return value


def pdf_info(document_metadata: Mapping[str, Any]) -> dict[str, str]:
    """The PDF's info fields that it has (title, author, dates...), named and formatted as
    LangChain's PyMuPDFLoader gives them (lower case; dates in ISO 8601).

    Args:
        document_metadata: ``Document.metadata`` (PyMuPDF's info dictionary, flattened).
    """
    info: dict[str, str] = {}
    for ours, theirs in _INFO_FIELDS.items():
        value = document_metadata.get(ours)
        if not isinstance(value, str) or not value.strip():
            continue
        value = value.strip()
        info[theirs] = _iso_date(value) if theirs in ("creationdate", "moddate") else value
    return info


def page_record(
    doc: Document, page: Page, *, page_key: str | None = None, with_page_json: bool = False
) -> PageRecord:
    """The page's Markdown and LangChain-style flat metadata (``page`` is 0-based).

    Args:
        doc: the document the page belongs to (its source, hash, page count, PDF info).
        page: the page.
        page_key: the page's page-cache key (``DocumentStream.page_keys``), written as
            ``deepocr_page_key``; the page is kept in this process under it
            (:func:`page_store.remember`) and, with the page cache on, found there too. Without
            one, a key is made from the page's content, found in this process only.
        with_page_json: also write the whole page as JSON (``deepocr_page``): 3-17 KB that a
            stock splitter would copy into every chunk; only for splitting elsewhere.
    """
    meta: dict[str, Any] = {
        "source": doc.source,
        "file_path": doc.source,
        "file_name": doc.source.replace("\\", "/").rsplit("/", 1)[-1],
        "page": page.index,
        "page_label": page.label,
        "total_pages": doc.page_count,
        **pdf_info(doc.metadata),
        "document_sha256": doc.sha256,
        "engine": page.engine or "",
        "status": page.status.value,
        "page_width": float(page.width),
        "page_height": float(page.height),
    }
    if page.error:
        meta["error"] = page.error
    page_json = json.dumps(page.to_dict(), ensure_ascii=False) if with_page_json else None
    if page_key is None:
        data = page_json or json.dumps(page.to_dict(), ensure_ascii=False)
        page_key = "content-" + hashlib.sha256(f"{doc.sha256}\x1f{data}".encode()).hexdigest()
    meta[PAGE_KEY] = page_key
    page_store.remember(page_key, page)
    if page_json is not None:
        meta[PAGE_JSON_KEY] = page_json
    text = page.markdown
    if not page.ok and not text:
        # An empty string would vanish in most stores; say what happened instead.
        text = f"<!-- page {page.label} {page.status.value}: {page.error or ''} -->"
    return PageRecord(page_id(doc.sha256, page.index), text, meta)


def _page_of(
    meta: Mapping[str, Any], cache: PageCache | str | os.PathLike[str] | bool | None
) -> Page:
    if PAGE_JSON_KEY in meta:
        return Page.from_dict(json.loads(meta[PAGE_JSON_KEY]))
    key = meta.get(PAGE_KEY)
    page = page_store.recall(str(key), cache) if key else None
    if page is None and key and meta.get("status", "ok") != "ok":
        # The cache keeps finished pages only; a page that did not convert has no blocks to
        # chunk, and its document passes it through as it is.
        return Page(
            index=int(meta.get("page", 0)),
            width=float(meta.get("page_width", 0.0)),
            height=float(meta.get("page_height", 0.0)),
            label=str(meta.get("page_label", "")),
            status=PageStatus(meta["status"]),
            error=meta.get("error"),
        )
    if page is None:
        raise KeyError(
            f"page {meta.get('page_label', '?')} of {meta.get('source', '?')!r} cannot be found: "
            + (
                f"its {PAGE_KEY!r} is neither in this process nor in the page cache (load it "
                "with the page cache on, or with with_page_json=True to split it elsewhere)"
                if key
                else f"the metadata has neither {PAGE_KEY!r} nor {PAGE_JSON_KEY!r}: these pages "
                "were not loaded by a deepocr-loaders reader/loader"
            )
        )
    return page


def _doc_key(meta: Mapping[str, Any]) -> tuple[str, str]:
    return str(meta.get("document_sha256", "")), str(meta.get("source", meta.get("file_path", "")))


def _assemble(key: tuple[str, str], metas: list[Mapping[str, Any]], pages: list[Page]) -> Document:
    doc = Document(source=key[1], sha256=key[0], page_count=int(metas[0].get("total_pages", 0)))
    doc.pages = sorted(pages, key=lambda p: p.index)
    doc.page_count = max(doc.page_count, len(doc.pages))
    return doc


def has_page(meta: Mapping[str, Any]) -> bool:
    """Whether ``meta`` comes from one of our page documents (it can find its page).

    Args:
        meta: a page document's metadata.
    """
    return PAGE_KEY in meta or PAGE_JSON_KEY in meta


def document_from_records(
    records: Iterable[Mapping[str, Any]],
    *,
    cache: PageCache | str | os.PathLike[str] | bool | None = True,
) -> list[Document]:
    """Rebuild Documents from page metadata dicts (as :func:`page_record` wrote them).

    Pages are grouped by document hash (then source), in first-seen document order and page
    order. A page is its page JSON when the metadata holds it, else the page its
    ``deepocr_page_key`` names (this process's recent pages, then the page cache).

    Args:
        records: page metadata dicts.
        cache: the page cache to look pages up in (True: the default location).

    Raises:
        KeyError: naming a page that cannot be found.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for meta in records:
        groups.setdefault(_doc_key(meta), []).append(meta)
    return [
        _assemble(key, metas, [_page_of(m, cache) for m in metas]) for key, metas in groups.items()
    ]


def stream_documents(
    items: Iterable[T],
    metadata: Callable[[T], Mapping[str, Any]],
    *,
    cache: PageCache | str | os.PathLike[str] | bool | None = True,
) -> Iterator[tuple[Document, list[T]]]:
    """The Documents of a stream of page documents, each as soon as its last page went by (the
    next item is of another document, or the stream ended), with its items: splitting a
    streamed load this way gives what splitting the whole list does, holding one document's
    pages at a time.

    Args:
        items: page documents (any type), each document's pages together.
        metadata: an item's metadata dict.
        cache: the page cache to look pages up in (True: the default location).
    """
    key: tuple[str, str] | None = None
    group: list[T] = []
    metas: list[Mapping[str, Any]] = []
    pages: list[Page] = []
    for item in items:
        meta = metadata(item)
        this = _doc_key(meta)
        if key is not None and this != key:
            yield _assemble(key, metas, pages), group
            group, metas, pages = [], [], []
        key = this
        group.append(item)
        metas.append(meta)
        # Found as it arrives, while it is still among this process's recent pages.
        pages.append(_page_of(meta, cache))
    if key is not None:
        yield _assemble(key, metas, pages), group
