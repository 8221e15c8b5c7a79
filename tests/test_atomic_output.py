"""Every file output is written to a temporary file and renamed into place when complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pymupdf
import pytest

from deepocr_loaders import Document
from deepocr_loaders.atomic import atomic_write, write_bytes_atomic, write_text_atomic
from deepocr_loaders.cli import EXIT_OK, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPOCR_CACHE", str(tmp_path / "cache.sqlite"))


def _pdf(path: Path, text: str = "A sentence about alder creek discharge. " * 6) -> Path:
    pdf = pymupdf.open()
    pdf.new_page(width=400, height=400).insert_textbox(pymupdf.Rect(30, 30, 370, 370), text)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.save(path)
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


def test_exception_mid_write_keeps_the_previous_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("previous\n", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half a line")
        raise RuntimeError("crash")
    assert target.read_text(encoding="utf-8") == "previous\n"
    assert _leftovers(tmp_path) == []
    write_text_atomic(target, "new\n")
    assert target.read_text(encoding="utf-8") == "new\n" and _leftovers(tmp_path) == []
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_permissions_are_those_of_a_plain_open(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_text_atomic(tmp_path / "new.txt", "x")
    assert (tmp_path / "new.txt").stat().st_mode == plain.stat().st_mode
    os.chmod(plain, 0o640)
    write_text_atomic(plain, "y")  # an existing file keeps its mode
    assert plain.stat().st_mode & 0o777 == 0o640


def test_chunk_error_after_conversion_keeps_previous_jsonl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepocr_loaders import cli

    pdf = _pdf(tmp_path / "a.pdf")
    out = tmp_path / "chunks.jsonl"
    assert main(["chunk", str(pdf), "-o", str(out), "-q"]) == EXIT_OK
    before = out.read_text(encoding="utf-8")
    assert before

    def boom(doc: Document, args: object) -> list[dict[str, object]]:
        raise RuntimeError("chunker crashed")

    monkeypatch.setattr(cli, "_chunk_dicts", boom)
    for command in ("chunk", "ingest"):
        target = str(pdf) if command == "chunk" else str(tmp_path)
        with pytest.raises(RuntimeError, match="chunker crashed"):
            main([command, target, "-o", str(out), "-q"])
        assert out.read_text(encoding="utf-8") == before
        assert _leftovers(tmp_path) == []


def test_convert_error_mid_write_keeps_previous_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf = _pdf(tmp_path / "report.pdf")
    out = tmp_path / "out"
    assert main(["convert", str(pdf), "-o", str(out), "-q"]) == EXIT_OK
    before = (out / "report.json").read_text(encoding="utf-8")

    def unencodable(self: Document, **kwargs: object) -> str:
        return "{" + " " * 100_000 + "\ud800"  # fails while the file is being written

    monkeypatch.setattr(Document, "to_json", unencodable)
    with pytest.raises(UnicodeEncodeError):
        main(["convert", str(pdf), "-o", str(out), "-q"])
    assert (out / "report.json").read_text(encoding="utf-8") == before
    assert _leftovers(out) == []


@pytest.mark.parametrize("command", ["chunk", "ingest"])
def test_kill_9_mid_run_leaves_previous_output_intact(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "kb"
    for name in "abc":
        _pdf(folder / f"{name}.pdf", f"Document {name} says something. " * 5)
    out = tmp_path / "kb.jsonl"
    previous = "".join(json.dumps({"id": i}) + "\n" for i in range(120))
    out.write_text(previous, encoding="utf-8")
    # A run killed by SIGKILL right after its second document's chunks were written.
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from deepocr_loaders import cli
        real, seen = cli._chunk_dicts, []
        def chunk_then_die(doc, args):
            seen.append(doc)
            if len(seen) == 3:
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return real(doc, args)
        cli._chunk_dicts = chunk_then_die
        target = {str(folder)!r}
        inputs = [target] if {command!r} == "ingest" else sorted(
            os.path.join(target, n) for n in os.listdir(target))
        cli.main([{command!r}, *inputs, "-o", {str(out)!r}, "-q", "--no-cache"])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    assert out.read_text(encoding="utf-8") == previous
