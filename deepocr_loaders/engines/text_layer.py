"""``engine="text-layer"``: a Document from the PDF's own text, laid out by PyMuPDF's layout model.

PyMuPDF 2.x bundles an ONNX layout model (``pymupdf.layout``, runs on CPU, no download) and
PyMuPDF4LLM's ``parse_document`` on top of it, which classifies the page's regions (title,
section-header, text, list-item, table, picture, caption, formula, page-header, page-footer,
footnote), orders them for reading (columns included), extracts table grids and ranks heading
font sizes. This engine maps that result onto our :class:`~deepocr_loaders.document.Block` model,
and checks each region the model calls a title or section header against the PDF's fonts and
the document's numbering before it becomes a heading (:mod:`.heading_check`: code lines never
do), and a region called the title but set smaller than a heading above it (an organisation
line under the real title) is a line of text, the larger heading the title. Running headers
and page numbers the model misses are found across pages once the document is assembled
(:mod:`deepocr_loaders.furniture`).

Speed: PyMuPDF4LLM's HTML table engine (``html_tables``, on by default) runs ``find_tables`` on
every page, at about the layout model's cost per page; it runs only on pages with a ruled table
(vertical rules inside a table the layout model found), where it rebuilds merged cells from the
rules. Other tables get the layout model's cell grid, as ``pymupdf4llm.to_markdown`` gives. On
the pages where it runs, its grid refinement gets the page's word list ready made
(:func:`table_words`, the same list PyMuPDF would build, built on arrays): PyMuPDF's own build
tests each word against each turned text span, ~0.8 s on a page holding a rotated table.

Every page first goes through the OCR-need detector (:mod:`.ocr_need`). A page that needs OCR
is returned with status ``needs_ocr``, its reason in ``page.error`` and ``page.metadata``, and
whatever its text layer gives when that text is usable (an invisible OCR layer, the caption of a
full-page image); use ``engine="auto"`` to have such pages OCRed.

Damaged PDFs: while the detector reads a page, MuPDF's messages are collected
(:func:`~deepocr_loaders.sources.mupdf_messages`); a page whose content MuPDF could not read in
full (a content stream missing, cut short or corrupt) gets the decision ``damaged`` (needs OCR,
text usable), so it comes back ``needs_ocr`` with what survived, an error naming the loss and
``page.warnings`` listing it, never ``ok``. Every page of a file MuPDF had to repair carries a
warning saying so, but stays ``ok`` when its own content streams are intact.

Side effect: ``parse_document`` normalises each parsed page's rotation and drops the PDF's
structure tree in the open ``pymupdf.Document`` (in memory only; renders look the same).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import pymupdf

from ..document import NORM_MAX, BBox, Block, BlockKind, Page, PageStatus, blocks_to_markdown
from ..errors import EngineError
from ..reading_order import xy_cut_order
from ..sources import PageDamage, mupdf_messages
from ..tables import TableGrid, grid_to_markdown, html_table_to_grid
from . import register_engine
from .base import Engine, PageInput, Task
from .heading_check import (
    LARGER,
    FontStats,
    HeadingVerdict,
    check_heading,
    font_stats,
    section_number,
)
from .ocr_need import OcrDecision, OcrNeedDetector, OcrReason

__all__ = ["LAYOUT_CLASS_KINDS", "TextLayerEngine", "decision_metadata"]

log = logging.getLogger(__name__)

#: PyMuPDF layout classes -> our block kinds; anything else becomes ``OTHER`` (label kept).
LAYOUT_CLASS_KINDS: dict[str, BlockKind] = {
    "title": BlockKind.TITLE,
    "section-header": BlockKind.HEADING,
    "text": BlockKind.TEXT,
    "list-item": BlockKind.LIST_ITEM,
    "table": BlockKind.TABLE,
    "picture": BlockKind.FIGURE,
    "caption": BlockKind.CAPTION,
    "formula": BlockKind.EQUATION,
    "page-header": BlockKind.PAGE_HEADER,
    "page-footer": BlockKind.PAGE_FOOTER,
    "footnote": BlockKind.FOOTNOTE,
}

_FURNITURE = frozenset({BlockKind.PAGE_HEADER, BlockKind.PAGE_FOOTER})
_SPAN_ATTR_RE = re.compile(r"\b(?:rowspan|colspan)\s*=\s*[\"']?\s*(\d+)", re.IGNORECASE)
_WS_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"[^\W_]+")
# TeX places a spacing accent glyph before its letter ("J´an Min´aˇc"), and writes double quotes
# as two single ones; MuPDF reports the glyphs as drawn. Combined they read as the author meant.
_TEX_ACCENTS = {
    "´": "\u0301",
    "ˆ": "\u0302",
    "˜": "\u0303",
    "¯": "\u0304",
    "˘": "\u0306",
    "˙": "\u0307",
    "¨": "\u0308",
    "˚": "\u030a",
    "˝": "\u030b",
    "ˇ": "\u030c",
}
_TEX_ACCENT_RE = re.compile(f"([{''.join(_TEX_ACCENTS)}])([A-Za-zı])")
_TEX_QUOTES = {"‘‘": "“", "’’": "”"}
_NOT_OCRED = "not OCRed: engine 'text-layer' reads only the text layer (use engine='auto')"


def decision_metadata(decision: OcrDecision, route: str) -> dict[str, Any]:
    """The page metadata every routed page carries: reason code, full decision, route taken."""
    return {
        "ocr_reason": decision.reason.value,
        "ocr_decision": decision.to_metadata(),
        "route": route,
    }


def _load_layout() -> Any:
    """PyMuPDF4LLM's document parser, with PyMuPDF's layout model switched on."""
    try:
        import pymupdf.layout  # noqa: F401 - importing activates the layout model
        import pymupdf4llm
        from pymupdf4llm.helpers import document_layout
    except ImportError as exc:
        raise EngineError(
            "engine 'text-layer' needs pymupdf4llm and pymupdf-layout "
            f"(pip install pymupdf4llm pymupdf-layout): {exc}"
        ) from exc
    pymupdf4llm.use_layout(True)
    _skip_tableless_pages()
    return document_layout


#: Rules shorter than this are not cell borders (PyMuPDF's table finder's minimum edge length).
_MIN_RULE = 3.0


def has_vertical_rules(page: pymupdf.Page, within: Sequence[pymupdf.Rect] | None = None) -> bool:
    """Whether ``page`` draws something that can be a table's vertical rule: a vertical line
    or a rectangle (a cell border, a shaded cell) at least ``_MIN_RULE`` points tall, and
    touching one of the rectangles ``within`` when given.

    Args:
        page: the page.
        within: where rules count (table regions); None for anywhere on the page.
    """
    for path in page.get_cdrawings():
        for item in path["items"]:
            op = item[0]
            if op == "l":
                (x0, y0), (x1, y1) = item[1], item[2]
                rule = abs(y1 - y0) >= _MIN_RULE and abs(x1 - x0) < 1.0
                box = pymupdf.Rect(min(x0, x1), min(y0, y1), max(x0, x1) + 1, max(y0, y1))
            elif op == "re":
                box = pymupdf.Rect(item[1])
                rule = box.height >= _MIN_RULE
            else:
                box = pymupdf.Rect(path["rect"])
                rule = op == "qu"
            if rule and (within is None or any(box.intersects(r) for r in within)):
                return True
    return False


def _ruled_table(page: pymupdf.Page) -> bool:
    """Whether a table the layout model found on ``page`` has vertical rules drawn in it
    (the page's raw layout boxes are on it when PyMuPDF4LLM asks for HTML tables)."""
    raw: Sequence[Any] = page.layout_information or ()
    tables = [
        pymupdf.Rect(
            box["group_bbox"][0] - 2,
            box["group_bbox"][1] - 2,
            box["group_bbox"][2] + 2,
            box["group_bbox"][3] + 2,
        )
        for box in raw
        if isinstance(box, dict) and box.get("class_name") == "table" and box.get("group_bbox")
    ]
    return bool(tables) and has_vertical_rules(page, tables)


def _rotated_span(line: dict[str, Any]) -> bool:
    """Whether a rawdict line runs vertically or turned (writing mode or direction)."""
    if line.get("wmode") not in (None, 0):
        return True
    direction = line.get("dir")
    if not isinstance(direction, (list, tuple)) or len(direction) < 2:
        return False
    return abs(float(direction[1])) > abs(float(direction[0]))


def table_words(page: pymupdf.Page) -> list[tuple[float, float, float, float, str]]:
    """The word list PyMuPDF's table grid refinement reads (``find_tables(refine=True)``):
    the page's words, where each turned or vertical text span stands for the words whose
    centres lie in it, sorted by top then left when there are such spans.

    PyMuPDF builds this list once per page, but drops the words inside turned spans with a
    point-in-rectangle call per (word, span) pair: ~265,000 calls and ~0.8 s on a page holding
    a rotated table (AASTeX's landscape tables), more than the rest of ``find_tables``. Here
    the same test runs on arrays, in MuPDF's single precision and with its half-open bounds
    (``x0 <= x < x1``), so the list is the same to the last word; a test checks it against
    PyMuPDF's own. Call it while ``find_tables`` would extract the text (small glyph heights
    on), as :func:`_prime_table_words` does.

    Args:
        page: the page, its rotation removed (as ``parse_document`` leaves it).
    """
    words = [
        (float(w[0]), float(w[1]), float(w[2]), float(w[3]), str(w[4]))
        for w in page.get_text("words")
        if str(w[4]).strip()
    ]
    turned: list[tuple[tuple[float, ...], str]] = []
    for block in page.get_text("rawdict")["blocks"]:
        if block.get("type") != 0:
            continue
        for line in block.get("lines", ()):
            if not _rotated_span(line):
                continue
            for span in line.get("spans", ()):
                text = "".join(str(char.get("c", "")) for char in span.get("chars", ()))
                if text.strip():
                    turned.append((tuple(float(v) for v in span["bbox"]), text))
    if not turned:
        return words
    import numpy as np  # ships with PyMuPDF's layout model (onnxruntime)

    rects = [(box, text) for box, text in turned if not (box[0] >= box[2] or box[1] >= box[3])]
    if rects and words:
        # float32 like MuPDF's fz_point / fz_rect, so boundary cases fall the same way.
        r = np.array([box for box, _ in rects], dtype=np.float32)
        w = np.array([word[:4] for word in words], dtype=np.float64)
        cx = ((w[:, 0] + w[:, 2]) * 0.5).astype(np.float32)[:, None]
        cy = ((w[:, 1] + w[:, 3]) * 0.5).astype(np.float32)[:, None]
        inside = (cx >= r[:, 0]) & (cx < r[:, 2]) & (cy >= r[:, 1]) & (cy < r[:, 3])
        kept = [words[i] for i in np.flatnonzero(~np.any(inside, axis=1))]
    else:
        kept = list(words)
    kept += [(box[0], box[1], box[2], box[3], text) for box, text in rects]
    return sorted(kept, key=lambda item: (item[1], item[0]))


def _prime_table_words(page: pymupdf.Page) -> None:
    """Hand PyMuPDF's grid refinement the page's word list (:func:`table_words`) in the cache
    it keeps on the page, so it does not build the list the slow way. A PyMuPDF that no longer
    keeps that cache is left alone."""
    try:
        from pymupdf import _table_refine
    except ImportError:
        return
    if not hasattr(_table_refine, "_refine_page_words"):
        return
    old = pymupdf.TOOLS.set_small_glyph_heights()
    pymupdf.TOOLS.set_small_glyph_heights(True)  # as find_tables extracts the words
    try:
        page._refine_words_cache = table_words(page)  # type: ignore[attr-defined]
    finally:
        pymupdf.TOOLS.set_small_glyph_heights(old)


def _skip_tableless_pages() -> None:
    """Run PyMuPDF4LLM's HTML table engine only on pages with a ruled table.

    ``parse_document(render_html_tables=True)`` runs ``find_tables`` on every page: a
    character map of the whole page, a line-based grid search and a grid refinement, which
    costs about as much as the layout model on a text page and several times that on some
    table pages. Its gain over the layout model's own cell grid is merged cells, rebuilt from
    drawn rules: its line finder (``lines_strict``) builds cells only where vertical and
    horizontal rules cross. So it runs where the layout model found a table with vertical
    rules drawn inside it (:func:`_ruled_table`); tables ruled only across (as journals set
    them) get the layout model's grid, as ``pymupdf4llm.to_markdown`` gives by default. The
    engine looks the function up when it runs, so the gate sits in front of it, for every
    caller in the process. On the pages it lets through, the grid refinement's word list is
    made first (:func:`_prime_table_words`), the same list, faster.
    """
    from pymupdf4llm.helpers import table_html

    find = table_html.page_html_tables
    if getattr(find, "gated", False):
        return

    def page_html_tables(page: pymupdf.Page) -> Any:
        if not _ruled_table(page):
            return []
        _prime_table_words(page)
        return find(page)

    page_html_tables.gated = True  # type: ignore[attr-defined]
    table_html.page_html_tables = page_html_tables


def _norm_box(b: BBox, width: float, height: float) -> tuple[int, int, int, int]:
    def n(v: float, size: float) -> int:
        return min(max(round(v / size * NORM_MAX), 0), NORM_MAX) if size > 0 else 0

    return (n(b.x0, width), n(b.y0, height), n(b.x1, width), n(b.y1, height))


def _norm_text(text: str) -> str:
    return _WS_RE.sub(" ", text).strip().casefold()


def _first_word(heading: str) -> str:
    """The first word after a heading's section number, case-folded."""
    words = _WORD_RE.findall(heading.casefold())
    return next((w for w in words if not w.isdigit()), "")


def _fix_tex_text(text: str) -> str:
    """Join TeX's spacing accents to their letters and its doubled single quotes."""
    if _TEX_ACCENT_RE.search(text):
        text = _TEX_ACCENT_RE.sub(
            lambda m: unicodedata.normalize(
                "NFC", ("i" if m.group(2) == "ı" else m.group(2)) + _TEX_ACCENTS[m.group(1)]
            ),
            text,
        )
    for pair, quote in _TEX_QUOTES.items():
        text = text.replace(pair, quote)
    return text


def _text_lost(decision: OcrDecision, blocks: list[Block]) -> OcrDecision | None:
    """A ``text_lost`` decision when the layout result kept under half of the page's visible
    text (PyMuPDF4LLM reads horizontal lines only, so text turned by /Rotate vanishes)."""
    visible = int(decision.metrics.get("visible_chars", 0))
    if decision.needs_ocr or visible < 20:
        return None
    kept = sum(len("".join(b.text.split())) for b in blocks)
    if kept >= visible / 2:
        return None
    metrics = {**decision.metrics, "layout_chars": kept}
    return OcrDecision(
        True,
        OcrReason.TEXT_LOST,
        f"the layout pass kept {kept} of the page's {visible} visible characters "
        "(rotated or vertical text)",
        False,
        metrics,
    )


def _page_damage(inp: PageInput, messages: Sequence[str]) -> PageDamage:
    check = getattr(inp.source, "page_damage", None)
    if check is None or inp.index in getattr(inp.source, "missing_pages", ()):
        return PageDamage()  # a lost page object fails the page in convert() anyway
    try:
        return check(inp.index, messages)
    except Exception as exc:  # the check must never cost the page
        log.warning("damage check failed on page %d: %s", inp.index + 1, exc)
        return PageDamage()


def _with_damage(decision: OcrDecision, damage: PageDamage) -> OcrDecision:
    """``decision`` carrying the damage's warnings; a ``damaged`` decision if content was lost."""
    if not damage.damaged:
        return (
            dataclasses.replace(decision, warnings=damage.warnings) if damage.warnings else decision
        )
    metrics = dict(decision.metrics)
    return OcrDecision(
        True,
        OcrReason.DAMAGED,
        f"damaged PDF, text may be missing: {damage.summary()}",
        True,
        metrics,
        damage.warnings,
    )


def _has_spans(html: str) -> bool:
    return any(int(m.group(1)) > 1 for m in _SPAN_ATTR_RE.finditer(html))


def _plain_lines(textlines: Sequence[dict[str, Any]] | None) -> list[str]:
    lines = []
    for line in textlines or ():
        text = " ".join(s["text"].strip() for s in line["spans"] if s["text"].strip())
        if text:
            lines.append(text)
    return lines


@dataclass
class _DocState:
    """What the engine learns about one document while streaming its pages."""

    heading_sizes: set[int] = field(default_factory=set)
    toc: dict[tuple[int, str], int] = field(default_factory=dict)
    """(1-based page, normalised title) -> outline level, from the PDF's bookmarks."""
    toc_numbers: set[tuple[int, tuple[int, ...], str]] = field(default_factory=set)
    """(1-based page, section number, first word) of the outline's numbered entries: a
    heading the outline words a little differently is still listed by these."""
    toc_depths: frozenset[int] = frozenset()
    """Depths of the section numbers the outline lists."""
    text_sizes: Counter[float] = field(default_factory=Counter)
    """Characters of body text per font size, over the pages parsed so far."""
    last_number: tuple[int, ...] | None = None
    """Section number of the last numbered heading kept, for the numbering check."""

    @property
    def body_size(self) -> float:
        """The font size most of the body text is set in (0 before any text)."""
        return self.text_sizes.most_common(1)[0][0] if self.text_sizes else 0.0

    def verdict(self, box: Any, text: str, fonts: FontStats, page_no: int) -> HeadingVerdict:
        """The heading check of one title or section-header region."""
        number = section_number(text)
        # By number and first word, a page either side: an outline entry may point to the
        # page before, and word a heading with markup or a line break differently.
        word = _first_word(text)
        listed = (page_no, _norm_text(text)) in self.toc or (
            number is not None
            and any((page_no + d, number, word) in self.toc_numbers for d in (0, -1, 1))
        )
        return check_heading(
            text,
            fonts,
            body_size=self.body_size,
            last_number=self.last_number,
            title=box.boxclass == "title",
            in_outline=listed,
            outline_depths=self.toc_depths,
        )


@register_engine("text-layer")
class TextLayerEngine(Engine):
    """Pages from the PDF text layer, structured by PyMuPDF's layout model.

    Options:

    * ``html_tables``: rebuild ruled tables (vertical rules drawn inside) with PyMuPDF4LLM's HTML
      table engine (row/col spans kept; the default: it scored 95% vs 85% on the olmOCR-Bench
      table tests) instead of the layout model's cell grid, which tables ruled only across
      (and every table with ``html_tables=False``) get;
    * ``reading_order``: ``"xy-cut"`` (default) reads multi-column pages and card grids column
      by column (:mod:`deepocr_loaders.reading_order`); ``"layout"`` keeps the layout model's
      order, which goes row by row across columns;
    * ``picture_text``: keep the text printed inside pictures (chart labels) as the figure
      block's text;
    * ``furniture``: keep page headers/footers in ``page.markdown`` (the blocks are always kept);
    * ``detector``: the :class:`OcrNeedDetector` to run on each page, or None for none;
    * ``batch_size``: pages laid out per call of the parser.
    """

    def __init__(
        self,
        *,
        html_tables: bool = True,
        reading_order: str = "xy-cut",
        picture_text: bool = True,
        furniture: bool = True,
        detector: OcrNeedDetector | None = None,
        detect: bool = True,
        batch_size: int = 8,
    ) -> None:
        if batch_size < 1:
            raise EngineError(f"batch_size must be >= 1, got {batch_size}")
        self._layout = _load_layout()
        if reading_order not in ("xy-cut", "layout"):
            raise EngineError(f"reading_order must be 'xy-cut' or 'layout', got {reading_order!r}")
        self.html_tables = html_tables
        self.reading_order = reading_order
        self.picture_text = picture_text
        self.furniture = furniture
        self.detector = (detector or OcrNeedDetector()) if detect else None
        self.batch_size = batch_size
        self._state_of: tuple[pymupdf.Document | None, _DocState | None] = (None, None)

    # ------------------------------------------------------------------------------- engine API

    def cache_identity(self) -> dict[str, Any]:
        """Options and library versions that change the output (batch size does not)."""
        import pymupdf
        import pymupdf4llm

        return {
            "engine": self.name,
            "html_tables": self.html_tables,
            "reading_order": self.reading_order,
            "picture_text": self.picture_text,
            "furniture": self.furniture,
            "detector": dataclasses.asdict(self.detector) if self.detector else None,
            # Pages cached before damaged PDFs were detected may be "ok" with text missing.
            "damage_check": 1,
            # Pages cached before headings were checked may hold code lines as headings.
            "heading_check": 1,
            "pymupdf": pymupdf.VersionBind,
            "pymupdf4llm": getattr(pymupdf4llm, "__version__", ""),
        }

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        it = iter(pages)
        while batch := list(islice(it, self.batch_size)):
            decisions = {id(inp): self.decide(inp) for inp in batch}
            yield from self.convert(batch, decisions)

    def close(self) -> None:
        self._state_of = (None, None)

    # ----------------------------------------------------------------------------- building blocks

    def decide(self, inp: PageInput) -> OcrDecision:
        """The OCR-need decision for one page (``text_ok`` when detection is off)."""
        pdf = getattr(inp.source, "pdf", None)
        if pdf is None:
            return OcrDecision(
                True, OcrReason.NOT_PDF, "an image has no text layer; it needs OCR", False
            )
        with _lock(inp), mupdf_messages() as messages:
            try:
                page = pdf.load_page(inp.index)
                if self.detector is None:
                    page.get_text("text")  # so MuPDF reports content it cannot read
                    decision = OcrDecision(False, OcrReason.TEXT_OK, "OCR-need detection is off")
                else:
                    decision = self.detector(page)
            except Exception as exc:  # a page the detector can't read is still laid out
                log.warning("OCR-need detection failed on page %d: %s", inp.index + 1, exc)
                decision = OcrDecision(
                    False, OcrReason.TEXT_OK, f"OCR-need detection failed ({exc}); text layer used"
                )
        return _with_damage(decision, _page_damage(inp, messages))

    def convert(
        self,
        batch: Sequence[PageInput],
        decisions: dict[int, OcrDecision],
        *,
        not_ocred: str = _NOT_OCRED,
    ) -> Iterator[Page]:
        """Pages for ``batch`` given each input's decision, keyed by ``id(input)``: text-layer
        blocks wherever the decision says the text is usable; a page that needs OCR gets status
        ``needs_ocr`` and an error of the decision's message plus ``not_ocred``."""
        parsed: dict[tuple[int, int], Any] = {}
        errors: dict[tuple[int, int], str] = {}
        wanted = []
        for inp in batch:
            if getattr(inp.source, "pdf", None) is None or not decisions[id(inp)].text_usable:
                continue
            # MuPDF would lay out a lost page object of a repaired file as a blank page.
            if inp.index in getattr(inp.source, "missing_pages", ()):
                errors[(id(inp.source), inp.index)] = (
                    "page object is missing (damaged or truncated file)"
                )
            else:
                wanted.append(inp)
        by_source: dict[int, list[PageInput]] = {}
        for inp in wanted:
            by_source.setdefault(id(inp.source), []).append(inp)
        for group in by_source.values():
            p, e = self._parse(group)
            src = id(group[0].source)
            parsed.update({(src, i): v for i, v in p.items()})
            errors.update({(src, i): v for i, v in e.items()})
        for inp in batch:
            key = (id(inp.source), inp.index)
            decision = decisions[id(inp)]
            route = "needs_ocr" if decision.needs_ocr else "text-layer"
            page = Page(
                index=inp.index,
                width=inp.width,
                height=inp.height,
                label=inp.label,
                engine=self.name,
                metadata=decision_metadata(decision, route),
                warnings=list(decision.warnings),
            )
            if key in errors:
                page.status = PageStatus.FAILED
                page.error = errors[key]
            elif key in parsed:
                state = self._state(inp.source.pdf)  # type: ignore[attr-defined]
                page.blocks = self._blocks(inp, parsed[key], state)
                exclude = frozenset() if self.furniture else _FURNITURE
                page.markdown = blocks_to_markdown(page.blocks, exclude=exclude)
                lost = _text_lost(decision, page.blocks)
                if lost is not None:
                    lost = dataclasses.replace(lost, warnings=decision.warnings)
                    decision = decisions[id(inp)] = lost  # the caller sees the new decision
                    page.metadata.update(decision_metadata(decision, "needs_ocr"))
            if decision.needs_ocr and page.status is PageStatus.OK:
                page.status = PageStatus.NEEDS_OCR
                page.error = f"{decision.message}; {not_ocred}"
            yield page

    def _parse(self, inputs: Sequence[PageInput]) -> tuple[dict[int, Any], dict[int, str]]:
        """Run PyMuPDF4LLM's parser on the inputs' pages; a failing batch is retried page by
        page so one bad page costs only itself."""
        if not inputs:
            return {}, {}
        indices = sorted({inp.index for inp in inputs})
        try:
            return self._parse_pages(inputs[0], indices), {}
        except Exception as exc:
            if len(indices) == 1:
                log.warning("text layer failed on page %d: %s", indices[0] + 1, exc)
                return {}, {indices[0]: f"text layer failed: {type(exc).__name__}: {exc}"}
        parsed: dict[int, Any] = {}
        errors: dict[int, str] = {}
        for inp in inputs:
            p, e = self._parse([inp])
            parsed.update(p)
            errors.update(e)
        return parsed, errors

    def _parse_pages(self, first: PageInput, indices: list[int]) -> dict[int, Any]:
        pdf: pymupdf.Document = first.source.pdf  # type: ignore[attr-defined]
        state = self._state(pdf)
        # Inside mupdf_messages: its MuPDF messages must not reach another thread's page check.
        with _lock(first), mupdf_messages():
            parsed = self._layout.parse_document(
                pdf,
                pages=indices,
                use_ocr=False,
                force_text=self.picture_text,
                render_html_tables=self.html_tables or None,
            )
        for page in parsed.pages:
            for box in page.boxes:
                if box.boxclass == "text":
                    for line in box.textlines or ():
                        for span in line["spans"]:
                            n = len(span["text"].strip())
                            if n:
                                state.text_sizes[round(span["size"], 1)] += n
        for page in parsed.pages:
            for box in page.boxes:
                if box.boxclass in ("title", "section-header") and box.max_fontsize:
                    # Only real headings rank the sizes: not code lines or body text the
                    # layout model took for headings (the numbering is checked later, in order).
                    text = " ".join(_plain_lines(box.textlines))
                    fonts = font_stats(s for line in box.textlines or () for s in line["spans"])
                    if state.verdict(box, text, fonts, page.page_number).kept:
                        state.heading_sizes.add(int(box.max_fontsize))
        return {page.page_number - 1: page for page in parsed.pages}

    def _state(self, pdf: pymupdf.Document) -> _DocState:
        # By identity, holding the document: a document opened after another was freed may
        # get its id(), and must not inherit its outline, fonts and numbering.
        held, state = self._state_of
        if held is not pdf:
            state = None
        if state is None:
            state = _DocState()
            try:
                for level, title, page_no, *_ in pdf.get_toc(simple=True):
                    state.toc.setdefault((page_no, _norm_text(title)), level)
                    number = section_number(title)
                    if number is not None:
                        state.toc_numbers.add((page_no, number, _first_word(title)))
            except Exception:  # a broken outline must not cost the document
                pass
            state.toc_depths = frozenset(len(n) for _, n, _ in state.toc_numbers)
            self._state_of = (pdf, state)  # one document at a time: the last one is held
        return state

    @staticmethod
    def _heading_level(
        state: _DocState, kind: BlockKind, text: str, size: int | None, page_no: int
    ) -> int:
        if kind is BlockKind.TITLE:
            return 1
        # The PDF's own outline is authoritative where it names this heading.
        toc_level = state.toc.get((page_no, _norm_text(text)))
        if toc_level is not None:
            return min(max(toc_level, 1), 6)
        # Else the rank of its font size among the document's heading sizes so far.
        sizes = sorted(state.heading_sizes, reverse=True)
        if size is None or size not in sizes:
            return 2
        return min(sizes.index(size) + 1, 6)

    def _blocks(self, inp: PageInput, layout: Any, state: _DocState) -> list[Block]:
        doc_layout = self._layout
        list_levels = doc_layout.create_list_item_levels(layout.boxes)
        width, height = inp.width, inp.height
        blocks: list[Block] = []
        headings: dict[int, Any] = {}  # position in blocks -> the layout box, for the check
        for i, box in enumerate(layout.boxes):
            label = str(box.boxclass)
            kind = LAYOUT_CLASS_KINDS.get(label, BlockKind.OTHER)
            bbox = BBox(
                max(0.0, float(box.x0)),
                max(0.0, float(box.y0)),
                min(width, float(box.x1)),
                min(height, float(box.y1)),
            )
            level: int | None = None
            html: str | None = None
            metadata: dict[str, Any] = {}
            lines = box.textlines
            if kind is BlockKind.TABLE:
                text, html, metadata = self._table(box.table or {})
            elif kind is BlockKind.FIGURE:
                text = "\n".join(_plain_lines(lines)) if self.picture_text else ""
            elif kind is BlockKind.EQUATION:
                text = " ".join(_plain_lines(lines))
            elif not lines:
                text = ""
            elif kind in (BlockKind.TITLE, BlockKind.HEADING):
                # Checked once the page is in reading order (the numbering runs in it).
                text = " ".join(_plain_lines(lines))
                headings[len(blocks)] = box
                if box.max_fontsize:
                    metadata["font_size"] = int(box.max_fontsize)
            elif kind is BlockKind.LIST_ITEM:
                list_level = list_levels.get(i, 1)
                text = doc_layout.list_item_to_md(lines, list_level)
                metadata["list_level"] = list_level
            elif kind is BlockKind.FOOTNOTE:
                text = doc_layout.footnote_to_md(lines)
            else:
                text = doc_layout.text_to_md(lines)
                if text.startswith("```"):
                    kind = BlockKind.CODE  # PyMuPDF4LLM renders all-monospace text as code
            if kind is not BlockKind.CODE:
                text = _fix_tex_text(text)
                html = _fix_tex_text(html) if html else html
            blocks.append(
                Block(
                    kind=kind,
                    text=text.strip(),
                    page_index=inp.index,
                    order=len(blocks),
                    label=label,
                    level=level,
                    html=html,
                    bbox=bbox,
                    boxes=[bbox],
                    norm_boxes=[_norm_box(bbox, width, height)],
                    metadata=metadata,
                )
            )
        boxes = {id(blocks[k]): box for k, box in headings.items()}
        if self.reading_order == "xy-cut":
            blocks = self._reorder(blocks)
        self._retitle(blocks, boxes)
        for block in blocks:
            box = boxes.get(id(block))
            if box is not None:
                self._check_heading(block, box, state, inp.index + 1)
        return blocks

    def _retitle(self, blocks: list[Block], boxes: dict[int, Any]) -> None:
        """A region called the title but set smaller than a heading above it on its page (an
        organisation or author line under the real title, which the layout model took for a
        section header) is a line of text, and that larger heading is the title: else the
        smaller line would head every chunk of the document."""
        above: Block | None = None
        for block in blocks:
            box = boxes.get(id(block))
            if box is None:
                continue
            size = float(box.max_fontsize or 0)
            if block.kind is BlockKind.TITLE:
                # Only the page's first title is weighed, against the headings above it: a
                # title's own second, smaller line (a subtitle) stays as the model set it.
                if above is not None and size:
                    top = boxes[id(above)]
                    if float(top.max_fontsize or 0) >= size * LARGER:
                        top.boxclass = "title"
                        above.kind = BlockKind.TITLE
                        del boxes[id(block)]
                        block.kind = BlockKind.TEXT
                        block.metadata["heading_check"] = "below_title"
                        block.text = _fix_tex_text(self._layout.text_to_md(box.textlines)).strip()
                return
            if above is None or size > float(boxes[id(above)].max_fontsize or 0):
                above = block

    def _check_heading(self, block: Block, box: Any, state: _DocState, page_no: int) -> None:
        """Make ``block`` (a title or section header, its text still plain) a heading with its
        level, or the code or text block the heading check says it is."""
        lines = box.textlines or []
        plain = block.text
        fonts = font_stats(s for line in lines for s in line["spans"])
        verdict = state.verdict(box, plain, fonts, page_no)
        block.metadata["heading_check"] = verdict.reason
        if verdict.kept:
            if verdict.number is not None:
                state.last_number = verdict.number
            level = self._heading_level(state, block.kind, plain, box.max_fontsize, page_no)
            block.level = level
            block.text = f"{'#' * level} {plain}" if plain else ""
            return
        block.kind = verdict.kind
        if verdict.kind is BlockKind.CODE:
            block.text = self._layout.code_block_to_md(lines).strip()
        else:
            block.text = _fix_tex_text(self._layout.text_to_md(lines)).strip()

    @staticmethod
    def _reorder(blocks: list[Block]) -> list[Block]:
        """Column-first reading order; page headers stay first and footers last."""
        head = [b for b in blocks if b.kind is BlockKind.PAGE_HEADER]
        foot = [b for b in blocks if b.kind is BlockKind.PAGE_FOOTER]
        body = [b for b in blocks if not b.kind.is_furniture]
        boxes = [b.bbox or BBox(0, 0, 0, 0) for b in body]
        columns = [body[i] for i in xy_cut_order(boxes)]
        rows = [body[i] for i in xy_cut_order(boxes, columns_first=False)]
        # A grid of cards reads either way; numbered headings ("1.", "2."...) say which. The
        # column-first order wins ties: it is right for multi-column text.
        cut = min((columns, rows, body), key=_numbering_inversions)
        ordered = head + cut + foot
        for n, block in enumerate(ordered):
            block.order = n
        return ordered

    @staticmethod
    def _table(table: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
        """Markdown, HTML (only when cells span) and size of one table."""
        html = table.get("html") or None
        meta: dict[str, Any] = {"rows": table.get("row_count"), "cols": table.get("col_count")}
        if html:
            md = "\n\n".join(
                grid_to_markdown(html_table_to_grid(item["html"]))
                for item in table.get("html_tables") or [{"html": html}]
            )
            return md, (html if _has_spans(html) else None), meta
        extract = table.get("extract")
        if extract:
            rows = [[" ".join((c or "").split()) for c in row] for row in extract]
            return grid_to_markdown(TableGrid(rows=rows, header_rows=1)), None, meta
        return str(table.get("markdown") or ""), None, meta


def _lock(inp: PageInput) -> AbstractContextManager[Any]:
    # MuPDF documents must not be used from two threads at once; the source holds the lock.
    lock = getattr(inp.source, "_lock", None)
    return lock if lock is not None else nullcontext()


_SECTION_NUMBER = re.compile(r"^#*\s*(\d{1,3})[.)]?\s")


def _numbering_inversions(blocks: Sequence[Block]) -> int:
    """Pairs of numbered headings that come out of numeric order."""
    numbers = []
    for block in blocks:
        if block.kind in (BlockKind.HEADING, BlockKind.TITLE):
            m = _SECTION_NUMBER.match(block.text)
            if m:
                numbers.append(int(m.group(1)))
    return sum(1 for i, a in enumerate(numbers) for b in numbers[i + 1 :] if a > b)
