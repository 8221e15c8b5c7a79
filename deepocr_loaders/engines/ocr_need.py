"""Per-page OCR-need detector: does a PDF page's text layer carry the page, or must it be OCRed?

The detector reads one ``pymupdf.Page`` (one text extraction, plus a low-resolution render only
for pages with an invisible text layer) and returns an :class:`OcrDecision` with a reason code,
a sentence saying why, and the measurements behind it. Reasons, in the order they are checked:

* ``forced``: the caller asked for OCR on every page;
* ``blank``: no text and nothing drawn: an empty page needs no OCR;
* ``no_text``: no or almost no text, but images or vector graphics are drawn (a scan, outlined
  text);
* ``undecodable_text``: the text layer is mostly replacement, private-use or control characters
  (fonts without a ToUnicode map, glyph soup);
* ``text_disagrees``: the text is invisible (an OCR layer) and lies where the page shows no ink;
* ``invisible_text``: the text is an invisible OCR layer over a picture of the page, so its
  quality is unknown (``ocr_layer_trusted`` instead when ``trust_invisible_text``);
* ``image_page``: an image covers most of the page and carries little text of its own;
* ``image_text``: PyMuPDF4LLM's OCR-decision model (``use_ocr_model``) finds text drawn in
  images or vector graphics;
* ``text_ok``: the text layer is good.

The text-layer engine checks for damage before this detector runs: ``damaged`` (MuPDF could not
read all of the page's content: a content stream missing, cut short or corrupt, see
:meth:`~deepocr_loaders.sources.PdfSource.page_damage`), so its text may be incomplete.

More reasons are assigned after the layout pass: ``text_lost`` (the page has text but the layout
result kept little of it, e.g. text rotated by the page's /Rotate), ``formulas`` and ``tables``
(``auto`` options forcing OCR for pages with those), and ``not_pdf`` for image inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import pymupdf

__all__ = ["OcrDecision", "OcrNeedDetector", "OcrReason", "detect_ocr_need"]

# No TEXT_PRESERVE_IMAGES: it copies every image's pixels; get_image_info() gives the boxes.
_TEXT_FLAGS = pymupdf.TEXT_ACCURATE_BBOXES | pymupdf.TEXT_COLLECT_VECTORS
_BLOCK_TEXT = 0
_BLOCK_VECTOR = pymupdf.mupdf.FZ_STEXT_BLOCK_VECTOR
_STROKED = pymupdf.mupdf.FZ_STEXT_STROKED
_FILLED = pymupdf.mupdf.FZ_STEXT_FILLED
_GLYPHLESS_FONT = "GlyphLessFont"  # Tesseract's invisible OCR font
_INK_DPI = 72
_INK_CONTRAST = 60  # a pixel this much darker than the paper (the page's median grey) is ink
_INK_SHARE = 0.03  # share of inked pixels in a text box that shows text is drawn there


class OcrReason(str, Enum):
    """Why a page does or does not need OCR."""

    TEXT_OK = "text_ok"
    DAMAGED = "damaged"
    BLANK = "blank"
    OCR_LAYER_TRUSTED = "ocr_layer_trusted"
    FORCED = "forced"
    NO_TEXT = "no_text"
    UNDECODABLE_TEXT = "undecodable_text"
    TEXT_DISAGREES = "text_disagrees"
    INVISIBLE_TEXT = "invisible_text"
    IMAGE_PAGE = "image_page"
    IMAGE_TEXT = "image_text"
    TEXT_LOST = "text_lost"
    FORMULAS = "formulas"
    TABLES = "tables"
    NOT_PDF = "not_pdf"


@dataclass(frozen=True)
class OcrDecision:
    """One page's routing decision; ``text_usable`` says whether the text layer is worth keeping
    as a fallback when no OCR engine is available (false for garbage or disagreeing text)."""

    needs_ocr: bool
    reason: OcrReason
    message: str
    text_usable: bool = True
    metrics: dict[str, float | int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    """What the page should carry in ``Page.warnings`` whichever route it takes (damage found
    while it was read, a repaired file)."""

    def to_metadata(self) -> dict[str, Any]:
        """A JSON-ready dict for ``Page.metadata["ocr_decision"]`` (warnings go to the page)."""
        data = asdict(self)
        data["reason"] = self.reason.value
        del data["warnings"]
        return data

    @classmethod
    def forced(cls, reason: OcrReason, message: str, *, text_usable: bool = True) -> OcrDecision:
        """A decision made by a caller's option rather than by looking at the page."""
        return cls(True, reason, message, text_usable)


def _is_bad_char(ch: str) -> bool:
    o = ord(ch)
    return o == 0xFFFD or 0xE000 <= o <= 0xF8FF or o >= 0xF0000 or (o < 0x20 and ch not in "\t\n\r")


