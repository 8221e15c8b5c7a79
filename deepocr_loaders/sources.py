"""Open PDFs and images as paged sources and rasterise their pages for the OCR engines.

The format is detected from magic bytes, never from a file extension. Every failure is raised as a
:class:`~deepocr_loaders.errors.SourceError` subclass naming the file (and the page, where known):

* missing or unreadable path: ``SourceError`` itself; empty input: ``CorruptFileError``;
* damaged or truncated PDF: MuPDF repairs what it can and the file opens with ``repaired=True``
  and the page count the file declares; a page whose object or content did not survive raises
  ``RenderError`` for that page (never a blank image). If nothing is recoverable (no page tree,
  or no surviving page) opening raises ``CorruptFileError``;
* damage the page still opens with: :meth:`PdfSource.page_damage` reports what MuPDF could not
  read while a page was interpreted inside :func:`mupdf_messages` (a content stream that is
  missing, cut short or corrupt) and whether the file was repaired; the text-layer engine turns
  that into a ``damaged`` page that is never ``ok``;
* images are pages at their native resolution (no resampling); only TIFF frames are pages.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import operator
import os
import re
import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar, Literal, TypeAlias, TypeVar, cast

import pymupdf
from PIL import Image, ImageOps, UnidentifiedImageError, features

from .errors import (
    CorruptFileError,
    EmptyDocumentError,
    ImageTooLargeError,
    PageRangeError,
    PasswordError,
    RenderError,
    SourceError,
    UnsupportedFormatError,
)

__all__ = [
    "DEFAULT_DPI",
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_SUFFIXES",
    "ImageSource",
    "PageDamage",
    "PageSpec",
    "PdfSource",
    "RenderedPage",
    "Source",
    "SourceInput",
    "list_inputs",
    "mupdf_messages",
    "open_source",
    "parse_page_range",
]

log = logging.getLogger(__name__)

#: File name endings picked up when a folder is listed.
SUPPORTED_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif")


def list_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files to convert: folders are walked recursively for PDFs and images, sorted; files are
    kept as given (an unsupported one is reported when it is opened, not dropped here); a file
    named twice is listed once."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES)
            paths.extend(sorted(p for p in found if p.is_file()))
        else:
            paths.append(path)
    return list(dict.fromkeys(paths))


#: Rendering resolution of DeepSeek-OCR's reference scripts (a zoom of 2 over PDF's 72 dpi).
DEFAULT_DPI = 144

#: Largest page, in pixels, that is decoded or rendered. 89_478_485 px is ~256 MiB as 8-bit RGB and
#: equals Pillow's own ``Image.MAX_IMAGE_PIXELS`` default, so the two guards agree: an A0 poster at
#: 144 dpi (~32 Mpx) or an A3 scan at 600 dpi (~70 Mpx) fits, a decompression bomb does not.
DEFAULT_MAX_PIXELS = 89_478_485

#: What :func:`open_source` accepts: a path, the raw bytes, or a binary file object.
SourceInput: TypeAlias = (
    "str | os.PathLike[str] | os.PathLike[bytes] | bytes | bytearray | memoryview | IO[bytes]"
)

#: What :func:`parse_page_range` accepts; see there.
PageSpec: TypeAlias = "int | str | range | Iterable[int] | None"

_S = TypeVar("_S", bound="Source")

_PDF_MAGIC = b"%PDF-"
_PDF_MAGIC_WINDOW = 1024  # PDF readers accept junk before the header within the first KiB
_BMP_DIB_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
# Only TIFF frames are pages; other formats' extra frames are animation steps (GIF, WEBP, APNG) or
# the preview images of MPO JPEGs, so those documents are their first frame.
_MULTIPAGE_FORMATS = frozenset({"TIFF"})
_EXIF_ORIENTATION = 0x0112
_SPEC_REPR_MAX = 60


@dataclass(frozen=True, eq=False)
class RenderedPage:
    """One page rasterised to RGB; ``width``/``height`` are the page size in PDF points."""

    index: int
    label: str
    image: Image.Image
    width: float
    height: float
    dpi: float


class Source(ABC):
    """A paged document (PDF or image) that can be rasterised page by page; close it when done."""

    kind: ClassVar[Literal["pdf", "image"]]

    def __init__(self, name: str, sha256: str, page_count: int) -> None:
        self.name = name
        self.sha256 = sha256
        self.page_count = page_count
        self._closed = False
        # Neither MuPDF documents nor PIL images may be used from two threads at once.
        self._lock = threading.RLock()

    @abstractmethod
    def page_label(self, index: int) -> str:
        """The page's printed label (e.g. "iv"), else its 1-based number."""

    @abstractmethod
    def page_size(self, index: int) -> tuple[float, float]:
        """Page ``(width, height)`` in PDF points (1/72 inch), as displayed."""

    @abstractmethod
    def render(self, index: int, dpi: float = DEFAULT_DPI) -> RenderedPage:
        """Rasterise one page (0-based) to an RGB image."""

    def iter_rendered(
        self, pages: PageSpec = None, dpi: float = DEFAULT_DPI
    ) -> Iterator[RenderedPage]:
        """Render the selected pages in order; a failing page raises and ends the iteration.

        ``pages`` takes anything :func:`parse_page_range` does; it and ``dpi`` are checked here,
        before the first page is rendered.
        """
        indices = parse_page_range(pages, self.page_count, source=self.name)
        _check_dpi(dpi)
        return (self.render(index, dpi) for index in indices)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Release the underlying document; idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._release()

    @abstractmethod
    def _release(self) -> None: ...

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} {self.name!r} pages={self.page_count}{state}>"

    def _check_index(self, index: int) -> None:
        if self._closed:
            raise ValueError(f"{self.name}: source is closed")
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or not 0 <= index < self.page_count
        ):
            raise PageRangeError(
                self.name, f"no page index {index!r} in a {self.page_count}-page document"
            )


