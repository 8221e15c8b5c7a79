"""Distributed ingestion on a local Ray cluster (CPU): same chunks as the single-process path,
bad files and failed pages reported, and a run killed half way resumes without redoing pages."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pymupdf
import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
parquet = pytest.importorskip("pyarrow.parquet")  # comes with ray[data]

from pdf_factory import born_digital_pdf, two_column_pdf  # noqa: E402

from chunking import Chunk, LayoutChunker  # noqa: E402
from deepocr_loaders import DeepOCRError, PageCache, convert  # noqa: E402
from deepocr_loaders.cli import EXIT_FILE_ERROR, main  # noqa: E402
from deepocr_loaders.distributed import ingest_with_ray  # noqa: E402
from deepocr_loaders.document import Page  # noqa: E402
from deepocr_loaders.engines import PageInput, Task  # noqa: E402
from deepocr_loaders.engines.recorded import RecordedEngine  # noqa: E402

pytestmark = pytest.mark.ray

# Recorded grounded output for pages 0 and 1; page 2 has none, so the engine fails it.
OUTPUTS = {
    i: (
        f"<|ref|>title<|/ref|><|det|>[[60,50,940,95]]<|/det|>\n# Part {i + 1}\n\n"
        f"<|ref|>text<|/ref|><|det|>[[60,120,940,400]]<|/det|>\n"
        + f"Gauge readings for stretch {i + 1} were taken at dawn and at dusk. "
        * 5
    )
    for i in range(2)
}


class CountingEngine(RecordedEngine):
    """The recorded engine, logging every page it is given to a file (actors are separate
    processes). With ``kill_flag`` set and that file present, the process dies (``os._exit``,
    like a killed node) when it reaches its ``kill_at``-th page, once."""

    def __init__(self, log_path: str, kill_flag: str = "", kill_at: int = 0) -> None:
        super().__init__(OUTPUTS)
        self.log_path, self.kill_flag, self.kill_at = log_path, kill_flag, kill_at
        self.seen = 0

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        for inp in pages:
            self.seen += 1
            if self.kill_flag and self.seen >= self.kill_at and os.path.exists(self.kill_flag):
                os.remove(self.kill_flag)
                os._exit(1)
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"{Path(inp.source.name).name}:{inp.index}\n")
            yield from super().run([inp], task)


@pytest.fixture(scope="module", autouse=True)
def ray_cluster() -> Iterator[None]:
    # The test module is not importable in Ray's workers: ship the test engine by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    yield
    ray.shutdown()


def _pdf(path: Path, pages: int) -> Path:
    pdf = pymupdf.open()
    for i in range(pages):
        pdf.new_page(width=612, height=792).insert_text((72, 90), f"Page {i + 1}", fontsize=14)
    pdf.save(path)
    return path


def _logged(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def _key(chunk: Chunk) -> tuple[str, str, str]:
    return chunk.id, chunk.text, json.dumps(chunk.metadata, sort_keys=True)


def test_same_chunks_as_single_process_and_bad_file_reported(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    (kb / "sub").mkdir(parents=True)
    (kb / "report.pdf").write_bytes(born_digital_pdf())
    (kb / "sub" / "columns.pdf").write_bytes(two_column_pdf())
    (kb / "broken.pdf").write_bytes(b"%PDF-1.4\n garbage")
    chunker = LayoutChunker(max_tokens=120)
    got: list[Chunk] = []
    report = ingest_with_ray(
        kb, tmp_path / "out", engine="text-layer", chunker=chunker, sink=got.extend, cache=False
    )

    expected: list[Chunk] = []
    for name in ("report.pdf", "sub/columns.pdf"):
        path = str(kb / name)
        expected += chunker.chunk(convert(path, engine="text-layer", name=path))
    assert len(expected) > 4
    assert sorted(map(_key, got)) == sorted(map(_key, expected))
    # A document's chunks reach the sink together and in order.
    sources = [c.metadata["source"] for c in got]
    assert sources == sorted(sources, key=sources.index)
    for source in set(sources):
        indices = [c.metadata["chunk_index"] for c in got if c.metadata["source"] == source]
        assert indices == list(range(len(indices)))

    # The JSONL files hold the same chunks with flat (scalar-only) metadata.
    lines = [
        json.loads(x) for f in (tmp_path / "out").iterdir() for x in f.read_text().split("\n") if x
    ]
    assert sorted(
        (x["id"], x["text"], json.dumps(x["metadata"], sort_keys=True)) for x in lines
    ) == sorted((c.id, c.text, json.dumps(c.flat_metadata(), sort_keys=True)) for c in expected)

    assert (report.documents, report.pages, report.pages_ok, report.chunks) == (
        2,
        3,
        3,
        len(expected),
    )
    assert [p for p, _ in report.failed_files] == [str(kb / "broken.pdf")]
    assert (
        "broken.pdf" in report.failed_files[0][1]
        and "cannot be opened" in report.failed_files[0][1]
    )


def test_failed_page_kept_and_killed_run_resumes(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    for name in ("a", "b"):
        _pdf(kb / f"{name}.pdf", pages=3)
    log, flag, cache = tmp_path / "engine.log", tmp_path / "kill", tmp_path / "pages.sqlite"
    flag.touch()
    engine = CountingEngine(str(log), kill_flag=str(flag), kill_at=4)
    got: list[Chunk] = []
    # One actor, batches of 2 pages: the actor dies on its 4th page, after 3 pages finished.
    # Ray restarts it and retries the batch; the cache keeps the finished pages from rerunning.
    report = ingest_with_ray(kb, None, engine=engine, sink=got.extend, cache=cache, batch_size=2)
    assert not flag.exists(), "the kill never happened"
    first = _logged(log)
    # Every page reached the engine exactly once, the kill notwithstanding.
    assert sorted(first) == sorted(f"{n}.pdf:{i}" for n in "ab" for i in range(3))
    # Page 3 of each file has no recorded output: kept as failed, listed, not dropped.
    assert report.status_counts == {"ok": 4, "failed": 2}
    assert sorted(report.page_problems) == [
        f"{kb / n}.pdf, page 3: failed (no recorded output for page 3)" for n in "ab"
    ]
    assert {c.metadata["source"] for c in got} == {str(kb / "a.pdf"), str(kb / "b.pdf")}
    assert len(PageCache(cache)) == 4

    # A second run redoes no finished page: only the two failed ones go to the engine again.
    log.unlink()
    again: list[Chunk] = []
    out = tmp_path / "parquet"
    report2 = ingest_with_ray(
        kb,
        out,
        engine=CountingEngine(str(log)),
        sink=again.extend,
        cache=cache,
        batch_size=2,
        output_format="parquet",
    )
    assert sorted(_logged(log)) == ["a.pdf:2", "b.pdf:2"]
    assert report2.pages_from_cache == 4 and report2.pages == 6
    assert sorted(map(_key, again)) == sorted(map(_key, got))
    table = parquet.read_table(out)
    assert table.column_names == ["id", "text", "metadata"]
    flat = {c.id: c.flat_metadata() for c in got}
    assert {r["id"]: json.loads(r["metadata"]) for r in table.to_pylist()} == flat

    # resume=False redoes every page (and the cache stays as full as before).
    log.unlink()
    ingest_with_ray(kb, None, engine=CountingEngine(str(log)), sink=len, cache=cache, resume=False)
    assert sorted(_logged(log)) == sorted(f"{n}.pdf:{i}" for n in "ab" for i in range(3))
    assert len(PageCache(cache)) == 4


def test_cli_ray_matches_single_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPOCR_CACHE", str(tmp_path / "cache.sqlite"))
    kb = tmp_path / "kb"
    kb.mkdir()
    _pdf(kb / "a.pdf", pages=3)
    (kb / "empty.pdf").write_bytes(b"")
    outputs = json.dumps([OUTPUTS[0], OUTPUTS[1]])
    common = ["--engine", "recorded", "-E", f"outputs={outputs}", "-q", "--no-cache"]
    ray_out, plain_out = tmp_path / "ray.jsonl", tmp_path / "plain.jsonl"
    code = main(["ingest", str(kb), "-o", str(ray_out), "--ray", "--ocr-actors", "1", *common])
    ray_err = capsys.readouterr().err
    assert code == main(["ingest", str(kb), "-o", str(plain_out), *common]) == EXIT_FILE_ERROR
    plain_err = capsys.readouterr().err
    assert sorted(ray_out.read_text().splitlines()) == sorted(plain_out.read_text().splitlines())
    for err in (ray_err, plain_err):
        assert "empty.pdf" in err and "1 file(s) converted, 1 failed, 1 page(s) not ok" in err
        assert "a.pdf, page 3: failed" in err


def test_missing_output_and_sink_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="output folder"):
        ingest_with_ray(tmp_path, None)


def test_without_ray_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(DeepOCRError, match=r"pip install 'deepocr-loaders\[ray\]'"):
        ingest_with_ray(tmp_path, tmp_path / "out")
