"""Distributed ingestion on Ray Data: a folder of PDFs and images -> layout chunks, at scale.

``ingest_with_ray(inputs, out)`` builds one Ray Data pipeline (no scheduler of our own):

1. the driver lists the files; CPU tasks (``flat_map``) open each one and emit a row per page
   (path, page index, document hash), or one error row for a file that cannot be read;
2. OCR in ``map_batches`` on a pool of actors (``concurrency=num_ocr_actors``, ``num_gpus``
   per actor for model engines), each holding one engine; pages found in the page cache never
   reach the engine;
3. page records are grouped per document (``groupby(path).map_groups``), the
   :class:`~deepocr_loaders.document.Document` is rebuilt in page order and chunked by
   :class:`chunking.LayoutChunker`;
4. chunks go to JSONL or Parquet files (a JSON-lines datasink / ``write_parquet``) and/or to a
   ``sink(chunks)`` callback in the driver that upserts into a vector store.

Pages travel as (path, index), not as images: the text-layer and ``auto`` engines need the PDF
itself, ``auto`` rasterises only the pages that need OCR, and a path is a few bytes where a
144-dpi page image is ~6 MB in the object store. Model engines rasterise inside their actor
(the DeepSeek-OCR-2 engine overlaps that with generation).

Resume: finished pages are kept in a :class:`~deepocr_loaders.cache.PageCache` (one SQLite
file, which must sit on disk every node can reach); a run killed half way redoes no finished
page when started again. Requires the ``ray`` extra: ``pip install 'deepocr-loaders[ray]'``.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .cache import PageCache
from .document import Document, Page, PageStatus
from .engines import Engine, Task, get_engine
from .errors import DeepOCRError
from .pipeline import DEFAULT_ENGINE, _checked
from .records import PAGE_JSON_KEY, document_from_records
from .sources import (
    DEFAULT_DPI,
    SUPPORTED_SUFFIXES,
    PageSpec,
    Source,
    list_inputs,
    open_source,
    parse_page_range,
)

if TYPE_CHECKING:
    from chunking import Chunk, LayoutChunker

__all__ = [
    "SUPPORTED_SUFFIXES",
    "IngestReport",
    "ingest_with_ray",
    "list_inputs",
    "require_ray",
]

log = logging.getLogger(__name__)

OutputFormat = Literal["jsonl", "parquet"]

# Row kinds after per-document assembly: one summary row per file, then its chunks.
_CHUNK, _SUMMARY = "chunk", "document"
_OPEN_SOURCES = 2  # sources an OCR actor keeps open: batches usually hold one or two documents


def require_ray() -> Any:
    """The ``ray`` module, or a :class:`DeepOCRError` saying how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise DeepOCRError(
            "distributed ingestion needs Ray Data: pip install 'deepocr-loaders[ray]'"
        ) from exc
    return ray


@dataclass
class IngestReport:
    """What a distributed run did: counts, pages that are not ``ok``, files that failed."""

    documents: int = 0
    """Files read (their pages are all accounted for, whatever their status)."""
    pages: int = 0
    pages_from_cache: int = 0
    """Pages taken from the page cache: finished by an earlier run, not redone."""
    chunks: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    """Pages per status (``ok``, ``failed``, ``truncated``, ``needs_ocr``, ``skipped``)."""
    page_problems: list[str] = field(default_factory=list)
    """``"file, page LABEL: status (error)"`` for every page that is not ``ok``."""
    failed_files: list[tuple[str, str]] = field(default_factory=list)
    """``(path, reason)`` for every file that could not be read."""

    @property
    def pages_ok(self) -> int:
        return self.status_counts.get(PageStatus.OK.value, 0)

    @property
    def pages_failed(self) -> int:
        return self.status_counts.get(PageStatus.FAILED.value, 0)

    def _add(self, summary: dict[str, Any]) -> None:
        if summary["file_error"]:
            self.failed_files.append((summary["path"], summary["file_error"]))
            return
        self.documents += 1
        self.pages += summary["pages"]
        self.pages_from_cache += summary["cached"]
        self.chunks += summary["chunks"]
        for status, n in summary["status_counts"].items():
            self.status_counts[status] = self.status_counts.get(status, 0) + n
        self.page_problems.extend(summary["problems"])


# -- stage 1: files -> page rows (CPU tasks) ---------------------------------------------------