# --------------------------------------------------------------------------------------------- PDF

#: MuPDF reports problems to one process-wide store (``pymupdf.TOOLS.mupdf_warnings()``). Every
#: read of that store, and every render, holds this lock, so the messages collected while one page
#: is read are that page's (PyMuPDF holds the GIL while it works, so this costs no parallelism).
#: Order: a source's own lock first, then this one.
_MUPDF_MESSAGES_LOCK = threading.RLock()

#: MuPDF messages that mean part of a page's content could not be read: a content stream that is
#: missing, a filter (zlib...) that failed mid-stream, operators MuPDF had to skip. Others (a
#: wrong stream /Length, "ignoring zlib error: incorrect data check", font substitutions) are
#: recovered from without loss and are common in intact files.
_LOSS_MESSAGE = re.compile(
    r"cannot load content stream"
    r"|treating as end of file"
    r"|(?<!ignoring )zlib error"
    r"|syntax error in content stream"
    r"|page may not be correct",
    re.IGNORECASE,
)
_MAX_MESSAGES = 8  # MuPDF repeats itself; a page keeps the first few distinct messages
REPAIRED_WARNING = "PDF is damaged: MuPDF had to repair its cross-reference table"


@contextmanager
def mupdf_messages() -> Iterator[list[str]]:
    """Collect what MuPDF reports inside the ``with`` block into the yielded list (filled on exit).

    Messages issued before the block are discarded; the process-wide lock keeps other threads'
    MuPDF work (renders, other pages' checks) out of the block, so hold it only briefly.
    """
    with _MUPDF_MESSAGES_LOCK:
        pymupdf.TOOLS.mupdf_warnings(reset=1)  # flush and drop older messages
        messages: list[str] = []
        try:
            yield messages
        finally:
            text = pymupdf.TOOLS.mupdf_warnings(reset=1)
            messages.extend(line.strip() for line in text.splitlines() if line.strip())


@dataclass(frozen=True)
class PageDamage:
    """What :meth:`PdfSource.page_damage` found: ``lost`` names the page content that could not
    be read (text may be missing: never ``ok``); ``warnings`` is what the page should carry."""

    lost: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def damaged(self) -> bool:
        return bool(self.lost)

    def summary(self) -> str:
        """One line naming what was lost (empty when nothing was)."""
        return "; ".join(self.lost)


