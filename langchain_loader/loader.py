"""LangChain loader and blob parser: one LangChain Document per page, streamed.

Metadata follows LangChain's PyMuPDFLoader (``source`` and ``file_path``: the path, ``page``
0-based, ``page_label``, ``total_pages``, the PDF's info fields: ``title``, ``author``,
``creationdate``...) plus ours, flat (str/int/float), so ``filter_complex_metadata`` keeps it
all. The page itself (blocks, boxes) stays out of the metadata: ``deepocr_page_key`` is how
``LayoutTextSplitter`` finds it, so a stock splitter copies 64 characters, not a page of JSON.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from langchain_core.document_loaders import BaseBlobParser, BaseLoader, Blob
from langchain_core.documents import Document as LCDocument

from deepocr_loaders import Engine
from deepocr_loaders.pipeline import open_document, resolve_engine
from deepocr_loaders.records import page_record

__all__ = ["DeepOCRBlobParser", "DeepOCRLoader"]


class DeepOCRBlobParser(BaseBlobParser):
    """Parses PDF/image blobs into page Documents; use with ``GenericLoader``.

    The engine (and its model) is created on first use and reused for every blob. Pages are
    kept in the page cache (``cache=True``, the default: the per-user cache file, as the CLI;
    a path for another file; ``False`` for none), keyed by engine, model, options, task, DPI
    and file content, so loading a file again converts nothing.

    Args:
        engine: an engine name (``"auto"``, ``"text-layer"``, ``"deepseek-ocr-2"``...) or an
            :class:`Engine`.
        model: hub id or local folder of the model.
        engine_options: the engine's options (``device``, ``batch_size``, ``mode``...).
        pages: page range, 1-based (``"1-3,7"``).
        dpi: rendering resolution for OCR engines.
        password: of an encrypted PDF.
        task: task name or free-text prompt.
        cache: the page cache (see above).
        with_page_json: also put each page's JSON in its metadata (``deepocr_page``), to split
            it in a process that shares neither this one's memory nor its page cache.
    """

    def __init__(
        self,
        engine: str | Engine = "auto",
        *,
        model: str | None = None,
        engine_options: dict[str, Any] | None = None,
        pages: str | None = None,
        dpi: float = 144,
        password: str | None = None,
        task: str = "markdown",
        cache: str | os.PathLike[str] | bool | None = True,
        with_page_json: bool = False,
    ) -> None:
        self.engine = engine
        self.model = model
        self.engine_options = dict(engine_options or {})
        self.pages = pages
        self.dpi = dpi
        self.password = password
        self.task = task
        self.cache = cache
        self.with_page_json = with_page_json
        self._engine: Engine | None = engine if isinstance(engine, Engine) else None

    def _get_engine(self) -> Engine:
        if self._engine is None:
            self._engine = resolve_engine(self.engine, self.model, self.engine_options)
        return self._engine

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if not isinstance(self.engine, Engine):
            state["_engine"] = None  # the model never travels to another process
        return state

    def lazy_parse(self, blob: Blob) -> Iterator[LCDocument]:
        """Page Documents of one blob, one at a time."""
        data: bytes | str = blob.as_bytes() if blob.data is not None else str(blob.path)
        name = str(blob.source or blob.path or "<blob>")
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
            for page in stream.pages:
                rec = page_record(
                    doc,
                    page,
                    page_key=stream.page_keys.get(page.index),
                    with_page_json=self.with_page_json,
                )
                yield LCDocument(id=rec.id, page_content=rec.text, metadata=rec.metadata)


class DeepOCRLoader(BaseLoader):
    """Loads one PDF or image (or several) as page Documents, lazily: memory stays flat on a
    1000-page PDF. Options are those of :class:`DeepOCRBlobParser`."""

    def __init__(
        self, file_path: str | os.PathLike[str] | list[str | os.PathLike[str]], **options: Any
    ) -> None:
        paths = file_path if isinstance(file_path, list) else [file_path]
        self.file_paths = [Path(p) for p in paths]
        self.parser = DeepOCRBlobParser(**options)

    def lazy_load(self) -> Iterator[LCDocument]:
        for path in self.file_paths:
            yield from self.parser.lazy_parse(Blob.from_path(path))

    async def alazy_load(self) -> AsyncIterator[LCDocument]:
        """Async pages: each page's work runs in a worker thread, the loop stays free."""
        iterator = self.lazy_load()
        done = object()
        while True:
            item = await asyncio.to_thread(next, iterator, done)
            if item is done:
                return
            yield item  # type: ignore[misc]
