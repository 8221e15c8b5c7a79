"""The per-page OCR-need detector on generated PDFs: each decision and its reason."""

from __future__ import annotations

import json
from collections.abc import Callable

import pdf_factory as factory
import pymupdf
import pytest

from deepocr_loaders.engines.ocr_need import (
    OcrDecision,
    OcrNeedDetector,
    OcrReason,
    detect_ocr_need,
)


def _decide(make: Callable[[], bytes], page: int = 0, **options: object) -> OcrDecision:
    with pymupdf.open("pdf", make()) as doc:
        return detect_ocr_need(doc[page], OcrNeedDetector(**options))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "page", "reason", "needs_ocr", "usable"),
    [
        (factory.born_digital_pdf, 0, OcrReason.TEXT_OK, False, True),
        (factory.born_digital_pdf, 1, OcrReason.TEXT_OK, False, True),
        (factory.blank_pdf, 0, OcrReason.BLANK, False, True),
        (factory.image_only_pdf, 0, OcrReason.NO_TEXT, True, False),
        (factory.invisible_layer_pdf, 0, OcrReason.INVISIBLE_TEXT, True, True),
        (factory.disagreeing_layer_pdf, 0, OcrReason.TEXT_DISAGREES, True, False),
        (factory.no_tounicode_pdf, 0, OcrReason.UNDECODABLE_TEXT, True, False),
    ],
)
def test_decisions(
    make: Callable[[], bytes], page: int, reason: OcrReason, needs_ocr: bool, usable: bool
) -> None:
    decision = _decide(make, page)
    assert decision.reason is reason
    assert decision.needs_ocr is needs_ocr
    assert decision.text_usable is usable
    assert decision.message


def test_undecodable_names_font_without_tounicode() -> None:
    decision = _decide(factory.no_tounicode_pdf)
    assert "ToUnicode" in decision.message
    assert decision.metrics["bad_chars"] == decision.metrics["chars"] > 0


def test_invisible_layer_measures_ink_agreement() -> None:
    matching = _decide(factory.invisible_layer_pdf)
    disagreeing = _decide(factory.disagreeing_layer_pdf)
    assert matching.metrics["ink_agreement"] == 1.0
    assert disagreeing.metrics["ink_agreement"] == 0.0
    assert matching.metrics["visible_chars"] == 0 < matching.metrics["invisible_chars"]


def test_trusted_invisible_layer_passes() -> None:
    decision = _decide(factory.invisible_layer_pdf, trust_invisible_text=True)
    assert (decision.reason, decision.needs_ocr) == (OcrReason.OCR_LAYER_TRUSTED, False)
    # Trust never extends to a layer that disagrees with the page.
    assert _decide(factory.disagreeing_layer_pdf, trust_invisible_text=True).needs_ocr


def test_image_covering_the_page_with_a_caption() -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_image(
        pymupdf.Rect(0, 0, 612, 700), pixmap=pymupdf.Pixmap(pymupdf.csRGB, (0, 0, 64, 64), 0)
    )
    page.insert_text((72, 740), "Figure 1: an aerial photograph of the survey area.", fontsize=11)
    decision = detect_ocr_need(page)
    assert (decision.reason, decision.needs_ocr) == (OcrReason.IMAGE_PAGE, True)
    assert decision.metrics["image_cover"] > 0.5
    # A background image under plenty of real text is not an image page.
    for i in range(30):
        page.insert_text(
            (72, 60 + i * 20), "Body text printed over a background picture.", fontsize=11
        )
    assert detect_ocr_need(page).reason is OcrReason.TEXT_OK


def test_forced_and_thresholds() -> None:
    forced = _decide(factory.born_digital_pdf, force=True)
    assert (forced.reason, forced.needs_ocr) == (OcrReason.FORCED, True)
    # Thresholds are honoured: tolerate any share of undecodable characters.
    lenient = _decide(factory.no_tounicode_pdf, bad_char_ratio=1.01)
    assert (lenient.reason, lenient.needs_ocr) == (OcrReason.TEXT_OK, False)


def test_decision_metadata_is_json() -> None:
    data = _decide(factory.invisible_layer_pdf).to_metadata()
    assert json.loads(json.dumps(data))["reason"] == "invisible_text"
    assert set(data) == {"needs_ocr", "reason", "message", "text_usable", "metrics"}