class PdfSource(Source):
    """A PDF opened with PyMuPDF; ``pdf`` is the live ``pymupdf.Document`` for text-layer access."""

    kind = "pdf"

    def __init__(
        self, doc: pymupdf.Document, *, data: bytes, name: str, sha256: str, max_pixels: int
    ) -> None:
        super().__init__(name, sha256, doc.page_count)
        self._doc = doc
        self._data = data  # the bytes MuPDF reads from; kept to spot streams cut off at EOF
        self.max_pixels = max_pixels
        #: Pages the file declares but whose page object is gone (only checked for repaired files).
        self.missing_pages: frozenset[int] = frozenset()
        if doc.is_repaired:
            self.missing_pages = frozenset(
                i for i in range(doc.page_count) if _missing_page_reason(doc, i)
            )
            if self.missing_pages:
                log.warning(
                    "%s: damaged PDF, %d of %d pages could not be recovered",
                    name,
                    len(self.missing_pages),
                    doc.page_count,
                )

    @property
    def pdf(self) -> pymupdf.Document:
        return self._doc

    @property
    def repaired(self) -> bool:
        """True when MuPDF had to rebuild the xref (at open, or later while loading a page)."""
        return bool(self._doc.is_repaired)

    def page_label(self, index: int) -> str:
        self._check_index(index)
        if index in self.missing_pages:
            return str(index + 1)
        with self._lock:
            return _pdf_label(self._doc.load_page(index), index)

    def page_size(self, index: int) -> tuple[float, float]:
        with self._lock:
            rect = self._load_page(index).rect
        return (rect.width, rect.height)

    def page_damage(self, index: int, messages: Sequence[str] = ()) -> PageDamage:
        """Damage of page ``index``: its content streams checked against the file (when MuPDF
        repaired it) plus ``messages``, MuPDF's report while the page was interpreted (collect it
        with :func:`mupdf_messages` around e.g. ``page.get_text()``)."""
        lost: list[str] = []
        if self.repaired and index not in self.missing_pages:
            with self._lock:
                try:
                    reason = _damaged_content_reason(
                        self._doc, self._doc.page_xref(index), self._data
                    )
                except Exception as exc:  # the page tree itself is broken here
                    reason = f"page object cannot be read: {exc}"
            if reason:
                lost.append(f"{reason} (damaged or truncated file)")
        distinct = list(dict.fromkeys(m for m in messages if m))
        reported = [m for m in distinct if _LOSS_MESSAGE.search(m)]
        if reported:
            lost.append(
                "MuPDF could not read all of the page's content: "
                + "; ".join(reported[:_MAX_MESSAGES])
            )
        warnings = [REPAIRED_WARNING] if self.repaired else []
        if lost:
            warnings += lost
            others = [m for m in distinct if m not in reported][:_MAX_MESSAGES]
            warnings += [f"MuPDF: {m}" for m in others]
        return PageDamage(lost=tuple(lost), warnings=tuple(warnings))

    def render(self, index: int, dpi: float = DEFAULT_DPI) -> RenderedPage:
        zoom = _check_dpi(dpi) / 72
        # The messages lock too: a render's MuPDF messages must not land in a page check.
        with self._lock, _MUPDF_MESSAGES_LOCK:
            was_repaired = self.repaired
            page = self._load_page(index)
            if was_repaired:
                self._check_content(page, index)
            rect = page.rect
            zoom = self._fit_zoom(page, zoom, index)
            try:
                pix = page.get_pixmap(
                    matrix=pymupdf.Matrix(zoom, zoom), alpha=False, colorspace=pymupdf.csRGB
                )
                image = _pixmap_to_image(pix)
            except Exception as exc:
                raise RenderError(self.name, f"cannot render page: {exc}", page=index) from exc
            if not was_repaired and self.repaired:
                # MuPDF repairs lazily when an object turns out to be broken mid-render; if that
                # happened on this page, its content may be what was lost.
                self._check_content(page, index)
        return RenderedPage(
            index=index,
            label=_pdf_label(page, index),
            image=image,
            width=rect.width,
            height=rect.height,
            dpi=zoom * 72,
        )

    def _release(self) -> None:
        self._doc.close()

    def _load_page(self, index: int) -> pymupdf.Page:
        self._check_index(index)
        reason = "page object is missing" if index in self.missing_pages else None
        # MuPDF hands out a blank page for a dangling page reference instead of failing.
        reason = reason or _missing_page_reason(self._doc, index)
        if reason:
            raise RenderError(self.name, f"{reason} (damaged or truncated file)", page=index)
        try:
            return self._doc.load_page(index)
        except Exception as exc:
            raise RenderError(self.name, f"cannot load page: {exc}", page=index) from exc

    def _check_content(self, page: pymupdf.Page, index: int) -> None:
        reason = _damaged_content_reason(self._doc, page.xref, self._data)
        if reason:
            raise RenderError(self.name, f"{reason} (damaged or truncated file)", page=index)

    def _fit_zoom(self, page: pymupdf.Page, zoom: float, index: int) -> float:
        """Lower ``zoom`` until the page fits ``max_pixels``: a huge vector page is no attack."""
        rect = page.rect
        if rect.is_empty or rect.width * rect.height <= 0:
            raise RenderError(
                self.name, f"page has no area ({rect.width} x {rect.height} pt)", page=index
            )
        fitted = zoom
        pixels = _pixel_count(rect, fitted)
        if pixels > self.max_pixels:
            fitted = zoom * math.sqrt(self.max_pixels / pixels)
            # Pixel sizes round up, so the square-root estimate can overshoot by a row or column.
            while _pixel_count(rect, fitted) > self.max_pixels and fitted > 1e-6:
                fitted *= 0.995
            log.warning(
                "%s, page %d: %.0f dpi would need %d pixels (limit %d); rendering at %.1f dpi",
                self.name,
                index + 1,
                zoom * 72,
                pixels,
                self.max_pixels,
                fitted * 72,
            )
        return fitted


