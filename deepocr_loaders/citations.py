"""From a retrieved chunk to its highlighted page: the chunk's boxes drawn on its pages.

Takes whatever a retriever returns: a LangChain ``Document``, a LlamaIndex node, a
:class:`chunking.Chunk`, a chunk dict as ``deepocr chunk`` writes it, or bare metadata; boxes may
be a list or the JSON string a flat-metadata store keeps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from .atomic import atomic_write
from .errors import ConfigError
from .sources import open_source

__all__ = ["chunk_boxes", "highlight"]

_OUTLINE = (220, 30, 30)
_FILL = (255, 200, 0, 70)


def _metadata_of(chunk: Any) -> Mapping[str, Any]:
    if isinstance(chunk, Mapping):
        inner = chunk.get("metadata")
        return inner if isinstance(inner, Mapping) else chunk
    meta = getattr(chunk, "metadata", None)
    if isinstance(meta, Mapping):
        return meta
    raise ConfigError(
        f"cannot read a chunk's metadata from a {type(chunk).__name__}: pass a LangChain "
        "Document, a LlamaIndex node, a chunking.Chunk or its metadata dict",
        option="chunk",
    )


def chunk_boxes(chunk: Any) -> tuple[list[int], list[dict[str, float]]]:
    """The pages (0-based, in order) and the boxes (``{page, x0, y0, x1, y1}``, PDF points,
    top-left origin) that ``chunk`` cites.

    Args:
        chunk: a retrieved document or node, a chunk, a chunk dict or its metadata.
    """
    meta = _metadata_of(chunk)
    raw = meta.get("boxes") or []
    boxes = json.loads(raw) if isinstance(raw, str) else list(raw)
    boxes = [dict(b) if isinstance(b, Mapping) else b._asdict() for b in boxes]
    pages = sorted({int(b["page"]) for b in boxes})
    if not pages:
        raw_pages = meta.get("pages")
        if isinstance(raw_pages, str):
            raw_pages = json.loads(raw_pages)
        if raw_pages:
            pages = sorted(int(p) for p in raw_pages)
        elif isinstance(meta.get("page"), int):
            pages = [int(meta["page"])]
    return pages, boxes


def highlight(
    pdf: str | os.PathLike[str] | bytes | None,
    chunk: Any,
    out: str | os.PathLike[str] | None = None,
    *,
    dpi: float = 110,
    password: str | None = None,
) -> list[Image.Image]:
    """Draw ``chunk``'s boxes on its pages and return one image per page.

    Args:
        pdf: the PDF (or image) the chunk comes from: a path or bytes; None takes the path from
            the chunk's metadata (``file_path``, else ``source``).
        chunk: a LangChain ``Document``, a LlamaIndex node, a :class:`chunking.Chunk`, a chunk
            dict or bare metadata: anything with the chunk's ``boxes``.
        out: also write the pages: a ``.pdf`` path gets one PDF of all of them; any other
            image path (``.png``, ``.jpg``) one file per page (``name-<page>.png`` when the
            chunk spans pages, numbered from 1).
        dpi: rendering resolution.
        password: for an encrypted PDF.
    """
    meta = _metadata_of(chunk)
    if pdf is None:
        pdf = meta.get("file_path") or meta.get("source")
        if not pdf:
            raise ConfigError("no pdf given and the chunk names no file_path", option="pdf")
    pages, boxes = chunk_boxes(meta)
    if not pages:
        raise ConfigError("the chunk cites no page (no boxes, pages or page)", option="chunk")
    scale = dpi / 72
    images: list[Image.Image] = []
    with open_source(pdf if isinstance(pdf, bytes) else Path(pdf), password=password) as src:
        for index in pages:
            base = src.render(index, dpi).image.convert("RGBA")
            layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
            draw = ImageDraw.Draw(layer)
            for b in boxes:
                if int(b["page"]) != index:
                    continue
                rect = tuple(float(b[k]) * scale for k in ("x0", "y0", "x1", "y1"))
                draw.rectangle(rect, fill=_FILL, outline=_OUTLINE, width=max(1, round(dpi / 55)))
            images.append(Image.alpha_composite(base, layer).convert("RGB"))
    if out is not None:
        _write(Path(out), images, pages)
    return images


def _write(out: Path, images: list[Image.Image], pages: list[int]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".pdf":
        with atomic_write(out, "wb", encoding=None) as handle:
            images[0].save(handle, format="PDF", save_all=True, append_images=images[1:])
        return
    fmt = Image.registered_extensions().get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(f"cannot tell an image format from {out.name!r}", option="out")
    for image, index in zip(images, pages, strict=True):
        target = out if len(images) == 1 else out.with_name(f"{out.stem}-{index + 1}{out.suffix}")
        with atomic_write(target, "wb", encoding=None) as handle:
            image.save(handle, format=fmt)
