"""Layout-aware chunking of a :class:`deepocr_loaders.Document`.

``LayoutChunker(max_tokens=400).chunk(document)`` returns :class:`Chunk` objects that follow the
document's structure: a chunk never straddles two sections and carries its heading path; tables
split only between rows and repeat their header; figures, captions and equations stay whole and
with their context; every chunk cites its pages and boxes.

Framework-agnostic: reads only the core document model; tokenizers are optional callables.
"""

from __future__ import annotations

from .chunk import Box, Chunk, ChunkKind, PageSize
from .chunker import LayoutChunker
from .headings import heading_levels, numbering_depth
from .settings import ChunkerSettings, settings_from
from .tokens import TokenCounter, default_token_count, resolve_token_counter
from .units import furniture_blocks, is_furniture

__all__ = [
    "Box",
    "Chunk",
    "ChunkKind",
    "ChunkerSettings",
    "LayoutChunker",
    "PageSize",
    "TokenCounter",
    "default_token_count",
    "furniture_blocks",
    "heading_levels",
    "is_furniture",
    "numbering_depth",
    "resolve_token_counter",
    "settings_from",
]