def _pdf_label(page: pymupdf.Page, index: int) -> str:
    try:
        label = page.get_label()
    except Exception:  # a broken /PageLabels tree must not cost the page
        label = ""
    return label or str(index + 1)


def _pixel_count(rect: pymupdf.Rect, zoom: float) -> int:
    irect = (rect * pymupdf.Matrix(zoom, zoom)).irect
    return irect.width * irect.height


def _pixmap_to_image(pix: pymupdf.Pixmap) -> Image.Image:
    """Copy an RGB pixmap straight into PIL; no PNG encode/decode round trip."""
    size = (pix.width, pix.height)
    if pix.stride == pix.width * 3:
        return Image.frombuffer("RGB", size, pix.samples_mv, "raw", "RGB", 0, 1)
    return Image.frombuffer("RGB", size, pix.samples_mv, "raw", "RGB", pix.stride, 1)


def _missing_page_reason(doc: pymupdf.Document, index: int) -> str | None:
    """Why page ``index`` has no real page object behind it, or None if it has one."""
    try:
        xref = doc.page_xref(index)
        if not 0 < xref < doc.xref_length():
            return "page object is missing"
        kind, value = doc.xref_get_key(xref, "Type")
        if kind == "name" and value != "/Page":
            return f"page tree points at a {value} object"
        if not doc.xref_object(xref, compressed=True).lstrip().startswith("<<"):
            return "page object is not a dictionary"
    except Exception as exc:
        return f"page object cannot be read: {exc}"
    return None


def _content_xrefs(doc: pymupdf.Document, page_xref: int) -> list[int]:
    kind, value = doc.xref_get_key(page_xref, "Contents")
    if kind == "xref":
        ref = int(value.split()[0])
        if 0 < ref < doc.xref_length() and not doc.xref_is_stream(ref):
            # /Contents may point at an array of streams rather than at a stream.
            return [
                int(r) for r in re.findall(r"(\d+) \d+ R", doc.xref_object(ref, compressed=True))
            ] or [ref]
        return [ref]
    if kind == "array":
        return [int(r) for r in re.findall(r"(\d+) \d+ R", value)]
    return []  # no /Contents: a legitimately blank page


