"""Rasterisation speed: pixmap samples straight into PIL (our ``render``) vs a PNG round trip.

Usage::

    python benchmarks/rasterize_speed.py [file.pdf] [--dpi 144] [--pages 20] [--repeat 3]

Without a PDF, a text-heavy one is generated with PyMuPDF. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pymupdf
from PIL import Image

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deepocr_loaders.sources import DEFAULT_DPI, PdfSource, open_source

LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco "
    "laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in "
    "voluptate velit esse cillum dolore eu fugiat nulla pariatur. "
)


def make_text_pdf(pages: int) -> bytes:
    """An A4 document of dense two-column text with a heading, rules and a small table per page."""
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=595, height=842)
        page.insert_text((56, 60), f"Section {number}: Benchmark page", fontsize=16)
        page.draw_line((56, 70), (539, 70), width=0.8)
        for column in range(2):
            x0 = 56 + column * 249
            page.insert_textbox(pymupdf.Rect(x0, 80, x0 + 234, 640), LOREM * 8, fontsize=8.5)
        for row in range(6):
            y = 660 + row * 22
            page.draw_rect(pymupdf.Rect(56, y, 539, y + 22), width=0.5)
            page.insert_text((62, y + 15), f"row {row}   {row * 17.25:>10.2f}   {LOREM[:40]}")
        page.insert_text((290, 820), str(number), fontsize=9)
    return doc.tobytes(deflate=True)


def render_ours(source: PdfSource, index: int, dpi: float) -> Image.Image:
    return source.render(index, dpi).image


def render_png_round_trip(source: PdfSource, index: int, dpi: float) -> Image.Image:
    zoom = dpi / 72
    page = source.pdf.load_page(index)
    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False, colorspace=pymupdf.csRGB)
    image = Image.open(io.BytesIO(pix.tobytes("png")))
    return image.convert("RGB")  # forces the decode, as a real consumer would


def pixmap_only(source: PdfSource, index: int, dpi: float) -> None:
    """MuPDF's rasterisation alone: the floor both methods share."""
    zoom = dpi / 72
    page = source.pdf.load_page(index)
    page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False, colorspace=pymupdf.csRGB)


def time_per_page(
    method: Callable[[PdfSource, int, float], object],
    source: PdfSource,
    pages: list[int],
    dpi: float,
    repeat: int,
) -> float:
    """Best-of-``repeat`` seconds per page (best, to damp scheduler noise)."""
    method(source, pages[0], dpi)  # warm-up: fonts, caches
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for index in pages:
            method(source, index, dpi)
        best = min(best, (time.perf_counter() - start) / len(pages))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf", nargs="?", type=Path, help="PDF to render (default: generated)")
    parser.add_argument("--dpi", type=float, default=DEFAULT_DPI, help="render resolution")
    parser.add_argument("--pages", type=int, default=20, help="pages to render (default 20)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes, best kept")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.repeat < 1:
        parser.error("--pages and --repeat must be at least 1")

    data = args.pdf.read_bytes() if args.pdf else make_text_pdf(args.pages)
    with open_source(data, name=str(args.pdf or "generated.pdf")) as source:
        if not isinstance(source, PdfSource):
            parser.error(f"{source.name} is not a PDF")
        pages = list(range(min(args.pages, source.page_count)))
        width, height = source.render(0, args.dpi).image.size
        print(
            f"{source.name}: {len(pages)} pages at {args.dpi:g} dpi "
            f"(page 1: {width} x {height} px), best of {args.repeat}; "
            f"PyMuPDF {pymupdf.VersionBind}, Python {sys.version.split()[0]}"
        )
        floor = time_per_page(pixmap_only, source, pages, args.dpi, args.repeat)
        ours = time_per_page(render_ours, source, pages, args.dpi, args.repeat)
        png = time_per_page(render_png_round_trip, source, pages, args.dpi, args.repeat)

    rows = [
        ("pixmap only (MuPDF floor)", floor),
        ("render: samples -> PIL", ours),
        ("PNG round trip", png),
    ]
    print(f"{'method':<28}{'pages/s':>10}{'ms/page':>10}{'vs render':>11}")
    for label, seconds in rows:
        print(f"{label:<28}{1 / seconds:>10.1f}{seconds * 1000:>10.2f}{seconds / ours:>10.2f}x")
    print(f"PNG round trip / render: {png / ours:.2f}x slower")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
