"""The ``deepocr`` command line.

  deepocr demo                      the bundled sample end to end (convert, chunk, inspect)
  deepocr convert FILE... -o DIR    Markdown + JSON per file
  deepocr chunk FILE... -o OUT.jsonl
  deepocr ingest DIR -o OUT.jsonl   a folder, recursively, with a summary of failures
                                    (--ray: spread over a Ray cluster)
  deepocr inspect FILE -o DIR       page images with boxes and an HTML view of the chunks
  deepocr parse RAW.txt             saved model output of one page -> Markdown + JSON

Exit codes: 0 all pages converted; 3 every file was read but some pages are not ``ok``
(failed, truncated, needs OCR; listed on stderr); 1 a file could not be read or an engine could
not start; 2 bad usage (one line naming the option, before any work).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import logging
import math
import multiprocessing
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .atomic import atomic_write, write_bytes_atomic, write_text_atomic
from .document import BlockKind, Document, PageStatus
from .errors import ConfigError, DeepOCRError
from .grounding import build_page, parse_grounded_page
from .samples import sample_grounded_output
from .sources import SUPPORTED_SUFFIXES, list_inputs, open_source

__all__ = ["main"]

EXIT_OK, EXIT_FILE_ERROR, EXIT_USAGE, EXIT_PAGES_NOT_OK = 0, 1, 2, 3
_LETTER = (612.0, 792.0)

log = logging.getLogger("deepocr")


# -- shared options -----------------------------------------------------------------------------


def _engine_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine")
    g.add_argument(
        "--engine", default="auto", help="auto, text-layer, deepseek-ocr-2, openai, recorded"
    )
    g.add_argument("--model", help="hub id or local folder of the model")
    g.add_argument(
        "--engine-option",
        "-E",
        action="append",
        type=_engine_option,
        default=[],
        metavar="KEY=VALUE",
        help="engine option, repeatable (e.g. -E device=cuda -E batch_size=8)",
    )
    g.add_argument("--pages", help='page range, 1-based, e.g. "1-3,7"')
    g.add_argument("--dpi", type=float, default=144, help="rendering DPI (default 144)")
    g.add_argument("--password", help="password for encrypted PDFs")
    g.add_argument("--task", default="markdown", help="task name or free-text prompt")
    g.add_argument("--cache", help="page cache file (default: the user cache folder)")
    g.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _add_chunk_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("chunking")
    g.add_argument("--max-tokens", type=int, default=400)
    g.add_argument("--min-tokens", type=int, default=None)
    g.add_argument("--overlap-tokens", type=int, default=0)
    g.add_argument("--table-max-tokens", type=int, default=None, help="budget of table row groups")
    g.add_argument(
        "--table-embedding",
        choices=["auto", "rows", "keys"],
        default="auto",
        help=(
            "what a split table's chunks embed: their rows, or their key column (auto: keys "
            "where the other cells are numbers or recurring words)"
        ),
    )


def _convert_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    cache: Any = False if args.no_cache else (args.cache or True)
    common = {
        "pages": args.pages,
        "dpi": args.dpi,
        "password": args.password,
        "task": args.task,
        "cache": cache,
    }
    engine = getattr(args, "engine_instance", None)
    if engine is not None:  # started (and its options checked) once, before any file
        return {"engine": engine, **common}
    return {"engine": args.engine, "model": args.model, **common, **dict(args.engine_option)}


def _convert(path: Path, kwargs: dict[str, Any], quiet: bool) -> Document:
    from tqdm import tqdm

    from .pipeline import open_document

    with open_document(path, name=str(path), **kwargs) as stream:
        doc = stream.document
        bar = tqdm(
            total=len(stream.page_indices), unit="page", desc=path.name, disable=quiet, leave=False
        )
        tokens = 0
        for page in stream.pages:
            doc.pages.append(page)
            bar.update(1)
            # Model engines count their tokens: show the decode rate beside tqdm's pages/s.
            generated = page.metadata.get("generated_tokens")
            if isinstance(generated, int) and generated:
                tokens += generated
                elapsed = bar.format_dict.get("elapsed") or 0.0
                if elapsed > 0:
                    bar.set_postfix_str(f"{tokens / elapsed:.0f} tok/s", refresh=False)
        bar.close()
    return doc


def _chunk_dicts(doc: Document, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [c.to_dict() for c in _chunker(args).chunk(doc)]


def _chunker(args: argparse.Namespace) -> Any:
    from chunking import ChunkerSettings, LayoutChunker

    settings = ChunkerSettings(
        max_tokens=args.max_tokens,
        min_tokens=args.min_tokens,
        overlap_tokens=args.overlap_tokens,
        table_max_tokens=args.table_max_tokens,
        table_embedding=args.table_embedding,
    )
    return LayoutChunker(settings=settings)


@dataclass
class _Report:
    """What a multi-file run tells the user at the end (and how it exits)."""

    files_ok: int = 0
    file_errors: list[str] = field(default_factory=list)
    page_problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Folder entries that were not read (symlink loops, broken links, unreadable folders)."""
    shown_errors: int = 0
    """How many of ``file_errors`` were already printed as they happened (not repeated)."""

    def warn(self, error: str, write: Any = None) -> None:
        """Record a file error and print it now; the summary will not print it again."""
        self.file_errors.append(error)
        (write or print)(f"deepocr: {error}", file=sys.stderr)
        self.shown_errors = len(self.file_errors)

    def add_document(self, doc: Document) -> None:
        self.files_ok += 1
        for page in doc.problem_pages:
            self.page_problems.append(
                f"{doc.source}, page {page.label}: {page.status.value}"
                + (f" ({page.error})" if page.error else "")
            )

    def converted(
        self, paths: Sequence[Path], kwargs: dict[str, Any], quiet: bool
    ) -> Iterator[tuple[Path, Document]]:
        """Convert each file; a file that cannot be read is recorded and skipped."""
        for path in paths:
            try:
                doc = _convert(path, kwargs, quiet)
            except DeepOCRError as exc:
                self.file_errors.append(str(exc))
                continue
            yield path, doc
            self.add_document(doc)

    def exit_code(self) -> int:
        if self.file_errors:
            return EXIT_FILE_ERROR
        return EXIT_PAGES_NOT_OK if self.page_problems else EXIT_OK

    def print(self) -> None:
        for line in self.skipped:
            print(f"deepocr: skipped {line}", file=sys.stderr)
        for line in self.file_errors[self.shown_errors :]:
            print(f"deepocr: {line}", file=sys.stderr)
        for line in self.page_problems:
            print(f"deepocr: {line}", file=sys.stderr)
        print(
            f"{self.files_ok} file(s) converted, {len(self.file_errors)} failed, "
            f"{len(self.page_problems)} page(s) not ok"
            + (f", {len(self.skipped)} skipped" if self.skipped else ""),
            file=sys.stderr,
        )


