"""``LayoutNodeParser``: layout chunks as LlamaIndex nodes, for ``IngestionPipeline``.

Works on the page Documents of ``DeepOCRReader(mode="pages")``: each carries its page JSON, so
chunking needs no second engine run. Settings are pydantic fields, so the pipeline's cache key
changes when they do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import BaseNode, Document, IndexNode, NodeRelationship, TextNode
from pydantic import Field

from deepocr_loaders.records import (
    BULKY_KEYS,
    PAGE_JSON_KEY,
    ROW_KEY_EXCLUDED_KEYS,
    document_from_records,
    page_id,
)

from ._metadata import exclusions

__all__ = ["LayoutNodeParser"]


class LayoutNodeParser(NodeParser):
    """Splits DeepOCR page Documents along headings, tables, figures and equations.

    With ``row_key_nodes=True`` each chunk holding named table rows is followed by one
    ``IndexNode`` per row: its text is the row's key (``Asset FA-8514``), it embeds nothing
    else, and its ``obj`` is the chunk, so ``VectorStoreIndex(nodes).as_retriever()`` returns
    the chunk when a question names the row. Ask for a larger ``similarity_top_k``: hits on
    one chunk collapse into one result. Each key node stores a copy of its chunk.
    """

    max_tokens: int = Field(400, description="chunk budget in tokens")
    min_tokens: int | None = Field(None, description="small neighbours merge up to this")
    overlap_tokens: int = Field(0, description="tokens repeated between neighbouring chunks")
    include_furniture: bool = Field(False, description="keep page headers/footers in chunks")
    row_key_nodes: bool = Field(
        False,
        description="also return an IndexNode per named table row (its key, e.g. 'Asset "
        "FA-8514') that resolves to the row's chunk: lookups by id in long tables",
    )
    tokenizer: Any = Field(
        None,
        exclude=True,
        description="token counter for the budget: a str -> int callable, a Hugging Face "
        "tokenizer or a tiktoken encoding (default: a fast approximation)",
    )

    @classmethod
    def class_name(cls) -> str:
        return "LayoutNodeParser"

    def _parse_nodes(
        self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any
    ) -> list[BaseNode]:
        from chunking import LayoutChunker

        chunker = LayoutChunker(
            self.max_tokens,
            self.min_tokens,
            overlap_tokens=self.overlap_tokens,
            tokenizer=self.tokenizer,
            include_furniture=self.include_furniture,
        )
        ours = [n for n in nodes if PAGE_JSON_KEY in n.metadata]
        foreign = [n for n in nodes if PAGE_JSON_KEY not in n.metadata]
        if foreign:
            raise ValueError(
                f"LayoutNodeParser needs page Documents from DeepOCRReader(mode='pages'); "
                f"{len(foreign)} node(s) lack the {PAGE_JSON_KEY!r} metadata "
                f"(first: {foreign[0].node_id})"
            )
        by_page = {n.node_id: n for n in ours}
        extras = {
            n.node_id: {
                k: v
                for k, v in n.metadata.items()
                if k not in BULKY_KEYS and k not in ("page", "page_label", "status")
            }
            for n in ours
        }
        out: list[BaseNode] = []
        for doc in document_from_records(n.metadata for n in ours):
            previous: TextNode | None = None
            for chunk in chunker.chunk(doc):
                meta = chunk.flat_metadata()
                meta.pop("contextualized_text", None)
                source = by_page.get(page_id(doc.sha256, int(chunk.metadata.get("page_start", 0))))
                if source is not None:
                    meta = {**extras[source.node_id], **meta}
                meta.setdefault("page", meta.get("page_start", 0))
                inherited = (
                    (source.excluded_embed_metadata_keys, source.excluded_llm_metadata_keys)
                    if source is not None
                    else ((), ())
                )
                node = TextNode(
                    id_=chunk.id, text=chunk.text, metadata=meta, **exclusions(meta, *inherited)
                )
                if source is not None:
                    node.relationships[NodeRelationship.SOURCE] = source.as_related_node_info()
                if self.include_prev_next_rel and previous is not None:
                    node.relationships[NodeRelationship.PREVIOUS] = previous.as_related_node_info()
                    previous.relationships[NodeRelationship.NEXT] = node.as_related_node_info()
                previous = node
                out.append(node)
                if self.row_key_nodes:
                    out.extend(_row_key_nodes(node, chunk.metadata.get("row_keys", [])))
        # Pages that did not convert pass through as their note: reported, never dropped.
        for page_node in ours:
            if page_node.metadata.get("status", "ok") != "ok":
                meta = {k: v for k, v in page_node.metadata.items() if k != PAGE_JSON_KEY}
                node = TextNode(
                    id_=page_node.node_id,
                    text=page_node.get_content(),
                    metadata=meta,
                    **exclusions(
                        meta,
                        page_node.excluded_embed_metadata_keys,
                        page_node.excluded_llm_metadata_keys,
                    ),
                )
                node.relationships[NodeRelationship.SOURCE] = page_node.as_related_node_info()
                out.append(node)
        return out

    def _postprocess_parsed_nodes(
        self, nodes: list[BaseNode], parent_doc_map: dict[str, Document]
    ) -> list[BaseNode]:
        # The base class would copy each page's metadata (its whole page JSON) into every node
        # and link neighbours by source page only; relationships are already set above.
        return nodes


def _row_key_nodes(chunk_node: TextNode, keys: list[str]) -> list[IndexNode]:
    """One node per row key: the key alone is embedded, the chunk is what retrieval returns.
    Small metadata (file, pages, headings) is kept for filters."""
    meta = {k: v for k, v in chunk_node.metadata.items() if k not in ROW_KEY_EXCLUDED_KEYS}
    # Passed as a mapping: mypy's pydantic view knows ``metadata`` only by its alias.
    fields: dict[str, Any] = {
        "metadata": meta,
        "excluded_embed_metadata_keys": list(meta),
        "excluded_llm_metadata_keys": list(meta),
    }
    return [
        IndexNode(
            id_=f"{chunk_node.node_id}-key{n}",
            text=key,
            index_id=chunk_node.node_id,
            obj=chunk_node,
            **fields,
        )
        for n, key in enumerate(keys)
    ]
