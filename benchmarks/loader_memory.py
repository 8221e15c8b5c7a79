"""Memory of the lazy LangChain loader over long PDFs: peak RSS after 100 vs 1000 pages.

    python benchmarks/loader_memory.py [--pages 100,1000]

Each page is rasterised at 144 dpi (what an OCR engine receives) and turned into a page Document
from recorded model output, so the numbers show what the loader itself holds on to. Each size
runs in a fresh process so peaks don't mix.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

RAW = (
    "<|ref|>sub_title<|/ref|><|det|>[[80, 60, 600, 90]]<|/det|>\n## Section\n\n"
    "<|ref|>text<|/ref|><|det|>[[80, 100, 900, 400]]<|/det|>\n" + "Body text. " * 80
)


def _make_pdf(path: Path, pages: int) -> None:
    import pymupdf

    pdf = pymupdf.open()
    for i in range(pages):
        page = pdf.new_page(width=612, height=792)
        text = f"Page {i + 1}. " + "Lorem ipsum dolor sit amet. " * 60
        assert page.insert_textbox(pymupdf.Rect(72, 72, 540, 720), text) >= 0  # it all fits
    pdf.save(path)


def _child(pages: int) -> None:
    from deepocr_loaders.engines.base import Engine, PageInput, Task
    from deepocr_loaders.grounding import build_page
    from langchain_loader import DeepOCRLoader

    class RenderingEngine(Engine):
        """Stands in for an OCR model: renders every page, answers with recorded output."""

        name = "rendering"

        def run(self, inputs: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator:
            for inp in inputs:
                image = inp.image
                assert image.width > 0
                yield build_page(RAW, index=inp.index, width=inp.width, height=inp.height)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.pdf"
        _make_pdf(path, pages)
        start = time.perf_counter()
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        count = 0
        for doc in DeepOCRLoader(path, engine=RenderingEngine()).lazy_load():
            count += len(doc.page_content) > 0
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{pages}\t{count}\t{baseline / 1024:.0f}\t{peak / 1024:.0f}\t{seconds:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", default="100,1000")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    print("| pages | documents | RSS before (MiB) | peak RSS (MiB) | seconds |")
    print("|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.pages.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        print("| " + " | ".join(out.splitlines()[-1].split("\t")) + " |")


if __name__ == "__main__":
    main()
