"""``LayoutNodeParser``: layout chunks as LlamaIndex nodes, for ``IngestionPipeline``.

Works on the page Documents of ``DeepOCRReader(mode="pages")``: each names its page by key
(found in this process or the page cache), so chunking needs no second engine run. Settings are
pydantic fields, so the pipeline's cache key changes when they do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from llama_index.core.node_parser import NodeParser
from llama_index.core.node_parser.node_utils import default_id_func
from llama_index.core.schema import (
    BaseNode,
    Document,
    IndexNode,
    MetadataMode,
    NodeRelationship,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.utils import get_tqdm_iterable
from pydantic import Field, PrivateAttr, field_serializer, model_validator

from chunking import Chunk, ChunkerSettings, LayoutChunker
from chunking.headings import without_named_headings
from deepocr_loaders.records import INTERNAL_KEYS, ROW_KEY_EXCLUDED_KEYS, has_page, stream_documents

from ._metadata import chunk_metadata, exclusions
from ._settings import fold_chunker_options

__all__ = ["LayoutNodeParser", "LayoutTextNode"]


class LayoutTextNode(TextNode):
    """A chunk as a node: the LLM reads its Markdown text with the metadata LlamaIndex shows
    it; the embedding model reads what the chunker makes for it
    (:attr:`chunking.Chunk.contextualized_text`): the heading path, unlabelled, then the text
    as plain text (no Markdown markup), a figure's captions without the tick labels drawn in
    it, a split table of numbers by its keys; any other metadata left in the embedding (a
    user's own keys) comes first, as ``key: value`` lines. Labels and markup are tokens that
    mean nothing to an embedder: on the real-document benchmark the ``headings:`` label
    alone cost 4 points of recall@5. It is a ``TextNode`` to every store and docstore (same
    class name, same fields) and its embedding text is not stored, so a node read back from one
    (or from an ``IngestionPipeline`` cache that kept the parser's output while the embedding
    model changed) embeds LlamaIndex's default again: its metadata lines and Markdown text."""

    _embed_text: str | None = PrivateAttr(default=None)

    def get_content(self, metadata_mode: MetadataMode = MetadataMode.NONE) -> str:
        if metadata_mode != MetadataMode.EMBED or not self._embed_text:
            return super().get_content(metadata_mode)
        excluded = set(self.excluded_embed_metadata_keys)
        others = self.metadata_separator.join(
            self.metadata_template.format(key=key, value=str(value))
            for key, value in self.metadata.items()
            if key not in excluded and key != "headings"
        )
        path = "" if "headings" in excluded else str(self.metadata.get("headings") or "")
        return "\n\n".join(part for part in (others, path, self._embed_text) if part)


class LayoutNodeParser(NodeParser):
    """Splits DeepOCR page Documents along headings, tables, figures and equations.

    Chunker options go in ``chunking`` (a :class:`chunking.ChunkerSettings`) or one by one
    (``LayoutNodeParser(max_tokens=400, table_embedding="keys")``). The base class's fields
    are honoured: ``include_metadata`` (a chunk keeps its page Document's metadata, less the
    internal page key), ``include_prev_next_rel`` (neighbours within a document, across pages),
    ``id_func`` (left at its default, ids are our stable content-derived ones; set, it is
    called as ``id_func(i, page_document)``) and ``show_progress``.

    With ``row_key_nodes=True`` each chunk holding named table rows is followed by one
    ``IndexNode`` per row: its text is the row's key (``Asset FA-8514``), it embeds nothing
    else, and its ``obj`` is the chunk, so ``VectorStoreIndex(nodes).as_retriever()`` returns
    the chunk when a question names the row. Ask for a larger ``similarity_top_k``: hits on
    one chunk collapse into one result. Each key node stores a copy of its chunk.
    """

    chunking: ChunkerSettings = Field(
        default_factory=ChunkerSettings,
        description="the chunker's settings (max_tokens, table_embedding...)",
    )
    row_key_nodes: bool = Field(
        False,
        description="also return an IndexNode per named table row (its key, e.g. 'Asset "
        "FA-8514') that resolves to the row's chunk: lookups by id in long tables",
    )
    cache: str | bool | None = Field(
        True, description="page cache to find pages in that this process did not load"
    )

    @model_validator(mode="before")
    @classmethod
    def _chunker_options(cls, data: Any) -> Any:
        return fold_chunker_options(data)

    @field_serializer("chunking")
    def _describe_chunking(self, value: ChunkerSettings) -> dict[str, Any]:
        return value.describe()

    @classmethod
    def class_name(cls) -> str:
        return "LayoutNodeParser"

    def _parse_nodes(
        self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any
    ) -> list[BaseNode]:
        foreign = [n for n in nodes if not has_page(n.metadata)]
        if foreign:
            raise ValueError(
                f"LayoutNodeParser needs page Documents from DeepOCRReader(mode='pages'); "
                f"{len(foreign)} node(s) lack the 'deepocr_page_key' metadata "
                f"(first: {foreign[0].node_id})"
            )
        chunker = LayoutChunker(settings=self.chunking)
        cache: str | os.PathLike[str] | bool | None = self.cache
        groups = stream_documents(nodes, lambda n: n.metadata, cache=cache)
        out: list[BaseNode] = []
        for doc, pages in get_tqdm_iterable(groups, show_progress, "Chunking documents"):
            by_index = {n.metadata.get("page"): n for n in pages}
            for chunk in chunker.chunk(doc):
                source = by_index.get(chunk.page_start, pages[0])
                meta = chunk_metadata(chunk, source.metadata if self.include_metadata else {})
                node_id = (
                    chunk.id if self.id_func is default_id_func else self.id_func(len(out), source)
                )
                # Passed as a mapping: mypy's pydantic view knows ``metadata`` only by its alias.
                fields: dict[str, Any] = {
                    "id_": node_id,
                    "text": _node_text(chunk, meta),
                    "metadata": meta,
                    **exclusions(
                        meta,
                        # A split table's keys are in the embedding text already.
                        [*source.excluded_embed_metadata_keys, "table_keys"],
                        source.excluded_llm_metadata_keys,
                    ),
                }
                node = LayoutTextNode(**fields)
                node._embed_text = _embed_text(chunk)
                node.relationships[NodeRelationship.SOURCE] = _related(source)
                out.append(node)
                if self.row_key_nodes:
                    out.extend(_row_key_nodes(node, chunk.row_keys or []))
            # Pages that did not convert pass through as their note: reported, never dropped.
            for page_node in pages:
                if page_node.metadata.get("status", "ok") != "ok":
                    meta = {k: v for k, v in page_node.metadata.items() if k not in INTERNAL_KEYS}
                    note = TextNode(
                        id_=page_node.node_id,
                        text=page_node.get_content(),
                        metadata=meta,
                        **exclusions(
                            meta,
                            page_node.excluded_embed_metadata_keys,
                            page_node.excluded_llm_metadata_keys,
                        ),
                    )
                    note.relationships[NodeRelationship.SOURCE] = _related(page_node)
                    out.append(note)
        return out

    def _postprocess_parsed_nodes(
        self, nodes: list[BaseNode], parent_doc_map: dict[str, Document]
    ) -> list[BaseNode]:
        # The base class merges each page Document's metadata into its nodes: without the
        # internal page key (and page JSON), which a chunk must not carry.
        slim = {
            doc_id: doc.model_copy(update={"metadata": _public(doc.metadata)})
            for doc_id, doc in parent_doc_map.items()
        }
        nodes = super()._postprocess_parsed_nodes(nodes, slim)
        # Keys the merge brought in (a page Document made without DeepOCRReader's exclusions,
        # e.g. with a ``source`` path) stay out of the embedding and the prompt like our own.
        for node in nodes:
            if not isinstance(node, IndexNode):
                keep = exclusions(
                    node.metadata,
                    node.excluded_embed_metadata_keys,
                    node.excluded_llm_metadata_keys,
                )
                node.excluded_embed_metadata_keys = keep["excluded_embed_metadata_keys"]
                node.excluded_llm_metadata_keys = keep["excluded_llm_metadata_keys"]
        if self.include_prev_next_rel:
            _link_neighbours(nodes)
        return nodes


def _link_neighbours(nodes: list[BaseNode]) -> None:
    """Link each chunk to the next one of its document, across pages and past row-key nodes
    (the base class links neighbours of one source page only). Done last, because a link
    carries a copy of its target's metadata as it is then."""
    chunks = [n for n in nodes if not isinstance(n, IndexNode) and "chunk_index" in n.metadata]
    for a, b in pairwise(chunks):
        same = a.metadata.get("document_sha256") == b.metadata.get("document_sha256")
        if same and b.metadata["chunk_index"] == a.metadata["chunk_index"] + 1:
            a.relationships[NodeRelationship.NEXT] = b.as_related_node_info()
            b.relationships[NodeRelationship.PREVIOUS] = a.as_related_node_info()


def _public(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k not in INTERNAL_KEYS}


def _related(page: BaseNode) -> RelatedNodeInfo:
    """A link to ``page`` without its internal keys (the base class copies a source's
    metadata into the node)."""
    return RelatedNodeInfo(
        node_id=page.node_id,
        node_type=page.get_type(),
        metadata=_public(page.metadata),
        hash=page.hash,
    )


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


def _embed_text(chunk: Chunk) -> str:
    """The chunk's ``contextualized_text`` after its heading path (the node's ``headings``
    metadata names the path for the embedding)."""
    text = chunk.contextualized_text
    head = " > ".join(chunk.heading_path)
    if head and text.startswith(head):
        text = text[len(head) :].lstrip("\n")
    return text


def _node_text(chunk: Chunk, metadata: dict[str, Any]) -> str:
    """The chunk's text, less the heading lines that open it where ``headings`` already
    carries them: LlamaIndex puts the metadata before the text for the embedding and for the
    LLM, and a heading should reach each of them once."""
    if "headings" not in metadata or not chunk.heading_path:
        return chunk.text
    return without_named_headings(chunk.heading_path, chunk.text).strip() or chunk.text
