"""The core entry points: ``convert`` (a whole Document) and ``iter_pages`` (lazy, page by page)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .document import Document, Page, PageStatus
from .engines import Engine, PageInput, Task, get_engine
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


def _fail(inp: PageInput, engine_name: str, error: str) -> Page:
    return Page(
        index=inp.index,
        width=inp.width,
        height=inp.height,
        label=inp.label,
        dpi=inp.dpi,
        status=PageStatus.FAILED,
        error=error,
        engine=engine_name,
    )


def _checked(engine: Engine, inputs: list[PageInput], task: Task | str) -> Iterator[Page]:
    """Run the engine and hold it to its contract: one page per input, in order, none lost."""
    name = engine.name or type(engine).__name__
    i = 0
    try:
        for page in engine.run(iter(inputs), task):
            if i >= len(inputs):
                log.warning("engine %s returned more pages than it was given; extra ignored", name)
                break
            inp = inputs[i]
            if page.index != inp.index:
                raise RuntimeError(
                    f"engine {name} returned page {page.index}, expected {inp.index}"
                )
            page.label = page.label or inp.label
            page.engine = page.engine or name
            inp.release()
            i += 1
            yield page
    except Exception as exc:  # an engine crash must not swallow the rest of the document
        log.exception(
            "engine %s failed at page %s", name, inputs[i].index if i < len(inputs) else "?"
        )
        error = f"{type(exc).__name__}: {exc}"
        for inp in inputs[i:]:
            yield _fail(inp, name, error)
        return
    for inp in inputs[i:]:
        yield _fail(inp, name, "engine returned no result for this page")


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
            inputs = []
            for i in indices:
                width, height = src.page_size(i)
                inputs.append(PageInput(src, i, src.page_label(i), width, height, dpi=dpi))
            doc = Document(
                source=src.name,
                sha256=src.sha256,
                page_count=src.page_count,
                metadata=_pdf_metadata(src),
            )
            yield DocumentStream(doc, _checked(eng, inputs, task))
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