def _damaged_content_reason(doc: pymupdf.Document, page_xref: int, data: bytes) -> str | None:
    """Detect content streams lost or cut short by truncation, which MuPDF renders silently."""
    ref = None
    try:
        for ref in _content_xrefs(doc, page_xref):
            if not 0 < ref < doc.xref_length():
                return f"content stream {ref} is missing"
            if not doc.xref_is_stream(ref):
                return f"content object {ref} is not a stream"
            raw = doc.xref_stream_raw(ref)
            # An intact stream is followed by "endstream", so one that runs to EOF was cut off.
            cut = raw.rstrip()
            if cut and data[-len(cut) - 256 :].rstrip().endswith(cut):
                return f"content stream {ref} runs to the end of the file"
            if doc.xref_get_key(ref, "Filter") == ("name", "/FlateDecode"):
                inflater = zlib.decompressobj()
                inflater.decompress(raw)
                if not inflater.eof:
                    return f"content stream {ref} is truncated"
    except zlib.error as exc:
        return f"content stream {ref} is corrupt: {exc}"
    except Exception as exc:
        return f"page content cannot be read: {exc}"
    return None


def _open_pdf(
    data: bytes, name: str, sha256: str, password: str | None, max_pixels: int
) -> PdfSource:
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    # PyMuPDF raises FileDataError, RuntimeError, ValueError, ... on bad data.
    except Exception as exc:
        raise CorruptFileError(name, f"PDF cannot be opened: {exc}") from exc
    try:
        _authenticate(doc, name, password)
        if doc.page_count == 0:
            if doc.is_repaired:
                raise CorruptFileError(name, "PDF is damaged and no pages could be recovered")
            raise EmptyDocumentError(name, "PDF has no pages")
        source = PdfSource(doc, data=data, name=name, sha256=sha256, max_pixels=max_pixels)
    except SourceError:
        doc.close()
        raise
    except Exception as exc:  # e.g. "Invalid number of pages" from a mangled page tree
        doc.close()
        raise CorruptFileError(name, f"PDF page tree cannot be read: {exc}") from exc
    if len(source.missing_pages) == source.page_count:
        source.close()
        raise CorruptFileError(
            name, f"PDF is damaged and none of its {source.page_count} pages could be recovered"
        )
    return source


def _authenticate(doc: pymupdf.Document, name: str, password: str | None) -> None:
    if not doc.needs_pass:
        return  # owner-password-only files open without one; a password given anyway is unused
    if password is None:
        raise PasswordError(name, "PDF is encrypted: password required")
    if not doc.authenticate(password):
        raise PasswordError(name, "PDF is encrypted: wrong password")


# ------------------------------------------------------------------------------------------ images


@dataclass(frozen=True)
class _Frame:
    pixels: tuple[int, int]  # upright (after EXIF orientation)
    dpi: tuple[float, float]
    orientation: int


class ImageSource(Source):
    """A raster image; one page per TIFF frame, otherwise a single page."""

    kind = "image"

    def __init__(self, image: Image.Image, frames: list[_Frame], *, name: str, sha256: str) -> None:
        super().__init__(name, sha256, len(frames))
        self._image = image
        self._frames = frames
        self.format: str = image.format or ""

    def page_label(self, index: int) -> str:
        self._check_index(index)
        return str(index + 1)

    def page_size(self, index: int) -> tuple[float, float]:
        self._check_index(index)
        frame = self._frames[index]
        return (frame.pixels[0] * 72 / frame.dpi[0], frame.pixels[1] * 72 / frame.dpi[1])

    def render(self, index: int, dpi: float = DEFAULT_DPI) -> RenderedPage:
        """Frame at native resolution; ``dpi`` is unused, ``RenderedPage.dpi`` is the image's."""
        _check_dpi(dpi)
        self._check_index(index)
        with self._lock:
            try:
                self._image.seek(index)
                self._image.load()
            # Pillow's decoders raise OSError, SyntaxError, ValueError, ... on bad data.
            except Exception as exc:
                raise CorruptFileError(
                    self.name, f"cannot decode image data: {exc}", page=index
                ) from exc
            try:
                upright = (
                    ImageOps.exif_transpose(self._image)
                    if self._frames[index].orientation > 1
                    else self._image
                )
                image = _to_rgb(upright)
            except Exception as exc:
                raise RenderError(
                    self.name, f"cannot convert {self._image.mode} image to RGB: {exc}", page=index
                ) from exc
        width, height = self.page_size(index)
        return RenderedPage(
            index=index,
            label=str(index + 1),
            image=image,
            width=width,
            height=height,
            dpi=self._frames[index].dpi[0],
        )

    def _release(self) -> None:
        self._image.close()


