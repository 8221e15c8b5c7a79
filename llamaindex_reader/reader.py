"""``DeepOCRReader``: a LlamaIndex reader for PDFs and page images.

Plugs into ``SimpleDirectoryReader(file_extractor={".pdf": DeepOCRReader()})``: that calls
``load_data(path, extra_info=..., fs=...)`` with exactly these names, sometimes from spawned
worker processes, so the engine is created lazily and never pickled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from llama_index.core.readers.base import BasePydanticReader
from llama_index.core.schema import Document as LIDocument
from pydantic import Field, PrivateAttr, field_serializer, model_validator

from chunking import ChunkerSettings
from deepocr_loaders import Engine
from deepocr_loaders.document import Document
from deepocr_loaders.pipeline import open_document, resolve_engine
from deepocr_loaders.records import INTERNAL_KEYS, page_record

from ._metadata import chunk_metadata, exclusions, page_metadata
from ._settings import fold_chunker_options

__all__ = ["DeepOCRReader"]

log = logging.getLogger(__name__)


class DeepOCRReader(BasePydanticReader):
    """Reads PDFs/images with a DeepSeek-OCR-family engine (or the text layer) into LlamaIndex
    Documents: layout chunks ready to embed (``mode="chunks"``) or one Document per page.

    Pages are kept in the page cache by default (``cache=True``: the per-user cache file, as
    the CLI; a path for another file; ``False`` for none), keyed by engine, model, options,
    task, DPI and file content: loading a folder again converts nothing. Chunker options go in
    ``chunking`` (a :class:`chunking.ChunkerSettings`) or one by one (``max_tokens=400``).
    """

    is_remote: bool = False
    engine: str = Field("auto", description="engine name: auto, text-layer, deepseek-ocr-2...")
    model: str | None = Field(None, description="hub id or local folder of the model")
    engine_options: dict[str, Any] = Field(
        default_factory=dict, description="extra engine options (device, batch_size, mode...)"
    )
    pages: str | None = Field(None, description='page range, 1-based, e.g. "1-3,7"')
    dpi: float = Field(144, description="rendering resolution for OCR engines")
    password: str | None = Field(None, description="password of encrypted PDFs")
    task: str = Field("markdown", description="task name or free-text prompt")
    mode: Literal["chunks", "pages"] = Field("chunks", description="what one Document is")
    chunking: ChunkerSettings = Field(
        default_factory=ChunkerSettings, description="the chunker's settings (mode='chunks')"
    )
    cache: str | bool | None = Field(
        True, description="page cache: True for the per-user file, a SQLite path, or False"
    )
    flat_metadata: bool = Field(True, description="only str/int/float metadata values")

    @model_validator(mode="before")
    @classmethod
    def _chunker_options(cls, data: Any) -> Any:
        return fold_chunker_options(data)

    @field_serializer("chunking")
    def _describe_chunking(self, value: ChunkerSettings) -> dict[str, Any]:
        return value.describe()

    _engine: Engine | None = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "DeepOCRReader"

    # -- pickling: worker processes get the settings, never the loaded model ------------------

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        private["_engine"] = None
        state["__pydantic_private__"] = private
        return state

    def _get_engine(self) -> Engine:
        if self._engine is None:
            self._engine = resolve_engine(self.engine, self.model, dict(self.engine_options))
        return self._engine

    # -- loading ------------------------------------------------------------------------------

    def _read_bytes(self, file: Any, fs: Any) -> tuple[bytes | str, str]:
        if fs is not None:
            with fs.open(str(file), "rb") as handle:
                return handle.read(), str(file)
        return str(Path(file)), str(file)

    def _documents(
        self, doc: Document, extra_info: dict[str, Any] | None, keys: dict[int, str]
    ) -> Iterator[LIDocument]:
        extra = dict(extra_info or {})
        if self.mode == "pages":
            for page in doc.pages:
                rec = page_record(doc, page, page_key=keys.get(page.index))
                yield self._li_document(rec.id, rec.text, {**extra, **page_metadata(rec.metadata)})
            return
        from chunking import LayoutChunker

        inherited = {
            **extra,
            "file_path": doc.source,
            "file_name": doc.source.replace("\\", "/").rsplit("/", 1)[-1],
            "total_pages": doc.page_count,
        }
        for chunk in LayoutChunker(settings=self.chunking).chunk(doc):
            meta = chunk_metadata(chunk, inherited, flat=self.flat_metadata)
            yield self._li_document(chunk.id, chunk.text, meta)
        # A page that did not convert still shows up, as a note with its status and error, so
        # it can be found (filter on ``status``) instead of silently missing from the index.
        for page in doc.problem_pages:
            status = page.status.value
            log.warning("%s page %s: %s (%s)", doc.source, page.label, status, page.error)
            rec = page_record(doc, page, page_key=keys.get(page.index))
            meta = {k: v for k, v in page_metadata(rec.metadata).items() if k not in INTERNAL_KEYS}
            yield self._li_document(rec.id, rec.text, {**extra, **meta})

    @staticmethod
    def _li_document(doc_id: str, text: str, metadata: dict[str, Any]) -> LIDocument:
        return LIDocument(id_=doc_id, text=text, metadata=metadata, **exclusions(metadata))

    def lazy_load_data(  # type: ignore[override]
        self, file: Any, extra_info: dict[str, Any] | None = None, fs: Any = None
    ) -> Iterable[LIDocument]:
        """Documents of one file, produced as the pages are converted."""
        data, name = self._read_bytes(file, fs)
        with open_document(
            data,
            engine=self._get_engine(),
            pages=self.pages,
            dpi=self.dpi,
            password=self.password,
            name=name,
            task=self.task,
            cache=self.cache,
        ) as stream:
            doc = stream.document
            if self.mode == "pages":
                for page in stream.pages:
                    doc.pages = [page]
                    yield from self._documents(doc, extra_info, stream.page_keys)
                return
            doc.pages = list(stream.pages)
            keys = stream.page_keys
        yield from self._documents(doc, extra_info, keys)

    def load_data(  # type: ignore[override]
        self, file: Any, extra_info: dict[str, Any] | None = None, fs: Any = None
    ) -> list[LIDocument]:
        """All Documents of one file (``SimpleDirectoryReader`` calls this)."""
        return list(self.lazy_load_data(file, extra_info=extra_info, fs=fs))

    async def alazy_load_data(  # type: ignore[override]
        self, file: Any, extra_info: dict[str, Any] | None = None, fs: Any = None
    ) -> AsyncIterator[LIDocument]:
        """Async Documents: each page's work runs in a worker thread, so the event loop stays
        free between pages (the base class blocks a thread for the whole file)."""
        iterator = iter(self.lazy_load_data(file, extra_info=extra_info, fs=fs))
        done = object()
        while True:
            item = await asyncio.to_thread(next, iterator, done)
            if item is done:
                return
            yield item  # type: ignore[misc]

    async def aload_data(  # type: ignore[override]
        self, file: Any, extra_info: dict[str, Any] | None = None, fs: Any = None
    ) -> list[LIDocument]:
        return [doc async for doc in self.alazy_load_data(file, extra_info=extra_info, fs=fs)]
