"""Crop a page's figure regions to image files, for Markdown that links them.

File names are built from a sanitised stem, the page number and the block's reading order, and
every file is written inside the chosen output folder, never elsewhere (a stem such as
``../../x`` cannot escape it). Each cropped block gets ``metadata["image_path"]``, the file name
relative to the folder, which Markdown rendering turns into ``![figure](...)``; the page's
stored ``markdown`` is rebuilt so :meth:`Document.to_markdown` links the files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

from .atomic import atomic_write
from .document import BBox, BlockKind, Page
from .errors import DeepOCRError

__all__ = ["crop_figures", "safe_stem"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 80


def safe_stem(name: str) -> str:
    """``name`` reduced to letters, digits, ``.``, ``_`` and ``-`` (no path parts, no dots
    at either end), at most 80 characters; ``"figure"`` when nothing is left."""
    stem = _UNSAFE.sub("_", Path(name).name if name else "").strip("._-")
    return stem[:_MAX_STEM] or "figure"


def _pixel_box(bbox: BBox, page: Page, image: Image.Image) -> tuple[int, int, int, int] | None:
    """``bbox`` (PDF points) in ``image`` pixels, clamped; None when empty."""
    if page.width <= 0 or page.height <= 0:
        return None
    box = bbox.scale(image.width / page.width, image.height / page.height)
    x0, y0 = max(0, int(box.x0)), max(0, int(box.y0))
    x1, y1 = min(image.width, round(box.x1)), min(image.height, round(box.y1))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def crop_figures(
    page: Page,
    image: Image.Image,
    out_dir: str | Path,
    *,
    stem: str = "page",
    kinds: Iterable[BlockKind] = (BlockKind.FIGURE,),
    fmt: str = "png",
) -> list[Path]:
    """Save each ``kinds`` block of ``page`` that has a box as a crop of ``image`` (the page
    rendered at any resolution) into ``out_dir``; returns the written paths."""
    folder = Path(out_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    wanted = set(kinds)
    ext = safe_stem(fmt.lower()).lstrip("_") or "png"
    written: list[Path] = []
    for block in page.blocks:
        if block.kind not in wanted or block.bbox is None:
            continue
        box = _pixel_box(block.bbox, page, image)
        if box is None:
            continue
        name = f"{safe_stem(stem)}-p{page.index + 1}-{block.order}.{ext}"
        target = (folder / name).resolve()
        if target.parent != folder:  # belt and braces: the name has no separators
            raise DeepOCRError(f"figure file {name!r} would leave {folder}")
        try:
            fmt_name = Image.registered_extensions().get(f".{ext}")
            if fmt_name is None:
                raise ValueError(f"no image format for .{ext}")
            with atomic_write(target, "wb") as handle:  # a reader never sees half a crop
                image.crop(box).save(handle, format=fmt_name)
        except (OSError, ValueError, KeyError) as exc:
            raise DeepOCRError(f"could not write figure {target}: {exc}") from exc
        block.metadata["image_path"] = name
        written.append(target)
    if written:  # the stored Markdown predates the crops: rebuild it so it links them
        page.markdown = page.render_markdown()
    return written