def _to_rgb(image: Image.Image) -> Image.Image:
    """A new RGB image; transparency is composited on white, high bit depths scaled, not clipped."""
    mode = image.mode
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return _scale_to_l(image).convert("RGB")
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
        mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")  # also copies when already RGB, so callers never share our frame


def _scale_to_l(image: Image.Image) -> Image.Image:
    """Map 16/32-bit integer or float greyscale to 8 bits; Pillow's convert would clip at 255."""
    source = image.convert("F") if image.mode != "F" else image
    low, high = cast("tuple[float, float]", source.getextrema())
    if image.mode.startswith("I;16") or (image.mode == "I" and low >= 0 and high <= 65535):
        scale, offset = (1.0, 0.0) if image.mode == "I" and high <= 255 else (255 / 65535, 0.0)
    elif image.mode == "F" and low >= 0 and high <= 1:
        scale, offset = 255.0, 0.0
    else:  # arbitrary range: stretch what is there
        span = (high - low) or 1.0
        scale, offset = 255 / span, -low * 255 / span
    return source.point(lambda v: v * scale + offset).convert("L")


def _read_frames(image: Image.Image, name: str, max_pixels: int) -> list[_Frame]:
    """Header-only pass over the frames for size, dpi and orientation; applies the pixel bound."""
    count = getattr(image, "n_frames", 1) if image.format in _MULTIPAGE_FORMATS else 1
    frames: list[_Frame] = []
    for index in range(count):
        page = index if count > 1 else None
        try:
            image.seek(index)
        except Exception as exc:
            raise CorruptFileError(name, f"cannot read image header: {exc}", page=page) from exc
        width, height = image.size
        if width * height > max_pixels:
            why = f"image is {width} x {height} = {width * height} px, over the {max_pixels} limit"
            raise ImageTooLargeError(name, why, page=page)
        if width <= 0 or height <= 0:
            raise CorruptFileError(name, f"image has no area ({width} x {height})", page=page)
        try:
            # Only after the size check: PNG's getexif() decodes the pixels to reach a late eXIf.
            orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1)
            dpi = _image_dpi(image.info.get("dpi"))
        except Exception as exc:
            raise CorruptFileError(name, f"cannot read image metadata: {exc}", page=page) from exc
        if orientation in (5, 6, 7, 8):  # these orientations swap the axes
            width, height, dpi = height, width, (dpi[1], dpi[0])
        frames.append(_Frame(pixels=(width, height), dpi=dpi, orientation=orientation))
    return frames


def _image_dpi(raw: object) -> tuple[float, float]:
    """The image's (x, y) dpi, 72 for an axis that is missing or nonsensical."""
    values = raw if isinstance(raw, (tuple, list)) and len(raw) == 2 else (None, None)
    result = []
    for value in values:
        try:
            dpi = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            dpi = 0.0
        result.append(dpi if math.isfinite(dpi) and 1 <= dpi <= 100_000 else 72.0)
    return (result[0], result[1])


