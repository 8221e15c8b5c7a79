"""Draw where blocks and chunks come from: page PNGs with boxes, and a static HTML page.

A person checking a citation opens ``index.html`` and sees each chunk's text next to the page
images with its boxes outlined.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import ImageDraw

from .atomic import atomic_write, write_text_atomic
from .document import Document
from .sources import open_source

__all__ = ["render_inspection"]

_KIND_COLOURS = {
    "title": (200, 30, 30),
    "heading": (220, 90, 20),
    "table": (20, 120, 200),
    "figure": (30, 150, 60),
    "caption": (120, 60, 180),
    "equation": (180, 40, 140),
    "page_header": (130, 130, 130),
    "page_footer": (130, 130, 130),
}


def render_inspection(
    pdf_path: str | Path,
    doc: Document,
    out_dir: str | Path,
    *,
    chunks: Sequence[Mapping[str, Any]] = (),
    dpi: float = 72,
    password: str | None = None,
) -> Path:
    """Write ``page-<n>.png`` (block boxes drawn) and ``index.html`` into ``out_dir``.

    ``chunks`` are chunk dicts (``id``, ``text``, ``metadata`` with ``boxes`` as a list of
    ``{page, x0, y0, x1, y1}``); each is listed with its boxes overlaid on its pages.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scale = dpi / 72
    images: dict[int, tuple[str, int, int]] = {}
    with open_source(pdf_path, password=password) as src:
        for page in doc.pages:
            rendered = src.render(page.index, dpi)
            image = rendered.image.copy()
            draw = ImageDraw.Draw(image)
            for block in page.blocks:
                colour = _KIND_COLOURS.get(block.kind.value, (220, 40, 40))
                for box in block.boxes:
                    x0, y0, x1, y1 = box.scale(scale, scale).as_tuple()
                    draw.rectangle((x0, y0, x1, y1), outline=colour, width=2)
                    draw.text((x0 + 2, max(y0 - 11, 0)), block.kind.value, fill=colour)
            name = f"page-{page.index + 1}.png"
            with atomic_write(out / name, "wb", encoding=None) as handle:
                image.save(handle, format="PNG")
            images[page.index] = (name, image.width, image.height)
    write_text_atomic(out / "index.html", _html(doc, images, chunks, scale))
    return out / "index.html"


def _overlay(boxes: Iterable[Mapping[str, Any]], page: int, scale: float) -> str:
    parts = []
    for b in boxes:
        if int(b.get("page", -1)) != page:
            continue
        left, top = float(b["x0"]) * scale, float(b["y0"]) * scale
        width = (float(b["x1"]) - float(b["x0"])) * scale
        height = (float(b["y1"]) - float(b["y0"])) * scale
        parts.append(
            f'<div class="box" style="left:{left:.0f}px;top:{top:.0f}px;'
            f'width:{width:.0f}px;height:{height:.0f}px"></div>'
        )
    return "".join(parts)


def _html(
    doc: Document,
    images: Mapping[int, tuple[str, int, int]],
    chunks: Sequence[Mapping[str, Any]],
    scale: float,
) -> str:
    rows = []
    if chunks:
        for chunk in chunks:
            meta = chunk.get("metadata", {})
            boxes = meta.get("boxes", [])
            pages = sorted({int(b["page"]) for b in boxes if int(b["page"]) in images})
            figures = "".join(
                f'<div class="page" style="width:{images[p][1]}px;height:{images[p][2]}px">'
                f'<img src="{images[p][0]}" alt="page {p + 1}">{_overlay(boxes, p, scale)}</div>'
                for p in pages
            )
            heading = html.escape(str(meta.get("headings", "")))
            rows.append(
                f"<section><h3>{html.escape(str(chunk.get('id', '')))}</h3>"
                f'<p class="path">{heading}</p><pre>{html.escape(str(chunk.get("text", "")))}'
                f"</pre>{figures}</section>"
            )
    else:
        for index, (name, _, _) in sorted(images.items()):
            rows.append(f'<section><h3>Page {index + 1}</h3><img src="{name}"></section>')
    style = (
        "body{font-family:sans-serif;margin:2em}pre{white-space:pre-wrap;background:#f6f6f6;"
        "padding:.5em}.page{position:relative;display:inline-block;margin:.5em;"
        "border:1px solid #ccc}.box{position:absolute;border:2px solid #d22;"
        "background:rgba(220,30,30,.08)}.path{color:#666}"
    )
    title = html.escape(doc.source)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body><h1>{title}</h1>{''.join(rows)}</body></html>\n"
    )