def skipped_entries(inputs: Sequence[str | os.PathLike[str]]) -> list[str]:
    """What walking the folders among ``inputs`` leaves out without a word, and why.

    ``list_inputs`` takes the regular files with a supported suffix and does not follow
    symlinked folders; this names the rest: symlink loops, broken links, symlinked folders,
    other non-files with a supported name, and folders that cannot be read.
    """
    found: list[str] = []
    for item in inputs:
        if not Path(item).is_dir():
            continue

        def unreadable(exc: OSError) -> None:
            found.append(f"{exc.filename}: cannot read folder ({exc.strerror or exc})")

        for root, dirs, files in os.walk(item, onerror=unreadable):
            for name in sorted(dirs):
                path = os.path.join(root, name)
                if os.path.islink(path):
                    found.append(f"{path}: symlink to a folder, not followed")
            for name in sorted(files):
                path = os.path.join(root, name)
                if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES or os.path.isfile(path):
                    continue
                try:
                    os.stat(path)
                except OSError as exc:
                    if exc.errno == errno.ELOOP:
                        found.append(f"{path}: symlink loop")
                    elif os.path.islink(path) and exc.errno == errno.ENOENT:
                        found.append(f"{path}: broken symlink")
                    else:
                        found.append(f"{path}: {exc.strerror or exc}")
                else:
                    found.append(f"{path}: not a regular file")
    return found


