"""LlamaIndex integration: ``DeepOCRReader`` (a reader for ``SimpleDirectoryReader``) and
``LayoutNodeParser`` (layout chunks as nodes, for ``IngestionPipeline``)."""

from __future__ import annotations

from .node_parser import LayoutNodeParser, LayoutTextNode
from .reader import DeepOCRReader

__all__ = ["DeepOCRReader", "LayoutNodeParser", "LayoutTextNode"]
