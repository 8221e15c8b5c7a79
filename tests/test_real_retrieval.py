"""The real-document retrieval benchmark (``benchmarks/real_retrieval.py``, issue #17): its
question file's structure, the package fetch (offline, on a package built here), the answer
matching, the embedding cache and the variants of our chunks it measures."""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import tarfile
from collections import Counter
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from chunk_docs import blk, doc, heading, para
from test_benchmark_smoke import load_script

from deepocr_loaders import BlockKind


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("real_retrieval", "real_retrieval_bench")


@pytest.fixture(scope="module")
def real_docs(bench: ModuleType) -> ModuleType:
    return bench.real_docs


def test_question_file_covers_the_issue(real_docs: ModuleType) -> None:
    questions = real_docs.load_questions()
    # The issue: at least 150 questions over at least 10 real PDFs of different kinds.
    assert len(questions) >= 150
    per_pdf = Counter(q.pdf for q in questions)
    assert set(per_pdf) == {p.name for p in real_docs.PDFS} and len(per_pdf) >= 10
    assert min(per_pdf.values()) >= 5
    per_type = Counter(q.type for q in questions)
    assert set(per_type) == set(real_docs.TYPES)
    for kind in ("table", "caption", "identifier", "definition", "acknowledgement"):
        assert per_type[kind] >= 10, kind
    for q in questions:
        assert q.question.endswith("?") and len(q.answer.strip()) >= 3, q.id
        assert q.id.startswith(q.pdf + "-"), q.id


def test_every_pdf_is_pinned(real_docs: ModuleType) -> None:
    for pdf in real_docs.PDFS:
        assert len(pdf.sha256) == 64 and len(pdf.deb.sha256) == 64, pdf.name
        assert pdf.deb.url.startswith(real_docs.POOL) and pdf.deb.version in pdf.deb.url
        assert pdf.member.endswith((".pdf", ".pdf.gz")) and pdf.licence


def test_answers_are_on_their_pages(real_docs: ModuleType) -> None:
    """Every answer printed on its page; needs the PDFs, which the benchmark downloads (about
    60 MB of packages): skipped until a run of the benchmark has fetched them."""
    if not all(real_docs._verified(p) for p in real_docs.PDFS):
        pytest.skip("PDFs not fetched: run benchmarks/real_retrieval.py --check-only first")
    questions = real_docs.load_questions()
    assert real_docs.check_answers(questions, {p.name: p.path for p in real_docs.PDFS}) == []


def test_a_wrong_page_or_answer_is_reported(real_docs: ModuleType, tmp_path: Path) -> None:
    import pymupdf

    pdf = tmp_path / "two.pdf"
    with pymupdf.open() as out:
        # (The base-14 font has no ligatures or curly quotes; the answer has them.)
        for text in ("The first page\nsays 'hello'.", "The second page says goodbye."):
            out.new_page().insert_text((72, 72), text)
        out.save(pdf)
    q = real_docs.RealQuestion
    questions = [
        q("t-1", "two", "passage", "What does page one say?", "ﬁrst page says ‘hello’", 0),
        q("t-2", "two", "passage", "What does page two say?", "says goodbye", 0),
        q("t-3", "two", "passage", "Is there a page three?", "nothing", 5),
    ]
    problems = real_docs.check_answers(questions, {"two": pdf})
    assert [p.split(":")[0] for p in problems] == ["t-2", "t-3"]


def test_match_key_ignores_what_markdown_and_text_layers_change(real_docs: ModuleType) -> None:
    key = real_docs.match_key
    # Markdown's code ticks, a ligature, a line break and typographic quotes.
    assert key("`\\cmidrule` s and the ﬁrst\nrule ‘here’") == key(
        "\\cmidrules and the first rule 'here'"
    )
    assert key("<sup>5</sup>This is a **change**") == key("5 This is a change")
    assert key("0.52") != key("0.53")