def _open_image(data: bytes, fmt: str, name: str, sha256: str, max_pixels: int) -> ImageSource:
    if fmt == "WEBP" and not features.check("webp"):
        raise UnsupportedFormatError(name, "WEBP image, but this Pillow build has no WEBP support")
    try:
        # formats=[fmt]: only the plugin the magic bytes named may parse this input.
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(name, str(exc)) from exc
    except Exception as exc:  # UnidentifiedImageError, OSError, SyntaxError, ... from a bad header
        what = "truncated" if isinstance(exc, UnidentifiedImageError) else "damaged"
        raise CorruptFileError(name, f"{fmt} image header is {what}: {exc}") from exc
    try:
        frames = _read_frames(image, name, max_pixels)
        image.seek(0)
        image.load()  # decode the first frame now so a truncated file fails at open, not mid-run
    except SourceError:
        image.close()
        raise
    except Exception as exc:
        image.close()
        raise CorruptFileError(name, f"cannot decode {fmt} image data: {exc}") from exc
    return ImageSource(image, frames, name=name, sha256=sha256)


# ----------------------------------------------------------------------------------- entry points


def open_source(
    source: SourceInput,
    *,
    password: str | None = None,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Source:
    """Open a PDF or image from a path, bytes or binary file object; the format is sniffed.

    ``name`` overrides the display name used in errors. Raises a ``SourceError`` subclass on any
    problem with the input; a missing or unreadable path raises ``SourceError`` itself.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, not {max_pixels!r}")
    data, default_name = _read_input(source, name)
    name = name or default_name
    if not data:
        # An empty file is an interrupted write or download far more often than a format question.
        raise CorruptFileError(name, "file is empty (0 bytes)")
    sha256 = hashlib.sha256(data).hexdigest()
    fmt = _detect_format(data)
    if fmt == "PDF":
        return _open_pdf(data, name, sha256, password, max_pixels)
    if fmt is None:
        raise UnsupportedFormatError(
            name, f"not a PDF or a supported image (starts with {data[:16]!r})"
        )
    return _open_image(data, fmt, name, sha256, max_pixels)


def _read_input(source: SourceInput, name: str | None) -> tuple[bytes, str]:
    """The input's bytes and its default display name."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>"
    if isinstance(source, (str, os.PathLike)):
        path = os.fsdecode(source)
        shown = name or path
        try:
            with open(path, "rb") as handle:
                return handle.read(), path
        except FileNotFoundError as exc:
            raise SourceError(shown, "file not found") from exc
        except IsADirectoryError as exc:
            raise SourceError(shown, "is a directory, not a file") from exc
        except OSError as exc:
            raise SourceError(shown, f"cannot read file: {exc.strerror or exc}") from exc
    if callable(getattr(source, "read", None)):
        raw_name = getattr(source, "name", None)
        default = (
            os.fsdecode(raw_name) if isinstance(raw_name, (str, bytes, os.PathLike)) else "<stream>"
        )
        try:
            data = source.read()
        except OSError as exc:
            raise SourceError(name or default, f"cannot read stream: {exc}") from exc
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"{name or default}: file object must be opened in binary mode")
        return bytes(data), default
    raise TypeError(
        f"cannot open a {type(source).__name__}: pass a path, bytes or a binary file object"
    )


def _detect_format(data: bytes) -> str | None:
    """Pillow format name, "PDF", or None; by magic bytes only."""
    if data.startswith(_PDF_MAGIC):
        return "PDF"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):  # classic and BigTIFF
        return "TIFF"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    # "BM" alone is too weak a signature (text can start with it), so check the DIB header size too.
    if (
        data[:2] == b"BM"
        and len(data) >= 18
        and int.from_bytes(data[14:18], "little") in _BMP_DIB_HEADER_SIZES
    ):
        return "BMP"
    if _PDF_MAGIC in data[:_PDF_MAGIC_WINDOW]:
        return "PDF"
    return None


def _check_dpi(dpi: float) -> float:
    if (
        isinstance(dpi, bool)
        or not isinstance(dpi, (int, float))
        or not math.isfinite(dpi)
        or dpi <= 0
    ):
        raise ValueError(f"dpi must be a positive number, not {dpi!r}")
    return float(dpi)


# ------------------------------------------------------------------------------------- page ranges

_RANGE_PART = re.compile(r"\s*(?:([0-9]+)\s*(-)\s*([0-9]*)|-\s*([0-9]+)|([0-9]+))\s*", re.ASCII)


