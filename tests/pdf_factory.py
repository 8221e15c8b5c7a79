"""Small PDFs generated with PyMuPDF for the text-layer, OCR-need and auto-routing tests.

Every function returns the PDF bytes; nothing is written to disk. The pages are letter size
(612 x 792 pt) and built from HTML with ``Page.insert_htmlbox`` so they carry real fonts, real
headings, lists and ruled tables, the way a word processor's export does.
"""

from __future__ import annotations

import pymupdf

__all__ = [
    "BORN_DIGITAL_HTML",
    "LEFT_COLUMN",
    "RIGHT_COLUMN",
    "RUNNING_TITLE",
    "SCAN_TEXT",
    "blank_pdf",
    "born_digital_pdf",
    "disagreeing_layer_pdf",
    "furniture_pdf",
    "image_only_pdf",
    "invisible_layer_pdf",
    "mixed_pdf",
    "no_tounicode_pdf",
    "rotated_pdf",
    "spanning_table_pdf",
    "two_column_pdf",
]

WIDTH, HEIGHT = 612.0, 792.0

_CSS = """
body { font-family: sans-serif; font-size: 11px; }
h1 { font-size: 26px; font-weight: bold; }
h2 { font-size: 17px; font-weight: bold; }
h3 { font-size: 13px; font-weight: bold; }
table { border-collapse: collapse; }
td, th { border: 1px solid black; padding: 3px; }
"""

_PARA = (
    "Retrieval systems index the text of documents page by page. When a PDF was produced by a "
    "word processor its text layer is exact, so reading it directly is both faster and more "
    "faithful than running a recognition model over a picture of the page. "
)

BORN_DIGITAL_HTML = f"""
<h1>Quarterly Field Report</h1>
<p>{_PARA * 2}</p>
<h2>Survey Results</h2>
<p>{_PARA}</p>
<ul>
<li>Soil samples were collected at twelve sites.</li>
<li>Water quality met the regional standard.</li>
<li>Two sensors need replacement before winter.</li>
</ul>
<h3>Measured Values</h3>
<table>
<tr><th>Site</th><th>Depth (m)</th><th>pH</th><th>Nitrate (mg/l)</th></tr>
<tr><td>North ridge</td><td>1.5</td><td>6.8</td><td>12.4</td></tr>
<tr><td>River bend</td><td>2.0</td><td>7.1</td><td>9.7</td></tr>
<tr><td>Old quarry</td><td>0.5</td><td>6.2</td><td>15.1</td></tr>
<tr><td>East meadow</td><td>1.0</td><td>6.9</td><td>11.3</td></tr>
</table>
<p>{_PARA}</p>
"""

LEFT_COLUMN = (
    "Alpha column opens the story. "
    + "The left column describes how the first experiment was prepared and which instruments "
    "were calibrated before the measurements began. " * 7 + "Alpha column ends here."
)
RIGHT_COLUMN = (
    "Omega column starts afterwards. "
    + "The right column continues with the results of the second experiment and compares "
    "them with the expectations stated earlier in the report. "
    * 7
    + "Omega column closes the page."
)

#: Lines drawn into the raster of the image-only and invisible-layer pages.
SCAN_TEXT = [
    "SCANNED INVOICE NUMBER 4711",
    "Delivery of forty garden chairs",
    "Total amount due within thirty days",
]


def _new_page(doc: pymupdf.Document) -> pymupdf.Page:
    return doc.new_page(width=WIDTH, height=HEIGHT)


def _finish(doc: pymupdf.Document) -> bytes:
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return bytes(data)


def _html_page(doc: pymupdf.Document, html: str) -> pymupdf.Page:
    page = _new_page(doc)
    page.insert_htmlbox(pymupdf.Rect(54, 54, WIDTH - 54, HEIGHT - 54), html, css=_CSS)
    return page


def _add_born_digital(doc: pymupdf.Document) -> None:
    page = _html_page(doc, BORN_DIGITAL_HTML)
    # Running header and footer, as furniture the layout model can recognise.
    page.insert_text((54, 36), "Field Report 2026 - internal", fontsize=8)
    page.insert_text((WIDTH / 2 - 4, HEIGHT - 28), "1", fontsize=8)


def _add_two_columns(doc: pymupdf.Document) -> None:
    page = _new_page(doc)
    page.insert_htmlbox(
        pymupdf.Rect(54, 54, WIDTH - 54, 110), "<h2>Two Column Section</h2>", css=_CSS
    )
    gap = 24
    mid = WIDTH / 2
    page.insert_htmlbox(
        pymupdf.Rect(54, 120, mid - gap / 2, HEIGHT - 72), f"<p>{LEFT_COLUMN}</p>", css=_CSS
    )
    page.insert_htmlbox(
        pymupdf.Rect(mid + gap / 2, 120, WIDTH - 54, HEIGHT - 72),
        f"<p>{RIGHT_COLUMN}</p>",
        css=_CSS,
    )


def born_digital_pdf() -> bytes:
    """Page 1: title, headings (three sizes), paragraphs, a bullet list and a ruled table, with
    a running header and footer. Page 2: a heading over two text columns."""
    doc = pymupdf.open()
    _add_born_digital(doc)
    _add_two_columns(doc)
    return _finish(doc)


def two_column_pdf() -> bytes:
    """One page: a heading over two columns of text."""
    doc = pymupdf.open()
    _add_two_columns(doc)
    return _finish(doc)


