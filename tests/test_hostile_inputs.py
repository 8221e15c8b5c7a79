"""The hostile-input sweep (issue 18): what a careless or hostile user tries on the CLI, and the
outcome each must keep: exit code, the message on stderr, and what is (not) left on disk."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest

from deepocr_loaders import cli
from deepocr_loaders.cli import EXIT_FILE_ERROR, EXIT_OK, EXIT_USAGE, main

RECORDED = ["--engine", "recorded", "-E", 'outputs=["# Page one\\n\\nSome text."]']


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPOCR_CACHE", str(tmp_path / "cache.sqlite"))


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    return _pdf(tmp_path / "in" / "doc.pdf", "A sentence about alder creek discharge. " * 6)


def _pdf(path: Path, text: str) -> Path:
    doc = pymupdf.open()
    doc.new_page(width=400, height=400).insert_textbox(pymupdf.Rect(30, 30, 370, 370), text)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc.save(path)
    return path


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file was converted before the options were checked")

    monkeypatch.setattr(cli, "_convert", refuse)
    monkeypatch.setattr(cli, "_ingest_one", refuse)


# -- bad options: exit 2, one line naming the option, before any work ---------------------------

BAD_OPTIONS = [
    (["--max-tokens", "0"], "--max-tokens"),
    (["--max-tokens", "-3"], "--max-tokens"),
    (["--overlap-tokens", "500"], "--overlap-tokens"),
    (["--overlap-tokens", "-1"], "--overlap-tokens"),
    (["--min-tokens", "900"], "--min-tokens"),
    (["--table-max-tokens", "0"], "--table-max-tokens"),
    (["-E", "bogus=1"], "-E bogus=1"),
    (["--engine", "text-layer", "-E", "bogus=1"], "-E bogus=1"),
    (["--engine", "recorded"], "-E outputs="),
    (["--engine", "no-such-engine"], "--engine no-such-engine"),
    (["--engine", "text-layer", "--model", "some/model"], "--model"),
    (["--dpi", "-5"], "--dpi"),
    (["--dpi", "0"], "--dpi"),
    (["--dpi", "nan"], "--dpi"),
    (["--dpi", "inf"], "--dpi"),
]


@pytest.mark.parametrize(
    ("command", "options", "named"),
    [
        (command, options, named)
        for command in ("chunk", "ingest", "convert")
        for options, named in BAD_OPTIONS
        if command != "convert" or "-tokens" not in options[0]  # convert does not chunk
    ],
)
def test_bad_option_is_a_usage_error(
    command: str,
    options: list[str],
    named: str,
    pdf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _no_work(monkeypatch)
    out = tmp_path / ("out" if command == "convert" else "out.jsonl")
    if command != "convert":
        out.write_text("previous\n", encoding="utf-8")
    target = str(pdf.parent) if command == "ingest" else str(pdf)
    assert main([command, target, "-o", str(out), "-q", *options]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("deepocr: ")
    assert named in err and "Traceback" not in err
    if command != "convert":
        assert out.read_text(encoding="utf-8") == "previous\n"
    else:
        assert not out.exists()  # nothing made before the options were checked


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["ingest", "{pdf}"], "doc.pdf: not a folder"),
        (["ingest", "{in}", "--workers", "0"], "--workers"),
        (["ingest", "{in}", "--ocr-actors", "0"], "--ocr-actors"),
        (["ingest", "{in}", "--gpus-per-actor", "-1"], "--gpus-per-actor"),
        (["inspect", "{pdf}", "--dpi", "nan"], "--dpi"),
        (["inspect", "{pdf}", "--chunks", "--max-tokens", "0"], "--max-tokens"),
        (["demo", "--max-tokens", "0"], "--max-tokens"),
    ],
)
def test_other_bad_options_are_usage_errors(
    argv: list[str], named: str, pdf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(**{"in": pdf.parent, "pdf": pdf}) for a in argv]
    out = ["-o", str(tmp_path / ("o.jsonl" if argv[0] == "ingest" else "o"))]
    assert main([*argv, *out, "-q"] if argv[0] != "demo" else [*argv, *out]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and named in err


@pytest.mark.parametrize("command", ["chunk", "ingest", "convert", "inspect"])
def test_unwritable_output_is_a_usage_error(
    command: str,
    pdf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _no_work(monkeypatch)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    target = str(pdf.parent) if command == "ingest" else str(pdf)
    out = blocker / ("x.jsonl" if command in ("chunk", "ingest") else "folder")
    assert main([command, target, "-o", str(out), "-q"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"-o {out}: cannot write there" in err and len(err.strip().splitlines()) == 1


def test_output_that_is_a_folder_is_a_usage_error(
    pdf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["chunk", str(pdf), "-o", str(tmp_path), "-q"]) == EXIT_USAGE
    assert "is a folder" in capsys.readouterr().err


def test_good_options_still_work(pdf: Path, tmp_path: Path) -> None:
    out = tmp_path / "ok.jsonl"
    argv = ["chunk", str(pdf), "-o", str(out), "-q", "--dpi", "72", "--overlap-tokens", "10"]
    assert main([*argv, *RECORDED]) == EXIT_OK
    assert [json.loads(x)["text"] for x in out.read_text().splitlines()] == [
        "# Page one\n\nSome text."
    ]


# -- outputs: never collide, never half-written -------------------------------------------------


def test_same_name_in_two_folders_gives_two_outputs(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        _pdf(tmp_path / "kb" / folder / "report.pdf", f"From folder {folder}.")
    out = tmp_path / "out"
    assert main(["convert", str(tmp_path / "kb"), "-o", str(out), "-q"]) == EXIT_OK
    assert "folder a" in (out / "a" / "report.md").read_text(encoding="utf-8")
    assert "folder b" in (out / "b" / "report.md").read_text(encoding="utf-8")


def test_failed_run_keeps_previous_jsonl(
    pdf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n", encoding="utf-8")

    def crash(*args: object) -> list[dict[str, object]]:
        raise MemoryError

    monkeypatch.setattr(cli, "_chunk_dicts", crash)
    with pytest.raises(MemoryError):
        main(["chunk", str(pdf), "-o", str(out), "-q"])
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# -- what is skipped or failed is said, once ----------------------------------------------------


@pytest.mark.parametrize("command", ["convert", "chunk", "ingest"])
def test_symlink_loops_and_broken_links_are_reported(
    command: str, pdf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = pdf.parent
    (folder / "loop.pdf").symlink_to("loop.pdf")
    (folder / "gone.pdf").symlink_to("missing.pdf")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to("..")
    out = tmp_path / ("out" if command == "convert" else "out.jsonl")
    assert main([command, str(folder), "-o", str(out), "-q"]) == EXIT_OK
    err = capsys.readouterr().err
    assert f"skipped {folder / 'loop.pdf'}: symlink loop" in err
    assert f"skipped {folder / 'gone.pdf'}: broken symlink" in err
    assert f"skipped {folder / 'sub' / 'up'}: symlink to a folder, not followed" in err
    assert "1 file(s) converted, 0 failed, 0 page(s) not ok, 3 skipped" in err


@pytest.mark.parametrize("mode", ["warn", "skip", "raise"])
def test_each_file_error_is_printed_once(
    mode: str, pdf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (pdf.parent / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    out = tmp_path / "out.jsonl"
    code = main(["ingest", str(pdf.parent), "-o", str(out), "-q", "--on-error", mode])
    assert code == EXIT_FILE_ERROR
    err = capsys.readouterr().err
    assert err.count("broken.pdf") == 1
    assert "1 failed" in err


# -- a damaged page cache -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage", [b"this is not a database\n" * 50, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_corrupt_cache_is_set_aside_with_one_warning(
    garbage: bytes, pdf: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from deepocr_loaders import PageCache

    cache = tmp_path / "pages.sqlite"
    cache.write_bytes(garbage)
    pdf2 = _pdf(pdf.parent / "doc2.pdf", "Another document with its own text. " * 5)
    argv = ["convert", str(pdf.parent), "-o", str(tmp_path / "out"), "-q", "--cache", str(cache)]
    assert main(argv) == EXIT_OK
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and f"page cache {cache} is damaged" in warned[0]
    assert "started a fresh cache" in warned[0]
    aside = list(tmp_path.glob("pages.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert len(PageCache(cache)) == 2  # the fresh cache holds both files' pages
    assert pdf2.exists()
    caplog.clear()
    assert main(argv) == EXIT_OK  # and is used without a word next time
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with sqlite3.connect(cache) as conn:
        assert conn.execute("SELECT COUNT(*) FROM pages").fetchone()[0] == 2


def test_corrupt_cache_warning_reaches_stderr_without_v(pdf: Path, tmp_path: Path) -> None:
    cache = tmp_path / "pages.sqlite"
    cache.write_bytes(b"garbage" * 100)
    argv = ["chunk", str(pdf), "-o", str(tmp_path / "o.jsonl"), "-q", "--cache", str(cache)]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [sys.executable, "-m", "deepocr_loaders.cli", *argv],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    assert proc.stderr.count("is damaged (not an SQLite database): moved it to") == 1
    assert "Traceback" not in proc.stderr