def _is_invisible(span: dict[str, Any]) -> bool:
    # Render mode 3 (neither filled nor stroked), fully transparent, or Tesseract's font.
    flags = span.get("char_flags", _FILLED)
    return (
        span.get("alpha", 255) == 0
        or not flags & (_STROKED | _FILLED)
        or span.get("font", "") == _GLYPHLESS_FONT
    )


_Box = tuple[float, ...]


def _area(r: _Box) -> float:
    return max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])


def _clip(r: _Box, page: pymupdf.Rect) -> _Box:
    return (max(r[0], page.x0), max(r[1], page.y0), min(r[2], page.x1), min(r[3], page.y1))


def _fonts_without_tounicode(page: pymupdf.Page) -> list[str]:
    """Composite and Type3 fonts with no ToUnicode map: their text often cannot be decoded."""
    names = []
    doc = page.parent
    for xref, _ext, ftype, basefont, _name, _enc, *_ in page.get_fonts():
        if ftype not in ("Type0", "Type3") or not xref:
            continue
        try:
            if doc.xref_get_key(xref, "ToUnicode")[0] == "null":
                names.append(basefont)
        except Exception:  # a broken font dict is no reason to fail the page
            continue
    return names


@dataclass(frozen=True)
class OcrNeedDetector:
    """Thresholds of the OCR-need decision; call it with a ``pymupdf.Page``."""

    min_chars: int = 20
    """Fewer visible characters than this is "almost no text"."""
    bad_char_ratio: float = 0.1
    """Share of replacement / private-use / control characters that makes text undecodable."""
    image_cover: float = 0.5
    """Share of the page covered by images above which the page is an image page..."""
    text_on_image_chars: int = 200
    """...unless at least this many visible characters lie on the images (a background)."""
    invisible_ratio: float = 0.5
    """Share of invisible characters above which the text layer is an OCR layer."""
    ink_agreement: float = 0.6
    """Share of invisible characters that must lie on ink for the layer to match the page."""
    trust_invisible_text: bool = False
    """Accept an invisible OCR layer that matches the page instead of OCRing again."""
    use_ocr_model: bool = False
    """Also ask PyMuPDF4LLM's OCR-decision model about pages with images or vector art."""
    force: bool = False
    """Decide ``forced`` for every page."""

    def __call__(self, page: pymupdf.Page) -> OcrDecision:
        return detect_ocr_need(page, self)