# -- option checks, before any work ------------------------------------------------------------


class UsageError(Exception):
    """A bad option: one line naming it on stderr, exit code 2."""


_FOLDER_OUTPUT = {"demo", "convert", "inspect", "parse"}
_CHUNK_FLAGS = ("max_tokens", "min_tokens", "overlap_tokens", "table_max_tokens", "table_embedding")


def check_options(args: argparse.Namespace) -> None:
    """Raise :class:`UsageError` for an option no run could use (cheap checks only)."""
    dpi = getattr(args, "dpi", None)
    if dpi is not None and not (math.isfinite(dpi) and dpi > 0):
        raise UsageError(f"--dpi must be a positive number, not {dpi:g}")
    if hasattr(args, "max_tokens"):
        _check_chunk_options(args)
    if args.command == "ingest":
        if not Path(args.folder).is_dir():
            raise UsageError(f"{args.folder}: not a folder")
        if args.workers < 1:
            raise UsageError(f"--workers must be at least 1, not {args.workers}")
        if args.ocr_actors < 1:
            raise UsageError(f"--ocr-actors must be at least 1, not {args.ocr_actors}")
        if not (math.isfinite(args.gpus_per_actor) and args.gpus_per_actor >= 0):
            raise UsageError(f"--gpus-per-actor must be 0 or more, not {args.gpus_per_actor:g}")
    if args.command in ("convert", "chunk", "ingest", "inspect", "demo"):
        from .engines import available_engines

        if args.engine not in available_engines():
            known = ", ".join(available_engines())
            raise UsageError(f"--engine {args.engine}: unknown engine (known: {known})")
    if args.command in _FOLDER_OUTPUT:
        _check_output_folder(Path(args.out))
    elif args.out != "-":
        target = Path(args.out)
        if target.is_dir():
            raise UsageError(f"-o {target}: is a folder; give the JSONL file's name")
        _check_output_folder(target.parent, shown=target)


def _check_chunk_options(args: argparse.Namespace) -> None:
    if args.max_tokens < 1:
        raise UsageError(f"--max-tokens must be at least 1, not {args.max_tokens}")
    if args.min_tokens is not None and not 0 <= args.min_tokens <= args.max_tokens:
        raise UsageError(
            f"--min-tokens must be between 0 and --max-tokens ({args.max_tokens}), "
            f"not {args.min_tokens}"
        )
    if not 0 <= args.overlap_tokens < args.max_tokens:
        raise UsageError(
            f"--overlap-tokens must be at least 0 and less than --max-tokens "
            f"({args.max_tokens}), not {args.overlap_tokens}"
        )
    if args.table_max_tokens is not None and args.table_max_tokens < 1:
        raise UsageError(f"--table-max-tokens must be at least 1, not {args.table_max_tokens}")
    try:  # whatever else the chunker refuses, said with the flags' names
        _chunker(args)
    except ValueError as exc:
        text = str(exc)
        for dest in _CHUNK_FLAGS:
            text = re.sub(rf"\b{dest}\b", "--" + dest.replace("_", "-"), text)
        raise UsageError(text) from exc


def _check_output_folder(folder: Path, shown: Path | None = None) -> None:
    """A file can be created in ``folder``, or in the folder that will hold it (nothing is
    created here: the command makes the folder when it writes)."""
    existing = Path(os.path.abspath(folder))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is not a folder")
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise UsageError(
            f"-o {shown or folder}: cannot write there ({exc.strerror or exc})"
        ) from exc


def start_engine(args: argparse.Namespace) -> Any:
    """The run's engine, made once before any file (its options checked), or None.

    ``ingest --ray`` leaves it to the cluster's actors; ``ingest --workers N`` checks the
    options here but lets each worker process make its own.
    """
    from .engines import Engine
    from .pipeline import resolve_engine

    if not hasattr(args, "engine") or args.command == "parse":
        return None
    if args.command == "ingest" and args.ray:
        return None
    if args.command == "inspect" and args.json:
        return None
    options = dict(getattr(args, "engine_option", []))
    try:
        engine: Engine = resolve_engine(args.engine, getattr(args, "model", None), options)
    except ConfigError as exc:
        raise UsageError(_engine_option_message(exc, args, options)) from exc
    if args.command == "ingest" and args.workers > 1:
        engine.close()
        return None
    return engine


