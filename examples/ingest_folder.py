"""Knowledge-base ingestion: a folder of PDFs -> JSONL of layout chunks, resumable.

    python examples/ingest_folder.py FOLDER OUT.jsonl [--engine auto]

The page cache makes a second run (or a run after a crash) redo no finished page; chunk ids are
deterministic, so upserting the JSONL into a vector store never duplicates a chunk. Files that
cannot be read are reported at the end and do not stop the run. (`deepocr ingest` is the same,
with parallel workers and progress bars.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import deepocr_loaders as dl
from chunking import LayoutChunker


def ingest(folder: Path, out: Path, engine: str = "auto") -> tuple[int, list[str], list[str]]:
    chunker = LayoutChunker(max_tokens=400)
    cache = dl.PageCache(out.with_suffix(".cache.sqlite"))
    bad_files: list[str] = []
    bad_pages: list[str] = []
    written = 0
    with out.open("w", encoding="utf-8") as sink:
        for path in sorted(folder.rglob("*.pdf")):
            try:
                doc = dl.convert(path, engine=engine, cache=cache)
            except dl.DeepOCRError as exc:
                bad_files.append(str(exc))
                continue
            bad_pages += [f"{path.name} p.{p.label}: {p.status.value}" for p in doc.problem_pages]
            for chunk in chunker.chunk(doc):
                record = {"id": chunk.id, "text": chunk.text, "metadata": chunk.flat_metadata()}
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
    return written, bad_files, bad_pages


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--engine", default="auto")
    args = parser.parse_args()
    n, files, pages = ingest(args.folder, args.out, args.engine)
    print(f"{n} chunks -> {args.out}")
    for line in files + pages:
        print("not converted:", line)
