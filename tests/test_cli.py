"""The CLI end to end on generated PDFs: demo, convert, chunk, ingest, inspect, parse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pymupdf
import pytest

from deepocr_loaders import BlockKind, Document
from deepocr_loaders.cli import EXIT_FILE_ERROR, EXIT_OK, EXIT_PAGES_NOT_OK, main
from deepocr_loaders.samples import sample_grounded_output


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPOCR_CACHE", str(tmp_path / "cache.sqlite"))


def _text_pdf(path: Path, pages: int = 2) -> Path:
    pdf = pymupdf.open()
    for i in range(pages):
        page = pdf.new_page(width=612, height=792)
        page.insert_text((72, 90), f"Chapter {i + 1}", fontsize=20)
        page.insert_textbox(
            pymupdf.Rect(72, 120, 540, 400),
            f"Body text of page {i + 1} about alder creek discharge measurements. " * 6,
            fontsize=11,
        )
    pdf.save(path)
    return path


def test_demo_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == EXIT_OK
    md = (tmp_path / "sample.md").read_text(encoding="utf-8")
    assert "Spring Survey of the Alder Creek Watershed" in md
    doc = Document.from_json((tmp_path / "sample.json").read_text(encoding="utf-8"))
    assert doc.pages[0].engine == "text-layer"
    chunks = [json.loads(x) for x in (tmp_path / "sample.chunks.jsonl").read_text().splitlines()]
    assert chunks and all(c["metadata"]["boxes"] for c in chunks)
    assert (tmp_path / "inspect" / "index.html").exists()
    assert (tmp_path / "inspect" / "page-1.png").exists()
    # The recorded OCR output of the same page: its boxes sit on the text drawn in the PDF.
    ocr = Document.from_json((tmp_path / "sample.recorded-ocr.json").read_text(encoding="utf-8"))
    assert len(ocr.pages[0].blocks) == 12
    title = next(b for b in ocr.pages[0].blocks if b.kind is BlockKind.TITLE)
    pdf = pymupdf.open(tmp_path / "sample.pdf")
    assert "Alder Creek Watershed" in pdf[0].get_text("text", clip=title.bbox.as_tuple())
    assert "chunk(s)" in capsys.readouterr().out


def test_convert_writes_markdown_and_json(tmp_path: Path) -> None:
    pdf = _text_pdf(tmp_path / "book.pdf")
    out = tmp_path / "out"
    assert main(["convert", str(pdf), "-o", str(out), "-q", "--engine", "text-layer"]) == EXIT_OK
    assert "Chapter 2" in (out / "book.md").read_text(encoding="utf-8")
    doc = Document.from_json((out / "book.json").read_text(encoding="utf-8"))
    assert [p.index for p in doc.pages] == [0, 1]


def test_convert_crops_figures(tmp_path: Path) -> None:
    from deepocr_loaders.cli import make_sample_pdf

    make_sample_pdf(tmp_path / "sample.pdf")
    out = tmp_path / "out"
    args = ["convert", str(tmp_path / "sample.pdf"), "-o", str(out), "-q", "--crop-figures"]
    assert main(args) == EXIT_OK
    crops = sorted(out.glob("sample-p1-*.png"))
    assert crops
    assert f"]({crops[0].name})" in (out / "sample.md").read_text(encoding="utf-8")


def test_chunk_to_jsonl_and_page_range(tmp_path: Path) -> None:
    pdf = _text_pdf(tmp_path / "book.pdf", pages=3)
    out = tmp_path / "chunks.jsonl"
    assert main(["chunk", str(pdf), "-o", str(out), "-q", "--pages", "2-3"]) == EXIT_OK
    chunks = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert chunks
    assert {c["metadata"]["page_start"] for c in chunks} <= {1, 2}
    assert len({c["id"] for c in chunks}) == len(chunks)


def test_chunk_options_reach_the_chunker() -> None:
    from deepocr_loaders.cli import _chunker, build_parser

    argv = ["chunk", "x.pdf", "--max-tokens", "200", "--table-max-tokens", "350"]
    chunker = _chunker(build_parser().parse_args([*argv, "--table-embedding", "rows"]))
    assert (chunker.max_tokens, chunker.table_max_tokens) == (200, 350)
    assert chunker.table_embedding == "rows"
    default = _chunker(build_parser().parse_args(["chunk", "x.pdf"]))
    assert (default.table_max_tokens, default.table_embedding) == (400, "auto")
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--table-embedding", "cells"])


def test_ingest_folder_reports_bad_file_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "kb"
    (folder / "sub").mkdir(parents=True)
    _text_pdf(folder / "a.pdf")
    _text_pdf(folder / "sub" / "b.pdf")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    out = tmp_path / "kb.jsonl"
    code = main(["ingest", str(folder), "-o", str(out), "-q", "--workers", "2"])
    assert code == EXIT_FILE_ERROR
    err = capsys.readouterr().err
    assert "broken.pdf" in err and "2 file(s) converted, 1 failed" in err
    sources = {json.loads(x)["metadata"]["source"] for x in out.read_text().splitlines()}
    assert sources == {str(folder / "a.pdf"), str(folder / "sub" / "b.pdf")}
    # A second run gives the same chunk ids (safe upserts, no duplicates).
    out2 = tmp_path / "kb2.jsonl"
    main(["ingest", str(folder), "-o", str(out2), "-q"])
    ids = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert sorted(ids) == sorted(json.loads(x)["id"] for x in out2.read_text().splitlines())


def test_pages_that_need_ocr_give_exit_code_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A page that is only a picture of text needs OCR; no OCR engine is usable here.
    pdf = pymupdf.open()
    page = pdf.new_page(width=300, height=200)
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 300, 200), 0)
    pix.set_rect(pix.irect, (255, 255, 255))
    page.insert_image(page.rect, pixmap=pix)
    pdf.save(tmp_path / "scan.pdf")
    code = main(["convert", str(tmp_path / "scan.pdf"), "-o", str(tmp_path / "o"), "-q"])
    assert code == EXIT_PAGES_NOT_OK
    assert "needs_ocr" in capsys.readouterr().err


def test_inspect_draws_chunks(tmp_path: Path) -> None:
    pdf = _text_pdf(tmp_path / "book.pdf")
    out = tmp_path / "insp"
    assert main(["inspect", str(pdf), "--chunks", "-o", str(out), "-q"]) == EXIT_OK
    page_html = (out / "index.html").read_text(encoding="utf-8")
    assert 'class="box"' in page_html and "page-1.png" in page_html
    # Each chunk says its kind and printed page, and links to its neighbours and the contents.
    chunks = re.findall(r'<section id="chunk-(\d+)">(.*?)</section>', page_html, re.S)
    assert chunks and [int(n) for n, _ in chunks] == list(range(1, len(chunks) + 1))
    first = chunks[0][1]
    assert re.search(r'class="kind">(text|table|figure|equation|mixed)<', first)
    assert 'class="where">p. 1<' in first and 'href="#top"' in first
    if len(chunks) > 1:
        assert 'href="#chunk-2"' in first and 'href="#chunk-1"' in chunks[1][1]
    assert page_html.count('<li><a href="#chunk-') == len(chunks)


def test_parse_with_pdf_and_without(tmp_path: Path) -> None:
    raw = tmp_path / "page.txt"
    raw.write_text(sample_grounded_output(), encoding="utf-8")
    assert main(["parse", str(raw), "--page-size", "595x842", "-o", str(tmp_path / "a")]) == 0
    doc = Document.from_json((tmp_path / "a" / "page.json").read_text(encoding="utf-8"))
    assert (doc.pages[0].width, doc.pages[0].height) == (595, 842)
    pdf = pymupdf.open()
    pdf.new_page(width=300, height=400)
    pdf.save(tmp_path / "one.pdf")
    args = ["parse", str(raw), "--pdf", str(tmp_path / "one.pdf"), "-o", str(tmp_path / "b")]
    assert main(args) == 0
    doc = Document.from_json((tmp_path / "b" / "page.json").read_text(encoding="utf-8"))
    assert (doc.pages[0].width, doc.pages[0].height) == (300, 400)


def test_errors_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "page.txt"
    raw.write_text("x", encoding="utf-8")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf at all")
    assert main(["parse", str(raw), "--pdf", str(bad)]) == EXIT_FILE_ERROR
    assert "bad.pdf" in capsys.readouterr().err
    assert main(["parse", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert main(["convert", str(bad), "-o", str(tmp_path / "o"), "-q"]) == EXIT_FILE_ERROR
    assert "bad.pdf" in capsys.readouterr().err


def test_convert_files_that_share_a_name_keep_their_relative_paths(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    for folder in ("a", "b"):
        (kb / folder).mkdir(parents=True)
        pdf = pymupdf.open()
        pdf.new_page().insert_text((72, 72), f"Written in folder {folder}.")
        pdf.save(kb / folder / "report.pdf")
    out = tmp_path / "out"
    assert main(["convert", str(kb), "-o", str(out), "-q", "--engine", "text-layer"]) == EXIT_OK
    assert "folder a" in (out / "a" / "report.md").read_text(encoding="utf-8")
    assert "folder b" in (out / "b" / "report.md").read_text(encoding="utf-8")
    assert not (out / "report.md").exists()
    # The same two files named one by one.
    out2 = tmp_path / "out2"
    files = [str(kb / "a" / "report.pdf"), str(kb / "b" / "report.pdf")]
    assert main(["convert", *files, "-o", str(out2), "-q", "--engine", "text-layer"]) == EXIT_OK
    assert sorted(p.relative_to(out2).as_posix() for p in out2.rglob("*.md")) == [
        "a/report.md",
        "b/report.md",
    ]


def test_output_stems_never_collide(tmp_path: Path) -> None:
    from deepocr_loaders.cli import output_stems

    assert output_stems([tmp_path / "book.pdf"]) == {tmp_path / "book.pdf": Path("book")}
    side = [tmp_path / "x.pdf", tmp_path / "y.pdf"]
    assert list(output_stems(side).values()) == [Path("x"), Path("y")]
    clash = [tmp_path / "report.pdf", tmp_path / "report.png", tmp_path / "sub" / "report.pdf"]
    stems = output_stems(clash)
    assert list(stems.values()) == [Path("report.pdf"), Path("report.png"), Path("sub/report")]
    assert len(set(output_stems([Path("a.pdf"), tmp_path / "a.pdf"]).values())) == 2