def spanning_table_pdf() -> bytes:
    """One page with a table whose header cells span columns."""
    doc = pymupdf.open()
    _html_page(
        doc,
        """
<h2>Results by Method</h2>
<table>
<tr><th rowspan="2">Task</th><th colspan="2">Baseline</th><th colspan="2">Ours</th></tr>
<tr><th>Accuracy</th><th>Recall</th><th>Accuracy</th><th>Recall</th></tr>
<tr><td>Parsing</td><td>0.71</td><td>0.64</td><td>0.88</td><td>0.83</td></tr>
<tr><td>Tagging</td><td>0.69</td><td>0.60</td><td>0.85</td><td>0.80</td></tr>
<tr><td>Linking</td><td>0.55</td><td>0.51</td><td>0.79</td><td>0.74</td></tr>
</table>
""",
    )
    return _finish(doc)


def _scan_pixmap(dpi: int = 100) -> pymupdf.Pixmap:
    """A page with large text, rasterised: what a scanner would hand back."""
    doc = pymupdf.open()
    page = _new_page(doc)
    for i, line in enumerate(SCAN_TEXT):
        page.insert_text((72, 120 + i * 48), line, fontsize=22)
    pix = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    doc.close()
    return pix


def _add_scan(doc: pymupdf.Document, *, layer: str | None = None) -> None:
    page = _new_page(doc)
    page.insert_image(page.rect, pixmap=_scan_pixmap())
    if layer == "matching":
        # An OCR layer (render mode 3: neither filled nor stroked) exactly over the drawn text.
        for i, line in enumerate(SCAN_TEXT):
            page.insert_text((72, 120 + i * 48), line, fontsize=22, render_mode=3)
    elif layer == "disagreeing":
        # Invisible text where the picture is blank paper: it says something the page doesn't.
        for i in range(12):
            page.insert_text(
                (72, 420 + i * 24),
                "hidden keywords for search engines only",
                fontsize=14,
                render_mode=3,
            )


def image_only_pdf() -> bytes:
    """One page that is nothing but a raster image of text: a scan without OCR."""
    doc = pymupdf.open()
    _add_scan(doc)
    return _finish(doc)


def invisible_layer_pdf() -> bytes:
    """A scanned page carrying an invisible OCR text layer that matches the picture."""
    doc = pymupdf.open()
    _add_scan(doc, layer="matching")
    return _finish(doc)


def disagreeing_layer_pdf() -> bytes:
    """A scanned page whose invisible text lies over blank paper (disagrees with the drawing)."""
    doc = pymupdf.open()
    _add_scan(doc, layer="disagreeing")
    return _finish(doc)


def blank_pdf() -> bytes:
    """One empty page."""
    doc = pymupdf.open()
    _new_page(doc)
    return _finish(doc)


def no_tounicode_pdf() -> bytes:
    """A page whose text font has no ToUnicode map and an Identity encoding: the glyphs draw
    fine but the text cannot be decoded (what subsetting PDF writers sometimes produce)."""
    doc = pymupdf.open()
    page = _new_page(doc)
    page.insert_font(fontname="F0", fontbuffer=pymupdf.Font("cour").buffer)
    y = 90.0
    for _ in range(14):
        page.insert_text(
            (72, y),
            "Undecodable glyph soup paragraph with ordinary words.",
            fontname="F0",
            fontsize=12,
        )
        y += 20
    data = doc.tobytes()
    doc.close()
    doc = pymupdf.open("pdf", data)
    for xref in range(1, doc.xref_length()):
        if doc.xref_get_key(xref, "ToUnicode")[0] != "null":
            doc.xref_set_key(xref, "ToUnicode", "null")
    return _finish(doc)


def rotated_pdf() -> bytes:
    """A text page displayed turned by 90 degrees (/Rotate 90), as scanners' PDFs often are."""
    doc = pymupdf.open()
    page = _new_page(doc)
    page.insert_textbox(pymupdf.Rect(72, 72, 540, 400), LEFT_COLUMN, fontsize=11)
    page.set_rotation(90)
    return _finish(doc)


def mixed_pdf() -> bytes:
    """Five pages for auto routing: born-digital, scan, born-digital two columns, scan with an
    invisible OCR layer, blank."""
    doc = pymupdf.open()
    _add_born_digital(doc)
    _add_scan(doc)
    _add_two_columns(doc)
    _add_scan(doc, layer="matching")
    _new_page(doc)
    return _finish(doc)


#: The running title of :func:`furniture_pdf`'s pages.
RUNNING_TITLE = "Hydrology of the Upper Creek: Annual Survey"


def furniture_pdf(pages: int = 4) -> bytes:
    """``pages`` pages of a report with a running title in the top margin (left on even pages,
    right on odd ones, as books set it), the page number in the bottom margin, a numbered
    section heading, body text, and a one-line code listing in Courier set off by space, the
    way LaTeX guides show a command."""
    doc = pymupdf.open()
    for i in range(pages):
        page = _new_page(doc)
        x = 54 if i % 2 else WIDTH - 54 - 230
        page.insert_text((x, 40), RUNNING_TITLE, fontsize=9)
        page.insert_text((WIDTH / 2 - 4, HEIGHT - 30), str(i + 1), fontsize=9)
        page.insert_htmlbox(
            pymupdf.Rect(54, 70, WIDTH - 54, HEIGHT - 70),
            f"<h2>{i + 1} Gauge Readings Part {i + 1}</h2><p>{_PARA * 3}</p>"
            f"<p style='font-family: monospace; margin-left: 30px'>\\documentclass{{report}}</p>"
            f"<p>{_PARA * 4}</p>",
            css=_CSS,
        )
    return _finish(doc)
