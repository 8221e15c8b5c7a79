"""``LayoutTextSplitter``: layout chunks from the loader's page Documents, ids kept."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from langchain_core.documents import BaseDocumentTransformer
from langchain_core.documents import Document as LCDocument

from chunking import ChunkerSettings, LayoutChunker, settings_from
from chunking.headings import contextualize
from deepocr_loaders.records import ROW_KEY_EXCLUDED_KEYS, has_page, stream_documents

from ._metadata import chunk_metadata, inherited

__all__ = ["LayoutTextSplitter"]


class LayoutTextSplitter(BaseDocumentTransformer):
    """Splits DeepOCR page Documents along headings, tables, figures and equations.

    Every chunk gets a deterministic ``id`` (same input, same ids: safe upserts and
    ``index(..., cleanup="incremental")``) and keeps its page document's metadata (``source``,
    ``file_path``, PDF info, any key you added) with its own on top: ``page`` (0-based, first
    page), ``page_label``, ``headings``, ``kind``, ``boxes``...

    A vector store embeds ``page_content``, so with ``prepend_headings`` (default) it starts
    with the chunk's heading path (``Manual > 3. Pumps > 3.2 Maintenance``): a paragraph that
    only its section heading tells apart from its look-alikes stays findable. The path is
    also in ``metadata["headings"]``.

    For lookups by id in long tables, :meth:`multi_vector_documents` gives what a
    ``MultiVectorRetriever`` (``langchain-classic``) embeds: each chunk, and one short
    document per named table row (``Asset FA-8514``), all pointing to the chunk's id.

    Args:
        settings: the chunker's settings (:class:`chunking.ChunkerSettings`).
        flat_metadata: only str/int/float/bool values (lists as JSON strings).
        prepend_headings: ``page_content`` starts with the heading path.
        contextualized: ``page_content`` is the chunk's ``contextualized_text`` (a split
            table's row group gives its keys, not its cells): for a store that embeds what the
            LLM never reads back.
        cache: the page cache to find pages in that this process did not load.
        **chunker_options: :class:`chunking.ChunkerSettings` fields (``max_tokens=400``...),
            over ``settings``.
    """

    def __init__(
        self,
        settings: ChunkerSettings | None = None,
        *,
        flat_metadata: bool = True,
        prepend_headings: bool = True,
        contextualized: bool = False,
        cache: str | os.PathLike[str] | bool | None = True,
        **chunker_options: Any,
    ) -> None:
        self.settings = settings_from(settings, **chunker_options)
        self.chunker = LayoutChunker(settings=self.settings)
        self.flat_metadata = flat_metadata
        self.prepend_headings = prepend_headings
        self.contextualized = contextualized
        self.cache = cache

    def split_documents(self, documents: Sequence[LCDocument]) -> list[LCDocument]:
        """Chunk Documents with ids (LangChain's stock ``split_documents`` drops ids).

        Args:
            documents: page Documents from :class:`DeepOCRLoader` / :class:`DeepOCRBlobParser`.
        """
        foreign = [d for d in documents if not has_page(d.metadata)]
        if foreign:
            raise ValueError(
                "LayoutTextSplitter needs page Documents from DeepOCRLoader/DeepOCRBlobParser; "
                f"{len(foreign)} Document(s) lack 'deepocr_page_key'"
            )
        return list(self.lazy_split_documents(documents))

    def lazy_split_documents(self, documents: Iterable[LCDocument]) -> Iterator[LCDocument]:
        """Chunks of a page stream (``DeepOCRLoader(...).lazy_load()``), each document's as
        soon as its last page went by: the same chunks and ids as :meth:`split_documents` on
        the whole list, holding one document's pages at a time. Split a stream this way, not
        page by page: chunks follow sections across pages.

        Args:
            documents: page Documents, each file's pages together (as the loader yields them).
        """
        for doc, pages in stream_documents(
            self._checked(documents), lambda d: d.metadata, cache=self.cache
        ):
            by_index = {d.metadata.get("page"): d for d in pages}
            for chunk in self.chunker.chunk(doc):
                page_doc = by_index.get(chunk.page_start, pages[0])
                content = chunk.text
                if self.contextualized:
                    content = chunk.contextualized_text
                elif self.prepend_headings and chunk.headings:
                    # The path once: not again as the heading lines the text opens with.
                    content = contextualize(chunk.heading_path, chunk.text)
                meta = chunk_metadata(chunk, page_doc.metadata, flat=self.flat_metadata)
                yield LCDocument(id=chunk.id, page_content=content, metadata=meta)
            # Pages that did not convert pass through: reported, never silently dropped.
            for page_doc in pages:
                if page_doc.metadata.get("status", "ok") != "ok":
                    yield LCDocument(
                        id=page_doc.id,
                        page_content=page_doc.page_content,
                        metadata=inherited(page_doc.metadata),
                    )

    @staticmethod
    def _checked(documents: Iterable[LCDocument]) -> Iterator[LCDocument]:
        for doc in documents:
            if not has_page(doc.metadata):
                raise ValueError(
                    "LayoutTextSplitter needs page Documents from DeepOCRLoader/"
                    "DeepOCRBlobParser; a Document lacks 'deepocr_page_key'"
                )
            yield doc

    @staticmethod
    def multi_vector_documents(
        chunks: Sequence[LCDocument], id_key: str = "doc_id"
    ) -> list[LCDocument]:
        """The documents to embed for a multi-vector index over ``chunks`` (from
        :meth:`split_documents`): each chunk as it is, then one per row key of its tables, all
        with ``metadata[id_key]`` = the chunk's id. Store the chunks themselves by id in the
        retriever's docstore::

            retriever = MultiVectorRetriever(vectorstore=store, byte_store=InMemoryByteStore())
            retriever.vectorstore.add_documents(splitter.multi_vector_documents(chunks))
            retriever.docstore.mset([(c.id, c) for c in chunks])

        Args:
            chunks: chunks from :meth:`split_documents`.
            id_key: the metadata key the retriever looks the chunk id up under.
        """
        out: list[LCDocument] = []
        for chunk in chunks:
            if chunk.id is None:
                raise ValueError("multi_vector_documents needs chunks with ids (split_documents)")
            small = {k: v for k, v in chunk.metadata.items() if k not in ROW_KEY_EXCLUDED_KEYS}
            out.append(
                LCDocument(page_content=chunk.page_content, metadata={**small, id_key: chunk.id})
            )
            keys = chunk.metadata.get("row_keys") or []
            if isinstance(keys, str):  # the flat metadata view stores lists as JSON
                keys = json.loads(keys)
            out.extend(
                LCDocument(page_content=key, metadata={**small, id_key: chunk.id}) for key in keys
            )
        return out

    def transform_documents(
        self, documents: Sequence[LCDocument], **kwargs: Any
    ) -> Sequence[LCDocument]:
        return self.split_documents(documents)
