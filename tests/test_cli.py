"""The CLI end to end: demo output files and the parse command."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from deepocr_loaders import BlockKind, Document
from deepocr_loaders.cli import main
from deepocr_loaders.samples import sample_grounded_output


def test_demo_writes_markdown_json_and_boxes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "sample.md").read_text(encoding="utf-8")
    assert md.startswith("Northwind Hydrology Group")
    assert "| AC-12 (outlet) | 2.31 | 7.96 | 3.48 |" in md
    doc = Document.from_json((tmp_path / "sample.json").read_text(encoding="utf-8"))
    assert doc.pages[0].width == 612 and len(doc.pages[0].blocks) == 12
    # The recorded boxes line up with the text drawn in the generated PDF.
    pdf = pymupdf.open(tmp_path / "sample.pdf")
    title = next(b for b in doc.pages[0].blocks if b.kind is BlockKind.TITLE)
    found = pdf[0].get_text("text", clip=pymupdf.Rect(*title.bbox.as_tuple()))
    assert "Alder Creek Watershed" in found
    assert (tmp_path / "sample.boxes.pdf").stat().st_size > 0
    assert "12 blocks" in capsys.readouterr().out


def test_parse_with_pdf_and_without(tmp_path: Path) -> None:
    raw = tmp_path / "page.txt"
    raw.write_text(sample_grounded_output(), encoding="utf-8")
    assert main(["parse", str(raw), "--page-size", "595x842", "-o", str(tmp_path / "a")]) == 0
    doc = Document.from_json((tmp_path / "a" / "page.json").read_text(encoding="utf-8"))
    assert (doc.pages[0].width, doc.pages[0].height) == (595, 842)
    pdf = pymupdf.open()
    pdf.new_page(width=300, height=400)
    pdf.save(tmp_path / "one.pdf")
    assert (
        main(["parse", str(raw), "--pdf", str(tmp_path / "one.pdf"), "-o", str(tmp_path / "b")])
        == 0
    )
    doc = Document.from_json((tmp_path / "b" / "page.json").read_text(encoding="utf-8"))
    assert (doc.pages[0].width, doc.pages[0].height) == (300, 400)


def test_parse_errors_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "page.txt"
    raw.write_text("x", encoding="utf-8")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf at all")
    assert main(["parse", str(raw), "--pdf", str(bad)]) == 1
    assert "bad.pdf" in capsys.readouterr().err
    assert main(["parse", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