def _engine_option_message(exc: ConfigError, args: argparse.Namespace, options: dict) -> str:
    option = exc.option or ""
    if option == "model":
        return f"--model: {exc}"
    if option in options:
        return f"-E {option}={json.dumps(options[option])}: {exc}"
    if option:  # a required option left out
        return f"--engine {args.engine}: {exc} (give it with -E {option}=...)"
    return f"--engine {args.engine}: {exc}"


# -- commands -----------------------------------------------------------------------------------


def output_stems(paths: Sequence[Path]) -> dict[Path, Path]:
    """Where each input's outputs go, relative to the output folder and without a suffix.

    Inputs keep their path under the folder that holds them all (``kb/a/report.pdf`` and
    ``kb/b/report.pdf`` give ``a/report`` and ``b/report``); a lone file, or files side by side,
    give just their stem. Two inputs never share outputs: names that still clash (``report.pdf``
    and ``report.png``) keep their suffix (``report.pdf``), and any clash left gets ``-2``...
    """
    absolute = {path: Path(os.path.abspath(path)) for path in paths}
    if not absolute:
        return {}
    root = Path(os.path.commonpath([p.parent for p in absolute.values()]))
    relative = {path: a.relative_to(root) for path, a in absolute.items()}
    by_stem = Counter(r.parent / r.stem for r in relative.values())
    taken: set[Path] = set()
    stems: dict[Path, Path] = {}
    for path, rel in relative.items():
        stem = rel.parent / rel.stem
        candidate = stem if by_stem[stem] == 1 else rel
        n = 1
        while candidate in taken:
            n += 1
            candidate = rel.parent / f"{rel.name}-{n}"
        taken.add(candidate)
        stems[path] = candidate
    return stems


def _cmd_convert(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = _Report(skipped=skipped_entries(args.inputs))
    paths = list_inputs(args.inputs)
    stems = output_stems(paths)
    for path, doc in report.converted(paths, _convert_kwargs(args), args.quiet):
        stem = stems[path]
        folder = out / stem.parent
        if args.crop_figures:
            _crop_figures(path, doc, folder, stem.name, args)
        _write_doc(doc, folder, stem.name)
        if not args.quiet:
            print(f"{path} -> {out / stem}.md, .json ({len(doc.pages)} pages)")
    report.print()
    return report.exit_code()


def _crop_figures(
    path: Path, doc: Document, out: Path, stem: str, args: argparse.Namespace
) -> None:
    """Save figure regions as images next to the Markdown, which then links them."""
    from .figures import crop_figures

    with open_source(path, password=args.password) as src:
        for page in doc.pages:
            if any(b.kind is BlockKind.FIGURE and b.bbox for b in page.blocks):
                image = src.render(page.index, args.dpi).image
                crop_figures(page, image, out, stem=stem)


def _cmd_chunk(args: argparse.Namespace) -> int:
    report = _Report(skipped=skipped_entries(args.inputs))
    with _open_out(args.out) as sink:
        for _, doc in report.converted(list_inputs(args.inputs), _convert_kwargs(args), args.quiet):
            for chunk in _chunk_dicts(doc, args):
                sink.write(json.dumps(chunk, ensure_ascii=False) + "\n")
    report.print()
    return report.exit_code()


@contextlib.contextmanager
def _open_out(target: str) -> Iterator[IO[str]]:
    """A JSONL sink: stdout for ``-``, else a temporary file that replaces ``target`` only when
    the run ends normally (a crash or ``kill -9`` leaves the previous output as it was)."""
    if target == "-":
        yield sys.stdout
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as handle:
        yield handle


def _ingest_one(
    path: Path, kwargs: dict[str, Any], args: argparse.Namespace
) -> tuple[Document | None, list[dict[str, Any]], str | None]:
    try:
        doc = _convert(path, kwargs, quiet=True)
    except DeepOCRError as exc:
        return None, [], str(exc)
    return doc, _chunk_dicts(doc, args), None


def _cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if not Path(args.folder).is_dir():
        print(f"deepocr: {args.folder}: not a folder", file=sys.stderr)
        return EXIT_USAGE
    if args.ray:
        return _ingest_ray(args)
    paths = list_inputs([args.folder])
    report = _Report(skipped=skipped_entries([args.folder]))
    kwargs = _convert_kwargs(args)

    def results() -> Iterator[tuple[Document | None, list[dict[str, Any]], str | None]]:
        if args.workers <= 1:
            for path in paths:
                yield _ingest_one(path, kwargs, args)
            return
        # Files are independent: rasterising and the text layer scale across processes.
        # Spawned, not forked: a fork copies ONNX Runtime's (layout model) and torch's thread
        # pools without their threads, and a child that then runs the model waits forever.
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=spawn) as pool:
            yield from pool.map(_ingest_one, paths, [kwargs] * len(paths), [args] * len(paths))

    bar = tqdm(total=len(paths), unit="file", disable=args.quiet)
    with _open_out(args.out) as sink:
        for doc, chunks, error in results():
            bar.update(1)
            if error is not None:
                if args.on_error == "warn":  # now, and not again in the summary
                    report.warn(error, bar.write)
                else:
                    report.file_errors.append(error)
                if args.on_error == "raise":
                    break
                continue
            assert doc is not None
            for chunk in chunks:
                sink.write(json.dumps(chunk, ensure_ascii=False) + "\n")
            report.add_document(doc)
    bar.close()
    report.print()
    return report.exit_code()


