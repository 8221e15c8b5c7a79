"""``LayoutTextSplitter``: layout chunks from the loader's page Documents, ids kept."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.documents import BaseDocumentTransformer
from langchain_core.documents import Document as LCDocument

from deepocr_loaders.records import PAGE_JSON_KEY, ROW_KEY_EXCLUDED_KEYS, document_from_records

__all__ = ["LayoutTextSplitter"]


class LayoutTextSplitter(BaseDocumentTransformer):
    """Splits DeepOCR page Documents along headings, tables, figures and equations.

    Every chunk gets a deterministic ``id`` (same input, same ids: safe upserts and
    ``index(..., cleanup="incremental")``) and flat metadata, ``source`` included.

    A vector store embeds ``page_content``, so with ``prepend_headings`` (default) it starts
    with the chunk's heading path (``Manual > 3. Pumps > 3.2 Maintenance``): a paragraph that
    only its section heading tells apart from its look-alikes stays findable. The path is
    also in ``metadata["headings"]``.

    For lookups by id in long tables, :meth:`multi_vector_documents` gives what a
    ``MultiVectorRetriever`` (``langchain-classic``) embeds: each chunk, and one short
    document per named table row (``Asset FA-8514``), all pointing to the chunk's id.
    """

    def __init__(
        self,
        max_tokens: int = 400,
        min_tokens: int | None = None,
        *,
        overlap_tokens: int = 0,
        tokenizer: Any = None,
        include_furniture: bool = False,
        flat_metadata: bool = True,
        prepend_headings: bool = True,
    ) -> None:
        from chunking import LayoutChunker

        self.chunker = LayoutChunker(
            max_tokens,
            min_tokens,
            overlap_tokens=overlap_tokens,
            tokenizer=tokenizer,
            include_furniture=include_furniture,
        )
        self.flat_metadata = flat_metadata
        self.prepend_headings = prepend_headings

    def split_documents(self, documents: Sequence[LCDocument]) -> list[LCDocument]:
        """Chunk Documents with ids (LangChain's stock ``split_documents`` drops ids)."""
        foreign = [d for d in documents if PAGE_JSON_KEY not in d.metadata]
        if foreign:
            raise ValueError(
                "LayoutTextSplitter needs page Documents from DeepOCRLoader/DeepOCRBlobParser "
                f"(with page JSON); {len(foreign)} Document(s) lack {PAGE_JSON_KEY!r}"
            )
        out: list[LCDocument] = []
        # Pages that did not convert pass through unchanged: reported, never silently dropped.
        problems = [d for d in documents if d.metadata.get("status", "ok") != "ok"]
        for doc in document_from_records(d.metadata for d in documents):
            for chunk in self.chunker.chunk(doc):
                meta: dict[str, Any] = (
                    dict(chunk.flat_metadata()) if self.flat_metadata else dict(chunk.metadata)
                )
                meta.pop("contextualized_text", None)
                meta["page"] = chunk.metadata.get("page_start", 0)
                meta["page_label"] = chunk.metadata.get("page_label_start", "")
                meta["total_pages"] = doc.page_count
                meta["source"] = doc.source
                headings = chunk.metadata.get("headings")
                content = chunk.text
                if self.prepend_headings and headings:
                    content = f"{headings}\n\n{chunk.text}"
                out.append(LCDocument(id=chunk.id, page_content=content, metadata=meta))
        for page_doc in problems:
            meta = {k: v for k, v in page_doc.metadata.items() if k != PAGE_JSON_KEY}
            out.append(
                LCDocument(id=page_doc.id, page_content=page_doc.page_content, metadata=meta)
            )
        return out

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
