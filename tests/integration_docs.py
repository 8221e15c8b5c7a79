"""Generated PDFs and recorded model output shared by the framework-integration tests."""

from __future__ import annotations

from pathlib import Path

import pymupdf

RAW_PAGES = [
    (
        "<|ref|>title<|/ref|><|det|>[[80, 60, 900, 110]]<|/det|>\n# Alder Creek Survey\n\n"
        "<|ref|>sub_title<|/ref|><|det|>[[80, 130, 600, 160]]<|/det|>\n## Discharge\n\n"
        "<|ref|>text<|/ref|><|det|>[[80, 170, 900, 260]]<|/det|>\n"
        "Flow peaked in April when snowmelt and rain arrived together.\n\n"
        "<|ref|>table<|/ref|><|det|>[[80, 280, 900, 420]]<|/det|>\n"
        "<table><tr><td>Station</td><td>April</td></tr><tr><td>AC-12</td><td>7.96</td></tr>"
        "</table>\n\n"
        "<|ref|>footer<|/ref|><|det|>[[480, 950, 520, 970]]<|/det|>\n1"
    ),
    (
        "<|ref|>sub_title<|/ref|><|det|>[[80, 60, 600, 90]]<|/det|>\n## Sediment\n\n"
        "<|ref|>text<|/ref|><|det|>[[80, 100, 900, 200]]<|/det|>\n"
        "Sediment load follows a rating curve in discharge.\n\n"
        "<|ref|>footer<|/ref|><|det|>[[480, 950, 520, 970]]<|/det|>\n2"
    ),
]


def make_pdf(path: Path, title: str, pages: int = 2) -> Path:
    pdf = pymupdf.open()
    for i in range(pages):
        page = pdf.new_page(width=612, height=792)
        page.insert_text((72, 72), f"{title} page {i + 1}")
    pdf.save(path)
    pdf.close()
    return path


def recorded_options() -> dict[str, object]:
    return {"outputs": list(RAW_PAGES)}
