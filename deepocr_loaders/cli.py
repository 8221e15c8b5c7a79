"""Command line: ``deepocr demo`` and ``deepocr parse``.

``demo`` builds a sample PDF, parses the bundled model output for it and writes Markdown, JSON and
a copy of the PDF with every block's box drawn on it, so the boxes can be checked by eye.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

from .document import Document
from .errors import DeepOCRError
from .grounding import build_page, parse_grounded_page
from .samples import sample_grounded_output
from .sources import open_source

__all__ = ["main"]

_LETTER = (612.0, 792.0)


def _write_outputs(doc: Document, out_dir: Path, stem: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path = out_dir / f"{stem}.md"
    json_path = out_dir / f"{stem}.json"
    md_path.write_text(doc.to_markdown(), encoding="utf-8")
    json_path.write_text(doc.to_json(indent=2), encoding="utf-8")
    return md_path, json_path


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
        if block.kind.value == "figure":
            # A small chart: axes and a polyline, enough to be an image region on the page.
            page.draw_rect(rect, color=(0.6, 0.6, 0.6), width=0.5)
            pts = [
                pymupdf.Point(rect.x0 + rect.width * t / 8, rect.y1 - rect.height * h)
                for t, h in enumerate((0.1, 0.15, 0.3, 0.8, 0.6, 0.45, 0.3, 0.25, 0.2))
            ]
            page.draw_polyline(pts, color=(0.1, 0.3, 0.7), width=1.5)
            continue
        html = block.html or block.text.lstrip("#").strip()
        if block.kind.value == "equation":
            html = "L = a · Q<sup>b</sup>, b ≈ 1.6"
        size = {"title": 20, "heading": 13}.get(block.kind.value, 10)
        css = (
            f"* {{font-family: sans-serif; font-size: {size}px;}} td {{border: 0.5px solid #888;}}"
        )
        page.insert_htmlbox(rect, html, css=css)
    pdf.set_metadata({"title": "Spring Survey of the Alder Creek Watershed"})
    pdf.save(path)
    pdf.close()


def draw_boxes(pdf_path: Path, doc: Document, out_path: Path) -> None:
    """Copy of the PDF with each block's box and kind drawn over it."""
    import pymupdf

    pdf = pymupdf.open(pdf_path)
    for page_model in doc.pages:
        page = pdf[page_model.index]
        for block in page_model.blocks:
            for box in block.boxes:
                rect = pymupdf.Rect(*box.as_tuple())
                page.draw_rect(rect, color=(0.85, 0.1, 0.1), width=0.8)
                page.insert_text(
                    (rect.x0, rect.y0 - 1.5), block.kind.value, fontsize=5, color=(0.85, 0.1, 0.1)
                )
    pdf.save(out_path)
    pdf.close()


def _cmd_demo(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf_path = out_dir / "sample.pdf"
    make_sample_pdf(pdf_path)
    raw = sample_grounded_output()
    with open_source(pdf_path) as source:
        width, height = source.page_size(0)
        page = build_page(
            raw, index=0, width=width, height=height, label=source.page_label(0), engine="recorded"
        )
        doc = Document(
            source=str(pdf_path),
            sha256=source.sha256,
            page_count=source.page_count,
            pages=[page],
            metadata={"note": "bundled recorded model output, parsed without a model"},
        )
    md_path, json_path = _write_outputs(doc, out_dir, "sample")
    boxes_path = out_dir / "sample.boxes.pdf"
    draw_boxes(pdf_path, doc, boxes_path)
    print(doc.to_markdown())
    print(f"{len(page.blocks)} blocks on {len(doc.pages)} page(s), status {page.status.value}")
    for path in (pdf_path, md_path, json_path, boxes_path):
        print(f"wrote {path}")
    return 0


def _cmd_parse(args: argparse.Namespace) -> int:
    raw_path = Path(args.raw)
    try:
        raw = raw_path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"deepocr: cannot read {raw_path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if args.pdf:
        with open_source(args.pdf) as source:
            if not 0 <= args.page < source.page_count:
                print(f"deepocr: {args.pdf} has no page {args.page + 1}", file=sys.stderr)
                return 2
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
    stem = raw_path.name.split(".")[0] or "output"
    md_path, json_path = _write_outputs(doc, Path(args.out), stem)
    print(f"{len(page.blocks)} blocks, status {page.status.value}; wrote {md_path}, {json_path}")
    return 0


def _page_size(text: str) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in points, got {text!r}") from exc
    return w, h


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepocr", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="parse the bundled sample into Markdown, JSON and boxes")
    demo.add_argument("-o", "--out", default="out", help="output folder (default: out)")
    demo.set_defaults(func=_cmd_demo)
    parse = sub.add_parser("parse", help="parse saved grounded model output of one page")
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
    try:
        return int(args.func(args))
    except DeepOCRError as exc:
        print(f"deepocr: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
