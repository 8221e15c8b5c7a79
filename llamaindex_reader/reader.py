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
from pydantic import Field, PrivateAttr

from deepocr_loaders import Engine
from deepocr_loaders.document import Document
from deepocr_loaders.pipeline import open_document, resolve_engine
from deepocr_loaders.records import page_record

from ._metadata import exclusions

__all__ = ["DeepOCRReader"]

log = logging.getLogger(__name__)


class DeepOCRReader(BasePydanticReader):
    """Reads PDFs/images with a DeepSeek-OCR-family engine (or the text layer) into LlamaIndex
    Documents: layout chunks ready to embed (``mode="chunks"``) or one Document per page."""

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
    max_tokens: int = Field(400, description="chunk budget (mode='chunks')")
    min_tokens: int | None = Field(None, description="small chunks merge up to this")
    overlap_tokens: int = Field(0, description="tokens repeated between neighbouring chunks")
    tokenizer: Any = Field(
        None,
        exclude=True,
        description="token counter for the chunk budget: a str -> int callable, a Hugging Face "
        "tokenizer or a tiktoken encoding (default: a fast approximation)",
    )
    cache: str | bool | None = Field(
        None, description="page cache: a SQLite path, True for the default location, or off"
    )
    flat_metadata: bool = Field(True, description="only str/int/float metadata values")

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

    def _documents(self, doc: Document, extra_info: dict[str, Any] | None) -> Iterator[LIDocument]:
        extra = dict(extra_info or {})
        if self.mode == "pages":
            for page in doc.pages:
                rec = page_record(doc, page)
                yield self._li_document(rec.id, rec.text, {**extra, **rec.metadata})
            return
        from chunking import LayoutChunker

        chunker = LayoutChunker(
            self.max_tokens,
            self.min_tokens,
            overlap_tokens=self.overlap_tokens,
            tokenizer=self.tokenizer,
        )
        for chunk in chunker.chunk(doc):
            meta = chunk.flat_metadata() if self.flat_metadata else dict(chunk.metadata)
            meta.pop("contextualized_text", None)
            meta.setdefault("page", meta.get("page_start", 0))
            meta.setdefault("total_pages", doc.page_count)
            yield self._li_document(chunk.id, chunk.text, {**extra, **meta})
        # A page that did not convert still shows up, as a note with its status and error, so
        # it can be found (filter on ``status``) instead of silently missing from the index.
        for page in doc.problem_pages:
            status = page.status.value
            log.warning("%s page %s: %s (%s)", doc.source, page.label, status, page.error)
            rec = page_record(doc, page, with_page_json=False)
            yield self._li_document(rec.id, rec.text, {**extra, **rec.metadata})

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
            if self.mode == "pages":
                doc = stream.document
                for page in stream.pages:
                    doc.pages = [page]
                    yield from self._documents(doc, extra_info)
                return
            doc = stream.document
            doc.pages = list(stream.pages)
        yield from self._documents(doc, extra_info)

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