def _page_rows(
    row: dict[str, Any], *, pages: PageSpec, password: str | None
) -> list[dict[str, Any]]:
    """One row per selected page of the file, or a single error row (page -1) saying why not."""
    path = str(row["path"])
    base = {"path": path, "sha256": "", "page_count": 0, "page_index": -1, "error": ""}
    try:
        with open_source(path, password=password, name=path) as src:
            indices = parse_page_range(pages, src.page_count, source=src.name)
            base.update(sha256=src.sha256, page_count=src.page_count)
    except DeepOCRError as exc:
        return [{**base, "error": str(exc)}]
    return [{**base, "page_index": i} for i in indices]


# -- stage 2: page rows -> page records (actor pool, one engine per actor) --------------------


class _OcrWorker:
    """A Ray Data callable class: holds one engine and the page cache, runs batches of pages."""

    def __init__(
        self,
        engine: str | Engine,
        engine_options: dict[str, Any],
        *,
        dpi: float,
        task: str,
        password: str | None,
        cache_path: str | None,
        resume: bool,
    ) -> None:
        self.engine = engine if isinstance(engine, Engine) else get_engine(engine, **engine_options)
        self.dpi, self.task, self.password, self.resume = dpi, task, password, resume
        self.cache = PageCache(cache_path) if cache_path else None
        self._sources: OrderedDict[str, Source] = OrderedDict()

    def _source(self, path: str) -> Source:
        src = self._sources.pop(path, None)
        if src is None:
            src = open_source(path, password=self.password, name=path)
        self._sources[path] = src
        while len(self._sources) > _OPEN_SOURCES:
            self._sources.popitem(last=False)[1].close()
        return src

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        rows = _rows(batch)
        out: list[dict[str, Any]] = []
        for path, group in groupby(rows, key=lambda r: r["path"]):
            items = list(group)
            if items[0]["error"]:  # an unreadable file: passes through to the report
                out.extend({**r, "page_json": "", "cached": False} for r in items)
                continue
            pages = self._pages(path, [r["page_index"] for r in items])
            for row, page in zip(items, pages, strict=True):
                cached = bool(page.metadata.pop("cached", False))
                page_json = json.dumps(page.to_dict(), ensure_ascii=False)
                out.append({**row, "page_json": page_json, "cached": cached})
        return _columns(out)

    def _pages(self, path: str, indices: list[int]) -> list[Page]:
        try:
            src = self._source(path)
        except DeepOCRError as exc:  # read at listing time, unreadable now: keep every page
            return [_unreadable_page(i, str(exc)) for i in indices]
        # The pipeline's own contract keeper: one page per index, in order, cache first.
        pages = list(
            _checked(
                self.engine,
                src,
                indices,
                self.dpi,
                self.task,
                self.cache if self.resume else None,
            )
        )
        if self.cache is not None and not self.resume:  # recompute, but still refresh the cache
            identity = self.engine.cache_identity()
            for page in pages:
                key = PageCache.key(src.sha256, page.index, identity, self.task, self.dpi)
                self.cache.put(key, page, src.sha256)
        return pages

    def __del__(self) -> None:
        for src in self._sources.values():
            src.close()


def _unreadable_page(index: int, error: str) -> Page:
    return Page(index=index, width=0.0, height=0.0, status=PageStatus.FAILED, error=error)


# -- stage 3: page records of one document -> chunks + a summary row --------------------------


def _assemble(batch: dict[str, Any], *, chunker: LayoutChunker) -> dict[str, list[Any]]:
    """All page records of one file -> its Document (page order) -> chunk rows + a summary."""
    rows = _rows(batch)
    path = rows[0]["path"]
    summary: dict[str, Any] = {"path": path, "file_error": rows[0]["error"]}
    out: list[dict[str, Any]] = []
    if not summary["file_error"]:
        records = [
            {
                "source": path,
                "document_sha256": r["sha256"],
                "total_pages": r["page_count"],
                PAGE_JSON_KEY: r["page_json"],
            }
            for r in rows
        ]
        (doc,) = document_from_records(records)
        chunks = chunker.chunk(doc)
        out = [
            {
                "row": _CHUNK,
                "path": path,
                "id": c.id,
                "text": c.text,
                "metadata": json.dumps(c.metadata, ensure_ascii=False),
            }
            for c in chunks
        ]
        summary.update(_summary(doc, sum(bool(r["cached"]) for r in rows), len(chunks)))
    info = json.dumps(summary, ensure_ascii=False)
    out.insert(0, {"row": _SUMMARY, "path": path, "id": "", "text": "", "metadata": info})
    return _columns(out)


def _summary(doc: Document, cached: int, chunks: int) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for page in doc.pages:
        counts[page.status.value] = counts.get(page.status.value, 0) + 1
    problems = [
        f"{doc.source}, page {p.label or p.index + 1}: {p.status.value}"
        + (f" ({p.error})" if p.error else "")
        for p in doc.problem_pages
    ]
    return {
        "pages": len(doc.pages),
        "cached": cached,
        "chunks": chunks,
        "status_counts": counts,
        "problems": problems,
    }


