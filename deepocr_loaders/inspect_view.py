"""Draw where blocks and chunks come from: page PNGs with boxes, and a static HTML page.

A person checking a citation opens ``index.html`` and sees each chunk's text next to the page
images with its boxes outlined.
"""

from __future__ import annotations

import html
import json
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
    ``{page, x0, y0, x1, y1}`` or its JSON); each is listed with its kind, printed page labels
    and boxes overlaid on its pages, linked to its neighbours and from a table of contents.
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


def _labels(meta: Mapping[str, Any], pages: Sequence[int], doc: Document) -> str:
    """The chunk's printed page labels: ``p. 3`` or ``pp. iv-v``."""
    labels = meta.get("page_labels")
    if isinstance(labels, str):
        labels = json.loads(labels)
    if not labels:
        by_index = {p.index: p.label for p in doc.pages}
        labels = [by_index.get(p, str(p + 1)) for p in pages]
    if not labels:
        return ""
    return f"p. {labels[0]}" if len(labels) == 1 else f"pp. {labels[0]}-{labels[-1]}"


def _chunk_section(
    n: int,
    total: int,
    chunk: Mapping[str, Any],
    doc: Document,
    images: Mapping[int, tuple[str, int, int]],
    scale: float,
) -> tuple[str, str]:
    """One chunk's section (header with kind, pages and links to its neighbours, text, pages
    with its boxes) and its line in the table of contents."""
    meta = chunk.get("metadata", {})
    boxes = meta.get("boxes", [])
    if isinstance(boxes, str):
        boxes = json.loads(boxes)
    cited = sorted({int(b["page"]) for b in boxes})
    pages = [p for p in cited if p in images]
    figures = "".join(
        f'<div class="page" style="width:{images[p][1]}px;height:{images[p][2]}px">'
        f'<img src="{images[p][0]}" alt="page {p + 1}">{_overlay(boxes, p, scale)}</div>'
        for p in pages
    )
    kind = html.escape(str(meta.get("kind", "")))
    where = html.escape(_labels(meta, cited, doc))
    heading = html.escape(str(meta.get("headings", "")))
    links = [
        f'<a href="#chunk-{n - 1}">&larr; previous</a>' if n > 1 else "",
        '<a href="#top">contents</a>',
        f'<a href="#chunk-{n + 1}">next &rarr;</a>' if n < total else "",
    ]
    section = (
        f'<section id="chunk-{n}"><h3>Chunk {n} of {total} <span class="kind">{kind}</span> '
        f'<span class="where">{where}</span></h3>'
        f"<nav>{' | '.join(x for x in links if x)}</nav>"
        f'<p class="path">{heading}</p><p class="id">{html.escape(str(chunk.get("id", "")))}</p>'
        f"<pre>{html.escape(str(chunk.get('text', '')))}</pre>{figures}</section>"
    )
    entry = f'<li><a href="#chunk-{n}">{n}. {kind}, {where}</a> {heading}</li>'
    return section, entry


def _html(
    doc: Document,
    images: Mapping[int, tuple[str, int, int]],
    chunks: Sequence[Mapping[str, Any]],
    scale: float,
) -> str:
    rows = []
    if chunks:
        entries = []
        for n, chunk in enumerate(chunks, 1):
            section, entry = _chunk_section(n, len(chunks), chunk, doc, images, scale)
            rows.append(section)
            entries.append(entry)
        rows.insert(0, f'<ol class="toc">{"".join(entries)}</ol>')
    else:
        for index, (name, _, _) in sorted(images.items()):
            rows.append(f'<section><h3>Page {index + 1}</h3><img src="{name}"></section>')
    style = (
        "body{font-family:sans-serif;margin:2em}pre{white-space:pre-wrap;background:#f6f6f6;"
        "padding:.5em}.page{position:relative;display:inline-block;margin:.5em;"
        "border:1px solid #ccc}.box{position:absolute;border:2px solid #d22;"
        "background:rgba(220,30,30,.08)}.path,.id{color:#666}.kind{background:#e8eefc;"
        "padding:0 .4em;border-radius:3px;font-weight:normal}.where{color:#444;"
        "font-weight:normal}.toc{columns:2}"
    )
    title = html.escape(doc.source)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body><h1 id='top'>{title}</h1>{''.join(rows)}"
        "</body></html>\n"
    )
