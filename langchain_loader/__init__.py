"""LangChain integration: ``DeepOCRLoader`` (lazy, page by page), ``DeepOCRBlobParser`` (for
``GenericLoader``) and ``LayoutTextSplitter`` (layout chunks that keep their ids)."""

from __future__ import annotations

from .loader import DeepOCRBlobParser, DeepOCRLoader
from .splitter import LayoutTextSplitter

__all__ = ["DeepOCRBlobParser", "DeepOCRLoader", "LayoutTextSplitter"]
