"""deepocr-loaders: PDFs and page images to Markdown and a layout document model.

The core public names live here; see ``docs/architecture.md`` for how the pieces fit.
"""

from __future__ import annotations

from . import cache
from .cache import PageCache
from .citations import chunk_boxes, highlight
from .document import BBox, Block, BlockKind, Document, Page, PageStatus
from .engines import Engine, PageInput, Task, available_engines, get_engine
from .engines.ocr_need import OcrDecision, OcrNeedDetector, OcrReason
from .errors import (
    ConfigError,
    CorruptFileError,
    DeepOCRError,
    EmptyDocumentError,
    EngineError,
    EngineOptionError,
    ImageTooLargeError,
    ModelLoadError,
    PageRangeError,
    PasswordError,
    RenderError,
    SourceError,
    UnsupportedFormatError,
)
from .grounding import GroundedParse, parse_grounded_output, parse_grounded_page
from .pipeline import convert, iter_pages
from .sources import open_source

__version__ = "0.1.0"

__all__ = [
    "BBox",
    "Block",
    "BlockKind",
    "ConfigError",
    "CorruptFileError",
    "DeepOCRError",
    "Document",
    "EmptyDocumentError",
    "Engine",
    "EngineError",
    "EngineOptionError",
    "GroundedParse",
    "ImageTooLargeError",
    "ModelLoadError",
    "OcrDecision",
    "OcrNeedDetector",
    "OcrReason",
    "Page",
    "PageCache",
    "PageInput",
    "PageRangeError",
    "PageStatus",
    "PasswordError",
    "RenderError",
    "SourceError",
    "Task",
    "UnsupportedFormatError",
    "__version__",
    "available_engines",
    "cache",
    "chunk_boxes",
    "convert",
    "get_engine",
    "highlight",
    "iter_pages",
    "open_source",
    "parse_grounded_output",
    "parse_grounded_page",
]