def _ingest_ray(args: argparse.Namespace) -> int:
    """``ingest --ray``: the same JSONL and exit codes, with pages spread over a Ray cluster.

    A bad file never stops a distributed run (``--on-error raise`` cannot cancel work already
    out on the cluster): every failure is listed at the end and the exit code is 1.
    """
    from .distributed import ingest_with_ray, require_ray

    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=args.ray_address, include_dashboard=False, log_to_driver=not args.quiet)
    if args.quiet:
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    options = dict(args.engine_option)
    if args.model:
        options["model"] = args.model
    with _open_out(args.out) as out:
        # The driver writes the one JSONL file, in the single-process path's format.
        def sink(chunks: list[Any]) -> None:
            out.writelines(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in chunks)

        result = ingest_with_ray(
            args.folder,
            engine=args.engine,
            engine_options=options,
            chunker=_chunker(args),
            num_ocr_actors=args.ocr_actors,
            num_gpus_per_actor=args.gpus_per_actor,
            sink=sink,
            cache=_convert_kwargs(args)["cache"],
            pages=args.pages,
            dpi=args.dpi,
            task=args.task,
            password=args.password,
        )
    report = _Report(
        files_ok=result.documents,
        file_errors=[reason for _, reason in result.failed_files],
        page_problems=result.page_problems,
    )
    report.print()
    return report.exit_code()


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect_view import render_inspection

    path = Path(args.input)
    if args.json:
        doc = Document.from_json(Path(args.json).read_text(encoding="utf-8"))
    else:
        doc = _convert(path, _convert_kwargs(args), args.quiet)
    chunks = _chunk_dicts(doc, args) if args.chunks else []
    index = render_inspection(path, doc, args.out, chunks=chunks, password=args.password)
    print(f"wrote {index}")
    return EXIT_PAGES_NOT_OK if doc.problem_pages else EXIT_OK