def _is_summary(row: dict[str, Any]) -> bool:
    return bool(row["row"] == _SUMMARY)


def _rows(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """A numpy/dict batch as a list of row dicts with plain Python values."""
    columns = {k: (v.tolist() if hasattr(v, "tolist") else list(v)) for k, v in batch.items()}
    n = len(next(iter(columns.values()), []))
    return [{k: v[i] for k, v in columns.items()} for i in range(n)]


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    keys = list(rows[0]) if rows else []
    return {k: [r[k] for r in rows] for k in keys}


# -- output -----------------------------------------------------------------------------------


def _file_rows(batch: dict[str, Any]) -> dict[str, list[Any]]:
    """Chunk rows as written to files (summary rows dropped): id, text and flat (scalar-only)
    metadata as JSON text, so every file shares one schema whatever keys a chunk has."""
    from chunking import Chunk

    rows = [r for r in _rows(batch) if r["row"] == _CHUNK]
    return {
        "id": [r["id"] for r in rows],
        "text": [r["text"] for r in rows],
        "metadata": [
            json.dumps(
                Chunk.from_dict(
                    {"id": r["id"], "text": r["text"], "metadata": json.loads(r["metadata"])}
                ).flat_metadata(),
                ensure_ascii=False,
            )
            for r in rows
        ],
    }


def _jsonl_datasink(out: str) -> Any:
    """A Ray datasink writing one JSON object per chunk and line, ``metadata`` nested as each
    chunk has it. ``write_json`` goes through an Arrow struct column, which gives every line
    every key any chunk has, as null where a chunk has none (Chroma rejects None)."""
    from ray.data.datasource import BlockBasedFileDatasink

    class JsonlDatasink(BlockBasedFileDatasink):  # type: ignore[misc]
        def write_block_to_file(self, block: Any, file: Any) -> None:
            lines = [
                json.dumps(
                    {"id": r["id"], "text": r["text"], "metadata": json.loads(r["metadata"])},
                    ensure_ascii=False,
                )
                + "\n"
                for r in block.iter_rows(public_row_format=False)
            ]
            file.write("".join(lines).encode())

    return JsonlDatasink(out, file_format="jsonl", mode=_overwrite())


def ingest_with_ray(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    engine: str | Engine = DEFAULT_ENGINE,
    engine_options: dict[str, Any] | None = None,
    chunker: LayoutChunker | None = None,
    num_ocr_actors: int = 1,
    num_gpus_per_actor: float = 0,
    num_cpus_per_actor: float = 1,
    batch_size: int = 16,
    output_format: OutputFormat = "jsonl",
    sink: Callable[[list[Chunk]], None] | None = None,
    cache: PageCache | str | os.PathLike[str] | bool | None = None,
    resume: bool = True,
    pages: PageSpec = None,
    dpi: float = DEFAULT_DPI,
    task: Task | str = Task.MARKDOWN,
    password: str | None = None,
) -> IngestReport:
    """Ingest files and folders on the current Ray cluster (``ray.init`` first, or a local one
    starts); returns an :class:`IngestReport`.

    ``out``: a folder the chunk files are written to (``output_format`` ``"jsonl"``: one object
    per line with ``id``, ``text`` and flat ``metadata``; ``"parquet"``: the same columns with
    ``metadata`` as JSON text); existing files there are replaced. ``sink``: called in the driver
    with each batch of :class:`chunking.Chunk` (full metadata; a document's chunks arrive
    together, in order), e.g. to upsert into a vector store. At least one of the two is needed.

    ``engine`` is a registered name (each actor makes its own with ``engine_options``: right for
    model engines) or a light :class:`Engine` instance that is pickled to the actors.
    ``num_ocr_actors`` engines run at once, each with ``num_gpus_per_actor`` GPUs and
    ``num_cpus_per_actor`` CPUs; ``batch_size`` pages go to an actor per call.

    ``cache``: the page cache (a :class:`PageCache`, a path on disk every node can reach, True
    for the user default, False for none); by default ``<out>.pages.sqlite`` beside ``out``, or
    the user default without ``out``. With ``resume`` pages finished by an earlier (or killed)
    run come from it instead of the engine; ``resume=False`` redoes every page and refreshes
    the cache. A file that cannot be read is reported in ``failed_files`` and the run goes on;
    pages that fail are kept (and listed in ``page_problems``), never dropped.
    """
    if out is None and sink is None:
        raise ValueError("ingest_with_ray needs an output folder (out=) or a sink callback")
    if output_format not in ("jsonl", "parquet"):
        raise ValueError(f"output_format must be 'jsonl' or 'parquet', not {output_format!r}")
    if num_ocr_actors < 1 or batch_size < 1:
        raise ValueError("num_ocr_actors and batch_size must be at least 1")
    ray = require_ray()
    from chunking import Chunk, LayoutChunker

    paths = list_inputs(inputs)
    cache_path = _cache_path(cache, out)
    task_name = task.value if isinstance(task, Task) else str(task)
    if isinstance(engine, Engine) and engine_options:
        raise TypeError("engine_options go with an engine name, not an Engine instance")
    report = IngestReport()
    if not paths:
        return report

    if not ray.is_initialized():
        ray.init()  # a local cluster, or the one RAY_ADDRESS names

    # Datasets take the context's settings when created: build them inside.
    with _sort_shuffle(ray):
        ds = ray.data.from_items(
            [{"path": str(p)} for p in paths], override_num_blocks=min(len(paths), 200)
        )
        ds = ds.flat_map(_page_rows, fn_kwargs={"pages": pages, "password": password})
        ds = ds.map_batches(
            _OcrWorker,
            fn_constructor_args=(engine, dict(engine_options or {})),
            fn_constructor_kwargs={
                "dpi": dpi,
                "task": task_name,
                "password": password,
                "cache_path": cache_path,
                "resume": resume,
            },
            batch_size=batch_size,
            concurrency=num_ocr_actors,
            num_gpus=num_gpus_per_actor or None,
            num_cpus=num_cpus_per_actor,
        )
        # As many groups at once as the cluster has CPUs (x2), not Ray's default 200 partitions:
        # on a small cluster those cost more than the chunking itself.
        cpus = int(ray.cluster_resources().get("CPU", 1))
        if num_ocr_actors * num_cpus_per_actor > cpus - 1:
            # The listing and assembly tasks need a CPU of their own, or the run stalls.
            log.warning(
                "%d OCR actor(s) x %g CPU leave less than one of the cluster's %d CPUs for the "
                "other tasks; lower num_cpus_per_actor if the run stalls",
                num_ocr_actors,
                num_cpus_per_actor,
                cpus,
            )
        ds = ds.groupby("path", num_partitions=max(1, min(len(paths), 2 * cpus))).map_groups(
            _assemble, fn_kwargs={"chunker": chunker or LayoutChunker()}, batch_format="numpy"
        )
        # Materialised once; one pass in the driver reads the summaries (and feeds the sink), the
        # writers run on the cluster. Each Ray Data execution has a fixed start-up cost: few passes.
        done = ds.materialize()
    # Without a sink only the per-file summaries come to the driver; chunks stay on the cluster.
    wanted = done if sink is not None else done.filter(_is_summary)
    for batch in wanted.iter_batches(batch_format="numpy", batch_size=256):
        chunks: list[Chunk] = []
        for r in _rows(batch):
            if r["row"] == _SUMMARY:
                report._add(json.loads(r["metadata"]))
            elif sink is not None:
                metadata = json.loads(r["metadata"])
                chunks.append(
                    Chunk.from_dict({"id": r["id"], "text": r["text"], "metadata": metadata})
                )
        if chunks and sink is not None:
            sink(chunks)
    if out is not None:
        files = done.map_batches(_file_rows, batch_format="numpy")
        if output_format == "parquet":
            files.write_parquet(str(out), mode=_overwrite())
        else:
            files.write_datasink(_jsonl_datasink(str(out)))
    return report


@contextmanager
def _sort_shuffle(ray: Any) -> Iterator[None]:
    """Run with the sort-based pull shuffle for the groupby: on a few partitions it starts in
    well under a second, where the default hash shuffle first starts aggregator actors."""
    from ray.data.context import ShuffleStrategy

    ctx = ray.data.DataContext.get_current()
    before = ctx.shuffle_strategy
    ctx.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    try:
        yield
    finally:
        ctx.shuffle_strategy = before


def _overwrite() -> Any:
    from ray.data import SaveMode

    return SaveMode.OVERWRITE


def _cache_path(
    cache: PageCache | str | os.PathLike[str] | bool | None, out: str | os.PathLike[str] | None
) -> str | None:
    """Where the actors' page cache lives (a path: actors open their own connection)."""
    if cache is False:
        return None
    if isinstance(cache, PageCache):
        return str(cache.path)
    if cache is True or (cache is None and out is None):
        return str(PageCache().path)
    if cache is None:
        return str(Path(out).resolve()) + ".pages.sqlite"  # type: ignore[arg-type]
    return str(cache)
