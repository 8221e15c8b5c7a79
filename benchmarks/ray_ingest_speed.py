"""Pages/s of ``ingest_with_ray`` (Ray Data, local CPU cluster) vs the single-process CLI path.

Both ingest the same generated folder (``--docs`` PDFs of ``--pages`` born-digital pages with
headings, lists, a ruled table and two-column text) with the text-layer engine, no page cache,
to JSONL chunks. The CLI runs in this process (``deepocr ingest``, ``--workers 1`` and ``N``);
Ray runs on a local cluster of ``--cpus`` CPUs with 1..``--actors`` engine actors. Ray rows are
timed twice: the first run of a fresh cluster (worker processes start, each actor loads the
layout model) and a second run on the warm cluster. Every path must produce the same chunk ids.

Usage::

    python benchmarks/ray_ingest_speed.py [--docs 40] [--pages 5] [--cpus 2] [--actors 2]

Prints a Markdown table; asserts only that the paths agree on the chunks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pymupdf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from pdf_factory import born_digital_pdf, two_column_pdf  # noqa: E402

from deepocr_loaders.cli import main as cli_main  # noqa: E402


def make_folder(folder: Path, docs: int, pages: int) -> None:
    """``docs`` PDFs of ``pages`` pages each, cycling through the factory's page kinds."""
    parts = [pymupdf.open(stream=born_digital_pdf()), pymupdf.open(stream=two_column_pdf())]
    kinds = [(0, 0), (0, 1), (1, 0)]  # report page, two-column page, one-column-only page
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(docs):
        out = pymupdf.open()
        for p in range(pages):
            src, page = kinds[(d + p) % len(kinds)]
            out.insert_pdf(parts[src], from_page=page, to_page=page)
        out.set_metadata({"title": f"Generated report {d}"})
        out.save(folder / f"doc{d:03d}.pdf")
        out.close()


def run_cli(folder: Path, out: Path, workers: int) -> tuple[float, set[str]]:
    args = ["ingest", str(folder), "-o", str(out), "-q", "--no-cache", "--engine", "text-layer"]
    start = time.perf_counter()
    code = cli_main([*args, "--workers", str(workers)])
    seconds = time.perf_counter() - start
    assert code == 0, f"CLI exit code {code}"
    return seconds, {json.loads(line)["id"] for line in out.read_text().splitlines()}


def run_ray(folder: Path, out: Path, actors: int, cpus_per_actor: float) -> tuple[float, set[str]]:
    from deepocr_loaders.distributed import ingest_with_ray

    ids: set[str] = set()
    start = time.perf_counter()
    report = ingest_with_ray(
        folder,
        out,
        engine="text-layer",
        num_ocr_actors=actors,
        num_cpus_per_actor=cpus_per_actor,
        sink=lambda chunks: ids.update(c.id for c in chunks),
        cache=False,
    )
    seconds = time.perf_counter() - start
    assert not report.failed_files and not report.page_problems, report
    return seconds, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    parser.add_argument("--actors", type=int, default=2, help="up to this many engine actors")
    opts = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import ray

    rows: list[tuple[str, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "kb"
        make_folder(folder, opts.docs, opts.pages)
        total = opts.docs * opts.pages
        reference: set[str] | None = None

        def record(label: str, seconds: float, ids: set[str]) -> None:
            nonlocal reference
            reference = ids if reference is None else reference
            assert ids == reference, f"{label}: different chunks"
            rows.append((label, seconds, len(ids)))
            print(f"  {label}: {seconds:.1f} s", file=sys.stderr)

        for workers in sorted({1, opts.cpus}):
            seconds, ids = run_cli(folder, Path(tmp) / f"cli{workers}.jsonl", workers)
            record(f"CLI `deepocr ingest --workers {workers}`", seconds, ids)

        start = time.perf_counter()
        ray.init(num_cpus=opts.cpus, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        init_s = time.perf_counter() - start
        for actors in range(1, opts.actors + 1):
            # Actors share the CPUs with the listing/assembly tasks (1 CPU each): leave one.
            per_actor = min(1.0, max(0.25, (opts.cpus - 1) / actors))
            for run in ("first run", "warm cluster"):
                out = Path(tmp) / f"ray{actors}"
                seconds, ids = run_ray(folder, out, actors, per_actor)
                record(f"Ray Data, {actors} actor(s) x {per_actor:g} CPU, {run}", seconds, ids)
        ray.shutdown()

    print(
        f"\n{opts.docs} PDFs x {opts.pages} pages = {total} pages, text-layer engine, no cache; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
        f"Ray local cluster num_cpus={opts.cpus}; ray.init took {init_s:.1f} s\n"
    )
    print("| path | wall s | pages/s | chunks |")
    print("|---|---:|---:|---:|")
    for label, seconds, chunks in rows:
        if seconds:
            print(f"| {label} | {seconds:.1f} | {total / seconds:.1f} | {chunks} |")


if __name__ == "__main__":
    main()