def parse_page_range(spec: PageSpec, page_count: int, *, source: str = "<document>") -> list[int]:
    """Resolve a page selection to sorted, unique, 0-based page indices.

    ``spec`` is None (all pages), a 0-based int, a ``range`` or iterable of 0-based ints, or a
    1-based string such as ``"1-3,5,8-"`` (``"8-"``: page 8 to the end; ``"-3"``: pages 1 to 3).
    Anything malformed, empty or outside ``0 <= i < page_count`` raises ``PageRangeError``.
    """
    if spec is None:
        return list(range(page_count))
    if isinstance(spec, str):
        return _parse_range_string(spec, page_count, source)
    if isinstance(spec, range):
        return _check_range(spec, page_count, source)
    if not isinstance(spec, Iterable) and hasattr(spec, "__index__"):
        return _check_indices([spec], page_count, source, spec)
    if isinstance(spec, (bytes, bytearray, memoryview)) or not isinstance(spec, Iterable):
        raise _range_error(
            source, spec, f"expected a page number, range or string, not {type(spec).__name__}"
        )
    try:
        items = list(spec)
    except Exception as exc:
        raise _range_error(source, spec, f"cannot iterate: {exc}") from exc
    return _check_indices(items, page_count, source, spec)


def _range_error(source: str, spec: object, why: str) -> PageRangeError:
    return PageRangeError(source, f"invalid page selection {_short(spec)}: {why}")


def _short(value: object) -> str:
    """repr() cut to a readable length: specs come from users and can be arbitrarily long."""
    shown = repr(value)
    return shown if len(shown) <= _SPEC_REPR_MAX else shown[: _SPEC_REPR_MAX - 3] + "..."


def _check_indices(
    items: Sequence[object], page_count: int, source: str, spec: object
) -> list[int]:
    if not items:
        raise _range_error(source, spec, "selects no pages")
    indices = set()
    for item in items:
        # operator.index takes ints and int-likes (NumPy integers) but not floats or bools.
        try:
            if isinstance(item, bool):
                raise TypeError
            index = operator.index(item)  # type: ignore[arg-type]
        except TypeError:
            raise _range_error(source, spec, f"{item!r} is not an integer page index") from None
        if not 0 <= index < page_count:
            raise _range_error(source, spec, f"index {index} outside 0..{page_count - 1} (0-based)")
        indices.add(index)
    return sorted(indices)


def _check_range(spec: range, page_count: int, source: str) -> list[int]:
    if not spec:
        raise _range_error(source, spec, "selects no pages")
    low, high = min(spec[0], spec[-1]), max(spec[0], spec[-1])
    # Bounds first, so a range(10**12) is refused without being materialised.
    if low < 0 or high >= page_count:
        raise _range_error(source, spec, f"outside 0..{page_count - 1} (0-based)")
    return sorted(spec)


def _parse_range_string(spec: str, page_count: int, source: str) -> list[int]:
    indices: set[int] = set()
    for part in spec.split(","):
        match = _RANGE_PART.fullmatch(part)
        if match is None:
            raise _range_error(
                source, spec, f"cannot parse {_short(part.strip())}; use e.g. '1-3,5,8-'"
            )
        first, _, last, upto, single = match.groups()
        if single is not None:
            start = end = _number(single)
        elif upto is not None:
            start, end = 1, _number(upto)
        else:
            start = _number(first)
            # An open end runs to the last page; max() turns "9-" of 8 pages into an error.
            end = _number(last) if last else max(page_count, start)
        if start > end:
            raise _range_error(source, spec, f"{_short(part.strip())} runs backwards")
        if start < 1 or end > page_count:
            raise _range_error(
                source, spec, f"{_short(part.strip())} outside pages 1..{page_count}"
            )
        indices.update(range(start - 1, end))
    return sorted(indices)


def _number(digits: str) -> int:
    # Python refuses int() on > 4300 digits; anything past 18 is out of range anyway.
    return int(digits) if len(digits) <= 18 else 10**18
