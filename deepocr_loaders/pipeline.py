"""The core entry points: ``convert`` (a whole Document) and ``iter_pages`` (lazy, page by page)."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .cache import PageCache
from .document import Document, Page
from .engines import Engine, PageInput, Task, get_engine
from .errors import ConfigError, DeepOCRError
from .furniture import mark_furniture
from .sources import DEFAULT_DPI, PageSpec, Source, SourceInput, open_source, parse_page_range

__all__ = [
    "DocumentStream",
    "check_dpi",
    "convert",
    "iter_pages",
    "open_document",
    "resolve_engine",
]

log = logging.getLogger(__name__)

DEFAULT_ENGINE = "auto"


@dataclass
class DocumentStream:
    """An open source plus its pages, produced lazily. Use as a context manager."""

    document: Document
    """Document-level facts (source, hash, page count, metadata) with ``pages`` still empty."""
    pages: Iterator[Page]
    page_indices: list[int]
    """The 0-based pages that ``pages`` will yield, in order (for progress bars)."""
    page_keys: dict[int, str] = field(default_factory=dict)
    """Each page's page-cache key (engine identity, task, DPI and file content), by index:
    what page documents carry to find their page again (:mod:`deepocr_loaders.page_store`)."""


def resolve_engine(engine: str | Engine, model: str | None, options: dict[str, Any]) -> Engine:
    """An engine instance: ``engine`` itself, or a new one by name with ``model`` and options.

    Options the engine does not take, or required ones left out, raise :class:`ConfigError`
    naming them (:func:`get_engine` checks them).
    """
    if isinstance(engine, Engine):
        if model is not None or options:
            given = ", ".join(["model"] * (model is not None) + sorted(options))
            raise ConfigError(
                f"options ({given}) go to get_engine(); pass them there, not with an instance",
                option=given,
            )
        return engine
    if not isinstance(engine, str):
        raise ConfigError(
            f"engine must be a name or an Engine, not {type(engine).__name__}", option="engine"
        )
    if model is not None:
        options = {**options, "model": model}
    return get_engine(engine, **options)


def check_dpi(dpi: object) -> float:
    """``dpi`` as a float, or :class:`ConfigError` when it is not a finite positive number."""
    if (
        isinstance(dpi, bool)
        or not isinstance(dpi, (int, float))
        or not math.isfinite(dpi)
        or dpi <= 0
    ):
        raise ConfigError(f"dpi must be a positive number, not {dpi!r}", option="dpi")
    return float(dpi)


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
        inp = _make_input(src, index, dpi)
    except DeepOCRError as exc:  # the page itself is damaged: still report it
        inp = PageInput(src, index, "", 0.0, 0.0, dpi=dpi)
        error = f"{error}; {exc}"
    return inp.failed(error, engine=engine_name)


def page_keys(
    engine: Engine, src: Source, indices: list[int], dpi: float, task: Task | str
) -> dict[int, str]:
    """The page-cache key of each page: engine identity (name, model, options), task, DPI and
    the file's content hash."""
    task_name = task.value if isinstance(task, Task) else str(task)
    identity = engine.cache_identity()
    return {i: PageCache.key(src.sha256, i, identity, task_name, dpi) for i in indices}


def _checked(
    engine: Engine,
    src: Source,
    indices: list[int],
    dpi: float,
    task: Task | str,
    cache: PageCache | None = None,
    keys: dict[int, str] | None = None,
) -> Iterator[Page]:
    """Run the engine and hold it to its contract: one page per input, in order, none lost.

    Inputs are made as the engine pulls them, so a long PDF is never walked up front. Pages
    found in the cache, and pages that cannot even be opened, never reach the engine; they are
    slotted back in page order.
    """
    name = engine.name or type(engine).__name__
    keys = keys if keys is not None else page_keys(engine, src, indices, dpi, task)
    i = 0  # pages delivered so far
    made: dict[int, PageInput] = {}
    ready: dict[int, Page] = {}  # resolved without the engine

    def inputs() -> Iterator[PageInput]:
        for index in indices:
            if cache is not None:
                hit = cache.get(keys[index])
                if hit is not None:
                    hit.metadata["cached"] = True
                    ready[index] = hit
                    continue
            try:
                made[index] = _make_input(src, index, dpi)
            except DeepOCRError as exc:
                log.warning("%s", exc)
                ready[index] = _failed_page(src, index, dpi, name, "page could not be opened")
                continue
            yield made[index]

    def deliver(page: Page) -> Page:
        if cache is not None and not page.metadata.get("cached"):
            cache.put(keys[page.index], page, src.sha256)
        return page

    try:
        for page in engine.run(inputs(), task):
            while i < len(indices) and indices[i] in ready:
                yield ready.pop(indices[i])
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
            yield deliver(page)
    except Exception as exc:  # an engine crash must not swallow the rest of the document
        where = indices[i] if i < len(indices) else "?"
        log.exception("engine %s failed at page %s", name, where)
        for index in indices[i:]:
            error = f"{type(exc).__name__}: {exc}"
            yield ready.pop(index) if index in ready else _failed_page(src, index, dpi, name, error)
        return
    for index in indices[i:]:
        error = "engine returned no result"
        yield ready.pop(index) if index in ready else _failed_page(src, index, dpi, name, error)


def _resolve_cache(cache: PageCache | str | os.PathLike[str] | bool | None) -> PageCache | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        return PageCache()
    if isinstance(cache, PageCache):
        return cache
    if not isinstance(cache, (str, os.PathLike)):
        raise ConfigError(
            f"cache must be a PageCache, a path or a bool, not {type(cache).__name__}",
            option="cache",
        )
    return PageCache(cache)


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
    cache: PageCache | str | os.PathLike[str] | bool | None = None,
    **options: Any,
) -> Iterator[DocumentStream]:
    """Open ``source`` and stream its pages through ``engine``; closes everything on exit.

    ``cache``: a :class:`PageCache`, a path to one, or True for the default location; pages
    already done by the same engine, model, task and DPI are taken from it.
    """
    dpi = check_dpi(dpi)  # every argument is checked before any work
    page_cache = _resolve_cache(cache)
    own_engine = not isinstance(engine, Engine)
    eng = resolve_engine(engine, model, options)
    try:
        try:
            opened = open_source(source, password=password, name=name)
        except TypeError as exc:  # not a path, bytes or binary file
            raise ConfigError(str(exc), option="source") from exc
        with opened as src:
            indices = parse_page_range(pages, src.page_count, source=src.name)
            doc = Document(
                source=src.name,
                sha256=src.sha256,
                page_count=src.page_count,
                metadata=_pdf_metadata(src),
            )
            keys = page_keys(eng, src, indices, dpi, task)
            stream = _checked(eng, src, indices, dpi, task, page_cache, keys)
            yield DocumentStream(doc, stream, indices, keys)
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
    ``pages`` (e.g. ``"1-3,7"``), ``dpi`` (default 144), ``password``, ``name``, ``task``,
    ``cache`` (see :func:`open_document`); the rest
    go to the engine. Pages that fail are kept with their status and error, never dropped.
    """
    with open_document(source, engine=engine, model=model, **options) as stream:
        doc = stream.document
        doc.pages = list(stream.pages)
    # Running headers and page numbers the engine did not label show across pages.
    mark_furniture(doc)
    for page in doc.problem_pages:
        log.warning("%s page %s: %s (%s)", doc.source, page.label, page.status.value, page.error)
    return doc
