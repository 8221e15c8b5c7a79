"""Chunking a paragraph joined across many pages: time, peak memory, pages cited per chunk.

Usage::

    python benchmarks/chunk_provenance.py [--pages 60 400 2000] [--full-stops]

The document is the generated glossary of ``tests/chunk_docs.py``: six entries a page, none
ending a sentence, so the chunker joins the whole glossary into one paragraph unit (with
``--full-stops`` every entry ends one). Each size runs in a fresh process, so its peak resident
memory (``ru_maxrss``, document and interpreter included) is its own; the traced peak
(``tracemalloc``) covers ``LayoutChunker().chunk()`` alone. Prints one row per size; asserts
nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(n_pages: int, full_stops: bool) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from chunk_docs import glossary_document

    from chunking import LayoutChunker

    document = glossary_document(n_pages, full_stops=full_stops)
    tracemalloc.start()
    start = time.perf_counter()
    chunks = LayoutChunker().chunk(document)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    spans = [c.metadata["page_end"] - c.metadata["page_start"] + 1 for c in chunks]
    metadata = sum(len(json.dumps(c.metadata)) for c in chunks) / len(chunks)
    return {
        "pages": n_pages,
        "chunks": len(chunks),
        "seconds": round(elapsed, 2),
        "traced_peak_mib": round(peak / 2**20, 1),
        "maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "max_pages_per_chunk": max(spans),
        "metadata_kb_per_chunk": round(metadata / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[60, 400, 2000])
    parser.add_argument("--full-stops", action="store_true")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process's size
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.full_stops)))
        return
    print(
        f"{'pages':>6} {'chunks':>7} {'s':>7} {'traced MiB':>11} {'maxrss MiB':>11} "
        f"{'pages/chunk':>12} {'meta KB/chunk':>14}"
    )
    for n in args.pages:
        cmd = [sys.executable, __file__, "--one", str(n)]
        if args.full_stops:
            cmd.append("--full-stops")
        row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(
            f"{row['pages']:>6} {row['chunks']:>7} {row['seconds']:>7} "
            f"{row['traced_peak_mib']:>11} {row['maxrss_mib']:>11} "
            f"{row['max_pages_per_chunk']:>12} {row['metadata_kb_per_chunk']:>14}"
        )


if __name__ == "__main__":
    main()
