"""Quality on a peer's test suite: the olmOCR-Bench sample, scored with olmOCR's own scorer.

Usage::

    python benchmarks/olmocr_bench.py [--bench DIR] [--keep OUT_DIR]

Writes per-page Markdown in the scorer's naming (``<pdf>_pg<N>_repeat1.md``) for each candidate
into a temporary bench folder (``pdfs`` and the ``*.jsonl`` files are symlinks, nothing is
copied), then scores every candidate with ``olmocr.bench.benchmark.evaluate_candidate``:

* ``text_layer``: our ``engine="text-layer"`` with its defaults (HTML tables, XY-cut reading
  order), page headers/footers left out of the Markdown;
* ``text_layer_grid``: the same with ``html_tables=False`` (the layout model's cell grid);
* ``text_layer_layout_order``: the same with ``reading_order="layout"`` (the layout model's
  order, as pymupdf4llm);
* ``pymupdf4llm``: ``pymupdf4llm.to_markdown`` with its defaults;
* ``pymupdf4llm_nohf``: ``pymupdf4llm.to_markdown(header=False, footer=False)``;
* ``olmocr_pipeline``: olmOCR's own (VLM) outputs shipped with the sample, for reference.

Prints pass rates per test type twice: as scored, and with every test on a page that our
OCR-need detector routes to OCR counted as failed for every candidate (such pages are the OCR
engine's job; the text layer cannot answer them). Needs ``pip install "olmocr[bench]"``; math
tests need a Chromium (the system's ``chromium`` is used when Playwright has none of its own).
Skips cleanly (exit 0) when the sample (``../shared/peer-bench``) is absent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runnable from a checkout without installing the package

DEFAULT_BENCH = ROOT.parent / "shared/peer-bench/olmocr-bench-sample/olmocr/bench/sample_data"
TYPES = ["present", "absent", "order", "table", "math", "baseline"]


def _use_system_chromium() -> None:
    """Point Playwright at the system Chromium when its own browser was never downloaded."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return
    from playwright.sync_api import BrowserType

    original = BrowserType.launch

    def launch(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except Exception:
            kwargs.setdefault("executable_path", chromium)
            return original(self, *args, **kwargs)

    BrowserType.launch = launch  # type: ignore[method-assign]


def _pdf_names(folder: Path) -> list[str]:
    """PDF paths relative to ``folder`` (``headers_footers/x.pdf``), as the scorer names them."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.pdf"))


def _md_path(folder: Path, pdf_rel: str, page: int) -> Path:
    path = folder / f"{pdf_rel[: -len('.pdf')]}_pg{page}_repeat1.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_ours(bench: Path, out: Path, pdfs: list[str], **options: Any) -> dict[str, Any]:
    """Our text-layer Markdown per page; returns each page's OCR decision and the time taken."""
    from deepocr_loaders.document import BlockKind
    from deepocr_loaders.engines.text_layer import TextLayerEngine
    from deepocr_loaders.pipeline import convert

    furniture = {BlockKind.PAGE_HEADER, BlockKind.PAGE_FOOTER}
    decisions: dict[tuple[str, int], tuple[str, str]] = {}
    engine = TextLayerEngine(**options)
    t0 = time.perf_counter()
    for rel in pdfs:
        doc = convert(bench / "pdfs" / rel, engine=engine)
        for page in doc.pages:
            decisions[(rel, page.index + 1)] = (page.status.value, page.metadata["ocr_reason"])
            _md_path(out, rel, page.index + 1).write_text(
                page.render_markdown(exclude=furniture), encoding="utf-8"
            )
    return {"decisions": decisions, "seconds": time.perf_counter() - t0}


def write_pymupdf4llm(bench: Path, out: Path, pdfs: list[str], **options: Any) -> float:
    import pymupdf
    import pymupdf4llm

    t0 = time.perf_counter()
    for rel in pdfs:
        with pymupdf.open(bench / "pdfs" / rel) as doc:
            for i in range(doc.page_count):
                md = pymupdf4llm.to_markdown(doc, pages=[i], show_progress=False, **options)
                _md_path(out, rel, i + 1).write_text(md, encoding="utf-8")
    return time.perf_counter() - t0


def score(bench_dir: Path, candidates: list[str], ocr_pages: set[tuple[str, int]]) -> None:
    from olmocr.bench.benchmark import evaluate_candidate
    from olmocr.bench.tests import BaselineTest, load_tests

    tests = []
    for jsonl in sorted(bench_dir.glob("*.jsonl")):
        tests.extend(load_tests(str(jsonl)))
    pdfs = sorted(
        str(p.relative_to(bench_dir / "pdfs")) for p in (bench_dir / "pdfs").rglob("*.pdf")
    )
    for pdf in pdfs:  # as the scorer's main() does
        if not any(t.type == "baseline" for t in tests if t.pdf == pdf):
            tests.append(BaselineTest(id=f"{pdf}_baseline", pdf=pdf, page=1, type="baseline"))
    counts = Counter(t.type for t in tests)
    on_ocr_pages = Counter(t.type for t in tests if (t.pdf, t.page) in ocr_pages)
    rows: dict[str, dict[str, tuple[int, int]]] = {}
    for name in candidates:
        *_, errors, _, _, _, results = evaluate_candidate(str(bench_dir / name), tests, pdfs)
        if errors:
            print(f"{name}: scorer errors: {errors[:3]}")
        raw: dict[str, int] = defaultdict(int)
        strict: dict[str, int] = defaultdict(int)
        for pdf, pages in results.items():
            for page, entries in pages.items():
                for test, passed, _ in entries:
                    raw[test.type] += passed
                    strict[test.type] += passed and (pdf, page) not in ocr_pages
        rows[name] = {t: (raw[t], strict[t]) for t in counts}

    for view, k in (("as scored", 0), ("pages needing OCR counted as failures", 1)):
        print(f"\nPass rate per test type ({view}):\n")
        types = [t for t in TYPES if t in counts]
        head = "| candidate | " + " | ".join(f"{t} ({counts[t]})" for t in types) + " | all |"
        print(head)
        print("|" + "---|" * (len(types) + 2))
        for name, row in rows.items():
            cells = [f"{row[t][k] / counts[t]:.1%}" for t in types]
            total = sum(row[t][k] for t in types) / sum(counts[t] for t in types)
            print(f"| {name} | " + " | ".join(cells) + f" | {total:.1%} |")
    print(
        "\nTests on pages routed to OCR: "
        + ", ".join(f"{t} {on_ocr_pages[t]}" for t in TYPES if on_ocr_pages[t])
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bench", type=Path, default=Path(os.environ.get("OLMOCR_BENCH", DEFAULT_BENCH))
    )
    parser.add_argument("--keep", type=Path, help="write the candidate folders here and keep them")
    args = parser.parse_args()
    bench: Path = args.bench
    if not (bench / "dataset.jsonl").is_file():
        print(f"skipped: no olmOCR-Bench sample at {bench}")
        return 0
    try:
        import olmocr.bench.benchmark  # noqa: F401
    except ImportError as exc:
        print(f'skipped: olmOCR\'s scorer is not installed (pip install "olmocr[bench]"): {exc}')
        return 0
    _use_system_chromium()

    work = args.keep or Path(tempfile.mkdtemp(prefix="olmocr-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    for name in ["pdfs", *(p.name for p in bench.glob("*.jsonl")), "olmocr_pipeline"]:
        link = work / name
        if not link.exists():
            link.symlink_to((bench / name).resolve())
    pdfs = _pdf_names(bench / "pdfs")

    ours = write_ours(bench, work / "text_layer", pdfs)
    ours_grid = write_ours(bench, work / "text_layer_grid", pdfs, html_tables=False)
    write_ours(bench, work / "text_layer_layout_order", pdfs, reading_order="layout")
    t_p4l = write_pymupdf4llm(bench, work / "pymupdf4llm", pdfs)
    write_pymupdf4llm(bench, work / "pymupdf4llm_nohf", pdfs, header=False, footer=False)

    decisions = ours["decisions"]
    ocr_pages = {key for key, (status, _) in decisions.items() if status == "needs_ocr"}
    print(f"{len(pdfs)} PDFs, {len(decisions)} pages; {len(ocr_pages)} need OCR:")
    for (pdf, page), (_, reason) in sorted(decisions.items()):
        if (pdf, page) in ocr_pages:
            print(f"  {pdf} p{page}: {reason}")
    print(
        f"conversion time: text_layer {ours['seconds']:.1f} s, text_layer_grid "
        f"{ours_grid['seconds']:.1f} s, pymupdf4llm {t_p4l:.1f} s"
    )
    candidates = [
        "text_layer",
        "text_layer_grid",
        "text_layer_layout_order",
        "pymupdf4llm",
        "pymupdf4llm_nohf",
        "olmocr_pipeline",
    ]
    score(work, candidates, ocr_pages)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