def make_sample_pdf(path: Path) -> None:
    """Draw the bundled sample's blocks at their boxes, so the sample output matches a real PDF."""
    import pymupdf

    raw = sample_grounded_output()
    width, height = _LETTER
    parsed = parse_grounded_page(raw, width, height)
    pdf = pymupdf.open()
    page = pdf.new_page(width=width, height=height)
    for block in parsed.blocks:
        if block.bbox is None:
            continue
        rect = pymupdf.Rect(*block.bbox.as_tuple())
        if block.kind is BlockKind.FIGURE:
            # A small chart: a frame and a polyline, enough to be an image region on the page.
            page.draw_rect(rect, color=(0.6, 0.6, 0.6), width=0.5)
            pts = [
                pymupdf.Point(rect.x0 + rect.width * t / 8, rect.y1 - rect.height * h)
                for t, h in enumerate((0.1, 0.15, 0.3, 0.8, 0.6, 0.45, 0.3, 0.25, 0.2))
            ]
            page.draw_polyline(pts, color=(0.1, 0.3, 0.7), width=1.5)
            continue
        html = block.html or block.text.lstrip("#").strip()
        if block.kind is BlockKind.EQUATION:
            html = "L = a · Q<sup>b</sup>, b ≈ 1.6"
        size = {"title": 20, "heading": 13}.get(block.kind.value, 10)
        css = f"* {{font-family: sans-serif; font-size: {size}px;}}"
        css += " td {border: 0.5px solid #888;}"
        page.insert_htmlbox(rect, html, css=css)
    pdf.set_metadata({"title": "Spring Survey of the Alder Creek Watershed"})
    data = pdf.tobytes()
    pdf.close()
    write_bytes_atomic(path, data)