def detect_ocr_need(page: pymupdf.Page, detector: OcrNeedDetector | None = None) -> OcrDecision:
    """Decide whether ``page`` needs OCR; see the module docstring for the reasons."""
    d = detector or OcrNeedDetector()
    if d.force:
        return OcrDecision.forced(OcrReason.FORCED, "OCR forced for every page")
    rect = page.rect
    page_area = _area(tuple(rect)) or 1.0
    blocks = page.get_text("dict", flags=_TEXT_FLAGS)["blocks"]

    visible = invisible = bad = 0
    image_rects = [
        r for r in (_clip(info["bbox"], rect) for info in page.get_image_info()) if _area(r) > 0
    ]
    invisible_spans: list[tuple[tuple[float, ...], int]] = []
    vector_area = 0.0
    vector_art = 0  # non-rectangular vectors: drawn shapes, outlined glyphs
    visible_spans: list[tuple[tuple[float, ...], int]] = []
    for b in blocks:
        btype = b["type"]
        if btype == _BLOCK_VECTOR:
            vector_area += _area(_clip(b["bbox"], rect))
            vector_art += 0 if b.get("isrect", True) else 1
        elif btype == _BLOCK_TEXT:
            for line in b["lines"]:
                for span in line["spans"]:
                    text = "".join(span["text"].split())
                    if not text:
                        continue
                    bad += sum(1 for ch in text if _is_bad_char(ch))
                    if _is_invisible(span):
                        invisible += len(text)
                        invisible_spans.append((span["bbox"], len(text)))
                    else:
                        visible += len(text)
                        visible_spans.append((span["bbox"], len(text)))

    total = visible + invisible
    image_area = min(1.0, sum(_area(r) for r in image_rects) / page_area)
    metrics: dict[str, float | int] = {
        "chars": total,
        "visible_chars": visible,
        "invisible_chars": invisible,
        "bad_chars": bad,
        "image_cover": round(image_area, 4),
        "images": len(image_rects),
        "vector_cover": round(min(1.0, vector_area / page_area), 4),
    }
    drawn = len(image_rects) > 0 or vector_area / page_area > 0.01

    if total < d.min_chars and not drawn:
        return OcrDecision(False, OcrReason.BLANK, "blank page: no text and nothing drawn", True,
                           metrics)  # fmt: skip
    if total < d.min_chars:
        return OcrDecision(
            True,
            OcrReason.NO_TEXT,
            f"no text layer ({total} characters) but the page draws images or graphics",
            False,
            metrics,
        )
    if bad / total >= d.bad_char_ratio:
        fonts = _fonts_without_tounicode(page)
        why = f"; fonts without ToUnicode: {', '.join(sorted(set(fonts)))}" if fonts else ""
        return OcrDecision(
            True,
            OcrReason.UNDECODABLE_TEXT,
            f"text layer cannot be decoded: {bad} of {total} characters are replacement, "
            f"private-use or control characters{why}",
            False,
            metrics,
        )
    if invisible / total >= d.invisible_ratio:
        agreement = _ink_agreement(page, invisible_spans)
        metrics["ink_agreement"] = round(agreement, 4)
        if agreement < d.ink_agreement:
            return OcrDecision(
                True,
                OcrReason.TEXT_DISAGREES,
                f"invisible text layer disagrees with the page: only {agreement:.0%} of its "
                "characters lie on printed ink",
                False,
                metrics,
            )
        if d.trust_invisible_text:
            return OcrDecision(
                False,
                OcrReason.OCR_LAYER_TRUSTED,
                "invisible OCR layer matches the page and is trusted",
                True,
                metrics,
            )
        return OcrDecision(
            True,
            OcrReason.INVISIBLE_TEXT,
            "text is an invisible OCR layer over an image of the page; its quality is unknown",
            True,
            metrics,
        )
    if visible < d.min_chars:
        return OcrDecision(
            True,
            OcrReason.NO_TEXT,
            f"almost no visible text ({visible} characters)",
            True,
            metrics,
        )
    if image_area >= d.image_cover:
        on_images = sum(n for bbox, n in visible_spans if _center_in(bbox, image_rects))
        metrics["chars_on_images"] = on_images
        if on_images < d.text_on_image_chars:
            return OcrDecision(
                True,
                OcrReason.IMAGE_PAGE,
                f"images cover {image_area:.0%} of the page and carry little text "
                f"({on_images} characters)",
                True,
                metrics,
            )
    if d.use_ocr_model and (image_rects or vector_art):
        from pymupdf4llm.ocr.analyze_page import analyze_page

        analysis = analyze_page(page)  # its own extraction: it needs the image blocks
        prob = analysis.get("probability")
        if prob is not None:
            metrics["ocr_probability"] = round(float(prob), 4)
        if analysis.get("needs_ocr"):
            return OcrDecision(
                True,
                OcrReason.IMAGE_TEXT,
                f"PyMuPDF's OCR model finds text drawn as images or graphics (p={prob:.2f})",
                True,
                metrics,
            )
    return OcrDecision(False, OcrReason.TEXT_OK, "text layer is good", True, metrics)


def _center_in(bbox: tuple[float, ...], rects: list[tuple[float, ...]]) -> bool:
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return any(r[0] <= cx <= r[2] and r[1] <= cy <= r[3] for r in rects)


def _ink_agreement(page: pymupdf.Page, spans: list[tuple[tuple[float, ...], int]]) -> float:
    """Share of the invisible characters whose box holds ink on a coarse grey render."""
    if not spans:
        return 1.0
    import numpy as np  # numpy ships with PyMuPDF's layout model (onnxruntime)

    pix = page.get_pixmap(dpi=_INK_DPI, colorspace=pymupdf.csGRAY, alpha=False)
    gray = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.stride)
    gray = gray[:, : pix.width]
    # Relative to the paper, since scans are often yellowed or grey.
    ink = (gray < float(np.median(gray)) - _INK_CONTRAST).astype(np.int32)
    # Summed-area table: the ink count of any box in four lookups.
    table = np.zeros((pix.height + 1, pix.width + 1), dtype=np.int64)
    table[1:, 1:] = ink.cumsum(0).cumsum(1)
    zoom = _INK_DPI / 72
    x_off, y_off = page.rect.x0, page.rect.y0
    agree = total = 0
    for bbox, n in spans:
        total += n
        x0 = min(max(int((bbox[0] - x_off) * zoom), 0), pix.width)
        y0 = min(max(int((bbox[1] - y_off) * zoom), 0), pix.height)
        x1 = min(max(int((bbox[2] - x_off) * zoom) + 1, 0), pix.width)
        y1 = min(max(int((bbox[3] - y_off) * zoom) + 1, 0), pix.height)
        cells = (x1 - x0) * (y1 - y0)
        if cells <= 0:
            continue
        dark = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
        # Printed text inks a few percent of its box even at this coarse resolution.
        if dark / cells >= _INK_SHARE:
            agree += n
    return agree / total if total else 1.0