def _deb(files: dict[str, bytes]) -> bytes:
    """A minimal ``.deb``: an ``ar`` archive with a ``data.tar.xz`` holding ``files``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    members = [(b"debian-binary", b"2.0\n"), (b"data.tar.xz", lzma.compress(buf.getvalue()))]
    out = bytearray(b"!<arch>\n")
    for name, data in members:
        header = name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) * 2 + b"100644".ljust(8)
        out += header + str(len(data)).encode().ljust(10) + b"`\n" + data
        out += b"\n" if len(data) % 2 else b""
    return bytes(out)


def test_fetch_reads_pdfs_out_of_a_package(
    real_docs: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, packed = b"%PDF-1.4 plain", b"%PDF-1.4 gzipped"
    deb = _deb({"usr/share/doc/x/a.pdf": plain, "usr/share/doc/x/b.pdf.gz": gzip.compress(packed)})
    sha = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    source = real_docs.DebSource("x-doc", "1.0-1", "x/x/x-doc_1.0-1_all.deb", sha(deb))
    pdfs = (
        real_docs.RealPdf("a", "manual", source, "usr/share/doc/x/a.pdf", sha(plain), "MIT"),
        real_docs.RealPdf("b", "paper", source, "usr/share/doc/x/b.pdf.gz", sha(packed), "MIT"),
    )
    monkeypatch.setattr(real_docs, "CACHE", tmp_path)
    monkeypatch.setattr(real_docs, "PDFS", pdfs)
    # The package is already downloaded: nothing touches the network.
    (tmp_path / "debs").mkdir()
    (tmp_path / "debs" / "x-doc_1.0-1_all.deb").write_bytes(deb)
    assert [p.path.read_bytes() for p in real_docs.fetch_pdfs()] == [plain, packed]
    assert not (tmp_path / "debs" / "x-doc_1.0-1_all.deb").exists()  # removed once read
    # A PDF that does not match its pinned hash is refused.
    bad = real_docs.RealPdf("c", "form", source, "usr/share/doc/x/a.pdf", "0" * 64, "MIT")
    monkeypatch.setattr(real_docs, "PDFS", (bad,))
    (tmp_path / "debs" / "x-doc_1.0-1_all.deb").write_bytes(deb)
    with pytest.raises(ValueError, match="sha256"):
        real_docs.fetch_pdfs()


def test_embedding_cache_embeds_each_text_once(bench: ModuleType, tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts])

    cache = bench.EmbeddingCache(encode, tmp_path / "e.npz")
    first = cache(["aa", "b", "aa"])
    assert calls == [["aa", "b"]] and first[:, 0].tolist() == [2, 1, 2]
    cache.save()
    again = bench.EmbeddingCache(encode, tmp_path / "e.npz")
    assert again(["b", "ccc"])[:, 0].tolist() == [1, 3]
    assert calls[-1] == ["ccc"]  # "b" came from the file


def test_embedding_cache_keeps_digests_that_end_in_nul(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # numpy's bytes type drops trailing NULs: a digest ending in one must survive a reload.
    monkeypatch.setattr(
        bench.EmbeddingCache, "_key", staticmethod(lambda t: t.encode().ljust(20, b"\0"))
    )
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.ones((len(texts), 2))

    first = bench.EmbeddingCache(encode, tmp_path / "e.npz")
    first(["x", "y"])
    first.save()
    second = bench.EmbeddingCache(encode, tmp_path / "e.npz")
    second(["x", "y", "z"])
    second.save()
    assert calls == [["x", "y"], ["z"]]
    assert len(bench.EmbeddingCache(encode, tmp_path / "e.npz").vectors) == 3


@pytest.fixture()
def corpus(bench: ModuleType) -> list:
    blocks = [
        heading("Booktabs manual", 1),
        heading("Rules", 2, y=110),
        para("Use `\\toprule` first. " * 3, y=140),
        blk(BlockKind.FIGURE, "", (72, 200, 540, 300)),
        blk(BlockKind.CAPTION, "Figure 1: A ruled table", (72, 305, 540, 320)),
        para("The rules are **heavier** at the top and the bottom. " * 2, y=330),
    ]
    return [bench.CorpusDoc("m", Path("m.pdf"), doc([blocks]))]


def test_variants_change_only_the_embedded_text(bench: ModuleType, corpus: list) -> None:
    count = lambda text: len(text.split())  # noqa: E731
    made = {
        mode: bench.ours_variant(corpus, count, 200, bench.Variant(mode, headings=mode))
        for mode in ("path", "last", "none", "untitled")
    }
    default = bench.ours(corpus, count, 200)
    assert [c.embed for c in made["path"]] == [c.embed for c in default]
    first = {mode: chunks[0].embed for mode, chunks in made.items()}
    assert first["path"].startswith("Booktabs manual > Rules\n\n")
    assert first["last"].startswith("Rules\n\n")
    assert first["untitled"].startswith("Rules\n\n")
    # contextualized_text already leaves out the heading lines the path names, so no variant
    # repeats them: "none" is the bare body.
    # The chunker embeds plain text: the code ticks and bold markers are out, the words in.
    assert first["none"].startswith("Use \\toprule first.")
    assert "# Rules" not in first["path"]
    assert all(c.text == d.text for c, d in zip(made["none"], default, strict=True))
    assert "`" not in first["path"] and "**" not in "".join(c.embed for c in default)
    assert "`\\toprule`" in default[0].text  # the chunk's text keeps its Markdown
    marked = bench.ours_variant(corpus, count, 200, bench.Variant("m", markup="markdown"))
    assert marked[0].embed.startswith("Booktabs manual > Rules\n\nUse `\\toprule` first.")
    assert "**heavier**" in "".join(c.embed for c in marked)
    assert [c.text for c in marked] == [c.text for c in default]


def test_figures_alone_gives_the_caption_its_own_chunk(bench: ModuleType, corpus: list) -> None:
    count = lambda text: len(text.split())  # noqa: E731
    packed = bench.ours_variant(corpus, count, 200, bench.Variant("packed"))
    alone = bench.ours_variant(corpus, count, 200, bench.Variant("alone", figures="alone"))
    assert len(alone) > len(packed)
    caption = [c for c in alone if "Figure 1: A ruled table" in c.text]
    assert len(caption) == 1 and "heavier" not in caption[0].text
