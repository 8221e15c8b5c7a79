"""Text-layer engine speed vs ``pymupdf4llm.to_markdown``, and the share of pages routed to OCR.

Usage::

    python benchmarks/text_layer_speed.py [PDF_OR_DIR ...] [--pages 24] [--repeat 3]
    python benchmarks/text_layer_speed.py --realset [--repeat 1]

Corpus: a generated born-digital PDF (``--pages`` pages of headings, lists, a table and two
columns, from ``tests/pdf_factory.py``) plus every PDF given, or in the olmOCR-Bench sample
(``../shared/peer-bench``) when none is given and it exists. ``--realset`` times the real PDFs
of issue #17 instead (journal papers, class guides, reference cards, a manual, slides, a report:
:mod:`text_layer_realset` fetches them from Debian's archive when missing), with no generated
PDF. Each document is converted whole by both tools, after one warm-up run (the layout model
loads once per process); the best of ``--repeat`` interleaved runs counts. Two comparisons:
the defaults of both (``convert(engine="text-layer")`` against ``pymupdf4llm.to_markdown()``,
what a new user runs), and HTML tables on both (``table_output="html"``). Then the OCR-need
detector runs over every page of the mixed folder (the sample plus a generated mixed PDF) and
the routing is tallied. Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pymupdf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing the package
sys.path.insert(0, str(ROOT / "tests"))  # the PDF generator of the tests
sys.path.insert(0, str(ROOT / "benchmarks"))  # the real-PDF set

import pdf_factory  # noqa: E402

from deepocr_loaders.engines.ocr_need import OcrNeedDetector, detect_ocr_need  # noqa: E402
from deepocr_loaders.engines.text_layer import TextLayerEngine  # noqa: E402
from deepocr_loaders.pipeline import convert  # noqa: E402

SAMPLE = ROOT.parent / "shared/peer-bench/olmocr-bench-sample/olmocr/bench/sample_data/pdfs"


def generated(pages: int) -> bytes:
    """``pages`` pages alternating the factory's born-digital and two-column pages."""
    src = pymupdf.open("pdf", pdf_factory.born_digital_pdf())
    out = pymupdf.open()
    for i in range(pages):
        out.insert_pdf(src, from_page=i % 2, to_page=i % 2)
    data = out.tobytes(garbage=3, deflate=True)
    out.close()
    return bytes(data)


def best_of(repeat: int, *fns: Callable[[], object]) -> list[float]:
    """Best time of each function; runs alternate so load from other processes hits both."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def speed(corpus: list[tuple[str, bytes]], repeat: int, defaults_only: bool = False) -> None:
    import pymupdf4llm

    engine = TextLayerEngine()  # HTML tables by default

    def ours(data: bytes) -> object:
        return convert(data, engine=engine).to_markdown()

    def theirs(data: bytes, **kw: object) -> object:
        with pymupdf.open("pdf", data) as doc:
            return pymupdf4llm.to_markdown(doc, show_progress=False, **kw)

    def theirs_html(data: bytes) -> object:
        return theirs(data, table_output="html")

    runs: list[tuple[str, Callable[[bytes], object], Callable[[bytes], object]]] = [
        ("defaults of both (theirs: layout grid tables)", ours, theirs),
        ("HTML tables on both", ours, theirs_html),
    ]
    if defaults_only:
        runs = runs[:1]
    for label, mine, ref in runs:
        print(f"\n### {label}\n")
        print("| document | pages | text-layer s | pymupdf4llm s | ratio |")
        print("|---|---|---|---|---|")
        tot_pages = 0
        tot_ours = tot_theirs = 0.0
        for name, data in corpus:
            mine(data), ref(data)  # warm-up: model load, caches
            t_ours, t_theirs = best_of(repeat, lambda: mine(data), lambda: ref(data))  # noqa: B023
            with pymupdf.open("pdf", data) as doc:
                n = doc.page_count
            tot_pages += n
            tot_ours += t_ours
            tot_theirs += t_theirs
            print(f"| {name} | {n} | {t_ours:.2f} | {t_theirs:.2f} | {t_ours / t_theirs:.2f}x |")
        print(
            f"| **all** | {tot_pages} | {tot_ours:.2f} ({tot_pages / tot_ours:.1f} p/s) | "
            f"{tot_theirs:.2f} ({tot_pages / tot_theirs:.1f} p/s) | "
            f"**{tot_ours / tot_theirs:.2f}x** |"
        )


def routing(folder: list[tuple[str, bytes]]) -> None:
    detector = OcrNeedDetector()
    reasons: Counter[str] = Counter()
    routed = pages = 0
    t0 = time.perf_counter()
    for _, data in folder:
        with pymupdf.open("pdf", data) as doc:
            for page in doc:
                decision = detect_ocr_need(page, detector)
                reasons[decision.reason.value] += 1
                routed += decision.needs_ocr
                pages += 1
    elapsed = time.perf_counter() - t0
    print(f"\n### Routing on a mixed folder ({len(folder)} PDFs, {pages} pages)\n")
    print(f"routed to OCR: {routed} of {pages} pages ({routed / pages:.0%}); ", end="")
    print(f"detector {elapsed / pages * 1000:.1f} ms/page\n")
    print("| reason | pages |")
    print("|---|---|")
    for reason, n in reasons.most_common():
        print(f"| {reason} | {n} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--pages", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--realset", action="store_true", help="the real PDFs of issue #17")
    parser.add_argument("--defaults-only", action="store_true", help="skip the HTML run")
    args = parser.parse_args()

    files: list[Path] = []
    if args.realset:
        from text_layer_realset import fetch_realset

        args.paths = [*args.paths, *fetch_realset()]
    for p in args.paths or ([SAMPLE] if SAMPLE.is_dir() else []):
        files.extend(sorted(p.rglob("*.pdf")) if p.is_dir() else [p])
    given = [(f.name, f.read_bytes()) for f in files]
    corpus = [] if args.realset else [(f"generated ({args.pages} pages)", generated(args.pages))]
    # Pages that need OCR are the OCR engine's; time the text layer on born-digital documents.
    for name, data in given:
        with pymupdf.open("pdf", data) as doc:
            if all(not detect_ocr_need(page).needs_ocr for page in doc):
                corpus.append((name, data))
    print(f"{len(corpus)} born-digital documents; best of {args.repeat} runs after a warm-up")
    speed(corpus, args.repeat, args.defaults_only)
    if not args.realset:
        routing([*given, ("mixed_pdf", pdf_factory.mixed_pdf())])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
