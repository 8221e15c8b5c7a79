"""The core entry points: ``convert`` (a whole Document) and ``iter_pages`` (lazy, page by page)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .document import Document, Page, PageStatus
from .engines import Engine, PageInput, Task, get_engine
from .errors import DeepOCRError
from .sources import DEFAULT_DPI, PageSpec, Source, SourceInput, open_source, parse_page_range

__all__ = ["DocumentStream", "convert", "iter_pages", "open_document"]

log = logging.getLogger(__name__)

DEFAULT_ENGINE = "auto"


@dataclass
class DocumentStream:
    """An open source plus its pages, produced lazily. Use as a context manager."""

    document: Document
    """Document-level facts (source, hash, page count, metadata) with ``pages`` still empty."""
    pages: Iterator[Page]


def _resolve_engine(engine: str | Engine, model: str | None, options: dict[str, Any]) -> Engine:
    if isinstance(engine, Engine):
        if model is not None or options:
            raise TypeError("model/options go to get_engine(); pass them there with an instance")
        return engine
    if model is not None:
        options = {**options, "model": model}
    return get_engine(engine, **options)


def _pdf_metadata(source: Source) -> dict[str, Any]:
    meta: dict[str, Any] = {"kind": getattr(source, "kind", "")}
    pdf = getattr(source, "pdf", None)
    if pdf is not None:
        meta.update({k: v for k, v in (pdf.metadata or {}).items() if v})
    return meta


def _make_input(src: Source, index: int, dpi: float) -> PageInput:
    width, height = src.page_size(index)
    return PageInput(src, index, src.page_label(index), width, height, dpi=dpi)


def _failed_page(src: Source, index: int, dpi: float, engine_name: str, error: str) -> Page:
    try:
        width, height = src.page_size(index)
        label = src.page_label(index)
    except DeepOCRError as exc:  # the page itself is damaged: still report it
        width = height = 0.0
        label = ""
        error = f"{error}; {exc}"
    return Page(
        index=index,
        width=width,
        height=height,
        label=label,
        dpi=dpi,
        status=PageStatus.FAILED,
        error=error,
        engine=engine_name,
    )


def _checked(
    engine: Engine, src: Source, indices: list[int], dpi: float, task: Task | str
) -> Iterator[Page]:
    """Run the engine and hold it to its contract: one page per input, in order, none lost.

    Inputs are made as the engine pulls them, so a long PDF is never walked up front.
    """
    name = engine.name or type(engine).__name__
    i = 0  # pages delivered so far
    made: dict[int, PageInput] = {}
    unopenable: set[int] = set()

    def inputs() -> Iterator[PageInput]:
        for index in indices:
            try:
                made[index] = _make_input(src, index, dpi)
            except DeepOCRError as exc:
                # A page that cannot even be opened never reaches the engine; it is reported
                # in order by the loop below.
                log.warning("%s", exc)
                unopenable.add(index)
                continue
            yield made[index]

    try:
        for page in engine.run(inputs(), task):
            # Pages the input generator skipped (unopenable) come out as failed, in order.
            while i < len(indices) and indices[i] in unopenable:
                yield _failed_page(src, indices[i], dpi, name, "page could not be opened")
                i += 1
            if i >= len(indices):
                log.warning("engine %s returned more pages than it was given; extra ignored", name)
                break
            want = indices[i]
            if page.index != want:
                raise RuntimeError(f"engine {name} returned page {page.index}, expected {want}")
            page.engine = page.engine or name
            made.pop(want).release()
            i += 1
            yield page
    except Exception as exc:  # an engine crash must not swallow the rest of the document
        where = indices[i] if i < len(indices) else "?"
        log.exception("engine %s failed at page %s", name, where)
        for index in indices[i:]:
            yield _failed_page(src, index, dpi, name, f"{type(exc).__name__}: {exc}")
        return
    for index in indices[i:]:
        reason = "page could not be opened" if index in unopenable else "engine returned no result"
        yield _failed_page(src, index, dpi, name, reason)


@contextmanager
def open_document(
    source: SourceInput,
    *,
    engine: str | Engine = DEFAULT_ENGINE,
    model: str | None = None,
    pages: PageSpec = None,
    dpi: float = DEFAULT_DPI,
    password: str | None = None,
    name: str | None = None,
    task: Task | str = Task.MARKDOWN,
    **options: Any,
) -> Iterator[DocumentStream]:
    """Open ``source`` and stream its pages through ``engine``; closes everything on exit."""
    own_engine = not isinstance(engine, Engine)
    eng = _resolve_engine(engine, model, options)
    try:
        with open_source(source, password=password, name=name) as src:
            indices = parse_page_range(pages, src.page_count, source=src.name)
            doc = Document(
                source=src.name,
                sha256=src.sha256,
                page_count=src.page_count,
                metadata=_pdf_metadata(src),
            )
            yield DocumentStream(doc, _checked(eng, src, indices, dpi, task))
    finally:
        if own_engine:
            eng.close()


def iter_pages(source: SourceInput, **kwargs: Any) -> Iterator[Page]:
    """Pages of ``source`` one at a time, for long PDFs; same arguments as :func:`convert`."""
    with open_document(source, **kwargs) as stream:
        yield from stream.pages


def convert(
    source: SourceInput,
    engine: str | Engine = DEFAULT_ENGINE,
    model: str | None = None,
    **options: Any,
) -> Document:
    """Convert a PDF or image (path, bytes or binary file) into a :class:`Document`.

    ``engine`` is a registered name (``"auto"``, ``"text-layer"``, ``"deepseek-ocr-2"``...) or an
    :class:`Engine`; ``model`` a hub id or local folder for model engines. Other options:
    ``pages`` (e.g. ``"1-3,7"``), ``dpi`` (default 144), ``password``, ``name``, ``task``; the rest
    go to the engine. Pages that fail are kept with their status and error, never dropped.
    """
    with open_document(source, engine=engine, model=model, **options) as stream:
        doc = stream.document
        doc.pages = list(stream.pages)
    for page in doc.problem_pages:
        log.warning("%s page %s: %s (%s)", doc.source, page.label, page.status.value, page.error)
    return doc