def _write_doc(doc: Document, out_dir: Path, stem: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    write_text_atomic(md_path, doc.to_markdown())
    write_text_atomic(json_path, doc.to_json(indent=2))
    return md_path, json_path


def _cmd_demo(args: argparse.Namespace) -> int:
    from .inspect_view import render_inspection

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pdf_path = out / "sample.pdf"
    make_sample_pdf(pdf_path)
    written = [pdf_path]

    # 1. The main job on this machine: convert (auto = text layer, OCR where a page needs it).
    engine = getattr(args, "engine_instance", None) or args.engine
    doc = _convert(pdf_path, {"engine": engine, "cache": False}, quiet=True)
    written += _write_doc(doc, out, "sample")
    chunks = _chunk_dicts(doc, args)
    chunks_path = out / "sample.chunks.jsonl"
    write_text_atomic(
        chunks_path, "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in chunks)
    )
    written.append(chunks_path)
    written.append(render_inspection(pdf_path, doc, out / "inspect", chunks=chunks))

    # 2. What an OCR model returns for the same page: recorded DeepSeek-OCR output, parsed.
    with open_source(pdf_path) as source:
        width, height = source.page_size(0)
        page = build_page(
            sample_grounded_output(), index=0, width=width, height=height, engine="recorded"
        )
        ocr_doc = Document(str(pdf_path), sha256=source.sha256, page_count=1, pages=[page])
    written += _write_doc(ocr_doc, out, "sample.recorded-ocr")

    print(doc.to_markdown())
    print(f"--- {len(doc.pages)} page(s) via {doc.pages[0].engine}, {len(chunks)} chunk(s):")
    for chunk in chunks:
        meta = chunk["metadata"]
        print(f"  [{meta['kind']:8}] p.{meta['page_label_start']}  {meta['headings'][:60]}")
    for path in written:
        print(f"wrote {path}")
    return EXIT_PAGES_NOT_OK if doc.problem_pages else EXIT_OK


def _cmd_parse(args: argparse.Namespace) -> int:
    raw_path = Path(args.raw)
    try:
        raw = raw_path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"deepocr: cannot read {raw_path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.pdf:
        with open_source(args.pdf) as source:
            if not 0 <= args.page < source.page_count:
                print(f"deepocr: {args.pdf} has no page {args.page + 1}", file=sys.stderr)
                return EXIT_USAGE
            width, height = source.page_size(args.page)
            label = source.page_label(args.page)
            sha, count, name = source.sha256, source.page_count, str(args.pdf)
    else:
        width, height = args.page_size
        label, sha, count, name = "", hashlib.sha256(raw.encode()).hexdigest(), 1, str(raw_path)
    page = build_page(
        raw, index=args.page, width=width, height=height, label=label, engine="recorded"
    )
    doc = Document(source=name, sha256=sha, page_count=count, pages=[page])
    md_path, json_path = _write_doc(doc, Path(args.out), raw_path.name.split(".")[0] or "output")
    print(f"{len(page.blocks)} blocks, status {page.status.value}; wrote {md_path}, {json_path}")
    return EXIT_OK if page.status is PageStatus.OK else EXIT_PAGES_NOT_OK


def _page_size(text: str) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in points, got {text!r}") from exc
    return w, h


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepocr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log engine details")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the bundled sample end to end")
    demo.add_argument("-o", "--out", default="out", help="output folder (default: out)")
    demo.add_argument("--engine", default="auto", help="engine for the sample (default: auto)")
    _add_chunk_args(demo)
    demo.set_defaults(func=_cmd_demo)

    convert = sub.add_parser("convert", help="PDFs/images -> Markdown + JSON")
    convert.add_argument("inputs", nargs="+", help="files or folders")
    convert.add_argument("-o", "--out", default="out", help="output folder (default: out)")
    convert.add_argument(
        "--crop-figures", action="store_true", help="save figure regions as images, linked"
    )
    _add_engine_args(convert)
    convert.set_defaults(func=_cmd_convert)

    chunk = sub.add_parser("chunk", help="PDFs/images -> JSONL of layout chunks")
    chunk.add_argument("inputs", nargs="+", help="files or folders")
    chunk.add_argument("-o", "--out", default="-", help="JSONL file, - for stdout")
    _add_engine_args(chunk)
    _add_chunk_args(chunk)
    chunk.set_defaults(func=_cmd_chunk)

    ingest = sub.add_parser("ingest", help="a folder, recursively -> JSONL of chunks")
    ingest.add_argument("folder")
    ingest.add_argument("-o", "--out", required=True, help="JSONL file, - for stdout")
    ingest.add_argument("--workers", type=int, default=1, help="files converted in parallel")
    ingest.add_argument(
        "--on-error",
        choices=("raise", "skip", "warn"),
        default="warn",
        help="a file that cannot be read: stop, skip quietly, or warn and go on",
    )
    g = ingest.add_argument_group("Ray (pip install 'deepocr-loaders[ray]')")
    g.add_argument("--ray", action="store_true", help="run on a Ray cluster (Ray Data)")
    g.add_argument(
        "--ray-address",
        help="cluster to join, e.g. ray://head:10001 (default: RAY_ADDRESS or local)",
    )
    g.add_argument("--ocr-actors", type=int, default=1, help="engines running at once (--ray)")
    g.add_argument(
        "--gpus-per-actor", type=float, default=0, help="GPUs per engine, e.g. 1 or 0.5 (--ray)"
    )
    _add_engine_args(ingest)
    _add_chunk_args(ingest)
    ingest.set_defaults(func=_cmd_ingest)

    inspect = sub.add_parser("inspect", help="draw block and chunk boxes onto page images")
    inspect.add_argument("input", help="the PDF or image")
    inspect.add_argument("--json", help="a Document JSON from `deepocr convert` (else convert)")
    inspect.add_argument("--chunks", action="store_true", help="show chunks in index.html")
    inspect.add_argument("-o", "--out", default="inspect", help="output folder")
    _add_engine_args(inspect)
    _add_chunk_args(inspect)
    inspect.set_defaults(func=_cmd_inspect)

    parse = sub.add_parser("parse", help="saved grounded model output of one page")
    parse.add_argument("raw", help="text file with the model's output for one page")
    parse.add_argument("--pdf", help="the PDF the page comes from (gives its size and label)")
    parse.add_argument("--page", type=int, default=0, help="0-based page index in --pdf")
    parse.add_argument(
        "--page-size",
        type=_page_size,
        default=_LETTER,
        help="WIDTHxHEIGHT in points when no --pdf is given (default 612x792)",
    )
    parse.add_argument("-o", "--out", default="out", help="output folder (default: out)")
    parse.set_defaults(func=_cmd_parse)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR, format="%(name)s: %(message)s"
    )
    if not args.verbose:  # a damaged or unwritable cache is said once, even without -v
        logging.getLogger("deepocr_loaders.cache").setLevel(logging.WARNING)
    engine = None
    try:
        check_options(args)  # options first: a bad one costs no work and names itself
        engine = args.engine_instance = start_engine(args)
        return int(args.func(args))
    except UsageError as exc:
        print(f"deepocr: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DeepOCRError as exc:
        print(f"deepocr: {exc}", file=sys.stderr)
        return EXIT_FILE_ERROR
    finally:
        if engine is not None:
            engine.close()


if __name__ == "__main__":
    sys.exit(main())
