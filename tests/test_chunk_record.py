"""Issue #16 end to end on a real PDF (PyMuPDF's text layer): the typed chunk record, the
LangChain and LlamaIndex metadata conventions, user keys through every splitter and parser, the
default page cache, streamed splitting, and citations drawn from a retrieved chunk."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pymupdf
import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from hash_embedding import HashEmbedding
from langchain_core.documents import Document as LCDocument
from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
from llama_index.core.readers.file.base import default_file_metadata_func
from llama_index.core.schema import MetadataMode
from pdf_factory import born_digital_pdf, spanning_table_pdf
from PIL import ImageChops

import deepocr_loaders as dl
from chunking import Chunk, ChunkerSettings, LayoutChunker
from deepocr_loaders.engines.text_layer import TextLayerEngine
from langchain_loader import DeepOCRLoader, LayoutTextSplitter
from llamaindex_reader import DeepOCRReader, LayoutNodeParser

INFO = {
    "title": "Quarterly Field Report",
    "author": "Survey Team",
    "creationDate": "D:20260115093000+01'00'",
}


def _pdf(path: Path, data: bytes, *, labels: bool = False) -> Path:
    """``data`` with PDF info fields and, with ``labels``, printed page labels iii, iv..."""
    pdf = pymupdf.open(stream=data, filetype="pdf")
    pdf.set_metadata({**pdf.metadata, **INFO})
    if labels:
        pdf.set_page_labels([{"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 3}])
    pdf.save(path)
    pdf.close()
    return path


@pytest.fixture()
def report(tmp_path: Path) -> Path:
    return _pdf(tmp_path / "report.pdf", born_digital_pdf(), labels=True)


def _chroma_ok(metadata: Mapping[str, Any]) -> None:
    """Chroma's documented rule for metadata: string keys, values str, int, float or bool."""
    for key, value in metadata.items():
        assert isinstance(key, str) and key, key
        assert isinstance(value, (str, int, float, bool)), (key, value)


# -- the record --------------------------------------------------------------------------------


def test_chunk_record_reads_by_attribute_and_round_trips(report: Path) -> None:
    doc = dl.convert(report, engine="text-layer")
    chunks = LayoutChunker(max_tokens=120).chunk(doc)
    assert chunks
    for chunk in chunks:
        assert chunk.pages and chunk.page_labels[0] in ("iii", "iv")
        assert {b.page for b in chunk.boxes} <= set(chunk.pages)
        assert chunk.page_start == chunk.pages[0] and chunk.headings == " > ".join(
            chunk.heading_path
        )
        assert chunk.metadata["boxes"] == [b.to_dict() for b in chunk.boxes]
        assert Chunk.from_dict(chunk.to_dict()) == chunk
        assert Chunk.from_dict({**chunk.to_dict(), "metadata": chunk.flat_metadata()}) == chunk


def test_one_settings_object_gives_the_same_chunks_everywhere(report: Path) -> None:
    settings = ChunkerSettings(max_tokens=90, table_max_tokens=60, table_embedding="keys")
    core = [c.id for c in LayoutChunker(settings=settings).chunk(dl.convert(report))]
    reader = DeepOCRReader(chunking=settings).load_data(report)
    pages = DeepOCRReader(mode="pages").load_data(report)
    parser = LayoutNodeParser(chunking=settings).get_nodes_from_documents(pages)
    lc_pages = list(DeepOCRLoader(report).lazy_load())
    splitter = LayoutTextSplitter(settings).split_documents(lc_pages)
    assert [d.id_ for d in reader] == core
    assert [n.node_id for n in parser] == core
    assert [d.id for d in splitter] == core
    # Options one by one still work, and reach the chunker.
    by_name = LayoutNodeParser(max_tokens=90, table_max_tokens=60, table_embedding="keys")
    assert by_name.chunking == settings
    assert [n.node_id for n in by_name.get_nodes_from_documents(pages)] == core
    assert LayoutTextSplitter(max_tokens=90).settings == ChunkerSettings(max_tokens=90)
    with pytest.raises(ValueError, match="table_embedding"):
        LayoutNodeParser(table_embedding="cells")


# -- conventions -------------------------------------------------------------------------------


def test_langchain_metadata_follows_pymupdfloader(report: Path) -> None:
    pages = list(DeepOCRLoader(report).lazy_load())
    first = pages[0].metadata
    assert first["source"] == first["file_path"] == str(report)
    assert (first["page"], first["page_label"], first["total_pages"]) == (0, "iii", 2)
    assert first["title"] == INFO["title"] and first["author"] == INFO["author"]
    assert first["creationdate"] == "2026-01-15T09:30:00+01:00"
    assert first["format"].startswith("PDF")
    assert len(json.dumps(first)) < 1200  # no page JSON: a page is found by its key
    chunks = LayoutTextSplitter(max_tokens=120).split_documents(pages)
    for chunk in chunks:
        meta = chunk.metadata
        _chroma_ok(meta)
        assert meta["source"] == meta["file_path"] == str(report)
        assert isinstance(meta["page"], int) and meta["page"] == json.loads(meta["pages"])[0]
        assert meta["page_label"] == ["iii", "iv"][meta["page"]]
        assert meta["total_pages"] == 2 and meta["title"] == INFO["title"]
        assert "deepocr_page_key" not in meta and "deepocr_page" not in meta
    for page in pages:
        _chroma_ok(page.metadata)


def test_llamaindex_metadata_follows_its_readers(report: Path) -> None:
    docs = SimpleDirectoryReader(
        input_files=[str(report)], file_extractor={".pdf": DeepOCRReader()}
    ).load_data()
    assert docs
    for doc in docs:
        meta = doc.metadata
        _chroma_ok(meta)
        assert meta["file_path"] == str(report) and meta["file_name"] == "report.pdf"
        assert "source" not in meta
        assert meta["page_label"] in ("iii", "iv") and isinstance(meta["page"], int)
        llm = doc.get_content(MetadataMode.LLM)
        # The LLM cites by the printed label; 0-based indices never reach it.
        assert f"page_label: {meta['page_label']}" in llm
        for key in ("page", "page_start", "page_end", "pages", "page_label_start"):
            assert f"\n{key}:" not in f"\n{llm}", key
        embed = doc.get_content(MetadataMode.EMBED)
        for key in ("page_label", "file_path", "title", "creationdate"):
            assert f"{key}:" not in embed, key


def test_vector_store_index_keeps_our_ids_given_nodes(report: Path) -> None:
    pages = DeepOCRReader(mode="pages").load_data(report)
    nodes = LayoutNodeParser(max_tokens=120).get_nodes_from_documents(pages)
    index = VectorStoreIndex(nodes, embed_model=HashEmbedding())
    assert set(index.docstore.docs) == {n.node_id for n in nodes}
    # Reader chunks are nodes too: VectorStoreIndex(chunks) keeps their ids (from_documents
    # would split them again under new random ids).
    chunks = DeepOCRReader(max_tokens=120).load_data(report)
    again = VectorStoreIndex(chunks, embed_model=HashEmbedding())
    assert set(again.docstore.docs) == {c.id_ for c in chunks}


# -- user keys through every splitter and parser -------------------------------------------------


def test_langchain_splitters_keep_every_user_key(report: Path) -> None:
    text_splitters = pytest.importorskip("langchain_text_splitters")
    pages = [
        LCDocument(
            id=p.id,
            page_content=p.page_content,
            metadata={**p.metadata, "tenant": "acme", "url": "https://example.org/r.pdf"},
        )
        for p in DeepOCRLoader(report).lazy_load()
    ]
    ours = LayoutTextSplitter(max_tokens=120).split_documents(pages)
    stock = text_splitters.RecursiveCharacterTextSplitter(
        chunk_size=300, chunk_overlap=0
    ).split_documents(pages)
    for chunk in [*ours, *stock]:
        meta = chunk.metadata
        assert meta["tenant"] == "acme" and meta["url"] == "https://example.org/r.pdf"
        assert meta["file_name"] == "report.pdf" and meta["status"] == "ok"
        assert meta["title"] == INFO["title"]
        _chroma_ok(meta)
        assert len(json.dumps(meta)) < 1200 or "boxes" in meta  # stock chunks stay small
    assert all("deepocr_page" not in c.metadata for c in stock)


def test_llamaindex_reader_and_parsers_keep_every_user_key(report: Path) -> None:
    from llama_index.core.node_parser import SentenceSplitter

    def file_metadata(path: str) -> dict[str, Any]:
        return {**default_file_metadata_func(path), "tenant": "acme"}

    def load(reader: DeepOCRReader) -> list[Any]:
        return SimpleDirectoryReader(
            input_files=[str(report)],
            file_extractor={".pdf": reader},
            file_metadata=file_metadata,
        ).load_data()

    chunks = load(DeepOCRReader(max_tokens=120))
    pages = load(DeepOCRReader(mode="pages"))
    nodes = LayoutNodeParser(max_tokens=120).get_nodes_from_documents(pages)
    # A stock parser works on our pages too: their metadata is small enough for its budget.
    stock = SentenceSplitter(chunk_size=256, chunk_overlap=0).get_nodes_from_documents(pages)
    for item in [*chunks, *nodes, *stock]:
        assert item.metadata["tenant"] == "acme"
        assert item.metadata["file_name"] == "report.pdf"
        assert "last_modified_date" in item.metadata
        assert "deepocr_page" not in item.metadata
        _chroma_ok(item.metadata)
    for node in nodes:
        assert "deepocr_page_key" not in node.metadata
        # SimpleDirectoryReader's own exclusions carry over.
        assert "last_modified_date" in node.excluded_llm_metadata_keys
    assert all("deepocr_page_key" not in n.source_node.metadata for n in nodes if n.source_node)


def test_node_parser_honours_its_base_class_fields(report: Path) -> None:
    pages = DeepOCRReader(mode="pages").load_data(report, extra_info={"tenant": "acme"})
    stable = LayoutNodeParser(max_tokens=120).get_nodes_from_documents(pages)
    named = LayoutNodeParser(
        max_tokens=120, id_func=lambda i, doc: f"{doc.node_id}-n{i}"
    ).get_nodes_from_documents(pages)
    assert [n.node_id for n in named] == [
        f"{pages[0].id_[:-3]}-p{s.metadata['page']}-n{i}" for i, s in enumerate(stable)
    ]
    bare = LayoutNodeParser(max_tokens=120, include_metadata=False).get_nodes_from_documents(pages)
    assert all("tenant" not in n.metadata for n in bare) and all(
        n.metadata["tenant"] == "acme" for n in stable
    )
    unlinked = LayoutNodeParser(
        max_tokens=120, include_prev_next_rel=False
    ).get_nodes_from_documents(pages)
    assert all(n.prev_node is None and n.next_node is None for n in unlinked)
    assert stable[1].prev_node is not None and stable[1].prev_node.node_id == stable[0].node_id
    # Chunk nodes know where they sit in their page's text.
    assert any(n.start_char_idx is not None for n in stable)
    progress = LayoutNodeParser(max_tokens=120).get_nodes_from_documents(pages, show_progress=True)
    assert [n.node_id for n in progress] == [n.node_id for n in stable]


# -- cache and streaming ------------------------------------------------------------------------


def test_second_directory_load_converts_nothing(
    tmp_path: Path, report: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    converted: list[int] = []
    run = TextLayerEngine.run

    def counting(self: TextLayerEngine, pages: Any, task: Any = "markdown") -> Iterator[Any]:
        for page in run(self, pages, task):
            converted.append(page.index)
            yield page

    monkeypatch.setattr(TextLayerEngine, "run", counting)

    def load() -> list[Any]:
        reader = DeepOCRReader(engine="text-layer", max_tokens=120)
        return SimpleDirectoryReader(
            input_files=[str(report)], file_extractor={".pdf": reader}
        ).load_data()

    first = load()
    assert sorted(converted) == [0, 1]
    converted.clear()
    second = load()
    assert converted == []  # every page came from the page cache
    assert [d.id_ for d in second] == [d.id_ for d in first]
    # Opting out converts again.
    DeepOCRReader(engine="text-layer", cache=False).load_data(report)
    assert sorted(converted) == [0, 1]


def test_streamed_split_equals_whole_document_split(tmp_path: Path, report: Path) -> None:
    table = _pdf(tmp_path / "table.pdf", spanning_table_pdf())
    splitter = LayoutTextSplitter(max_tokens=80)
    loader = DeepOCRLoader([report, table])
    whole = splitter.split_documents(list(loader.lazy_load()))
    seen: list[str] = []

    def pages() -> Iterator[LCDocument]:
        for page in loader.lazy_load():
            seen.append(page.metadata["file_name"])
            yield page

    streamed = []
    for chunk in splitter.lazy_split_documents(pages()):
        if chunk.metadata["file_name"] == "report.pdf":
            # The first file's chunks come before the second file is read past its first page.
            assert seen.count("table.pdf") <= 1
        streamed.append(chunk)
    assert [c.id for c in streamed] == [c.id for c in whole]
    assert [c.page_content for c in streamed] == [c.page_content for c in whole]
    assert [c.metadata for c in streamed] == [c.metadata for c in whole]
    assert {c.metadata["file_name"] for c in whole} == {"report.pdf", "table.pdf"}


def test_pages_split_in_another_process_come_from_the_cache(report: Path) -> None:
    from deepocr_loaders import page_store

    pages = list(DeepOCRLoader(report).lazy_load())
    expected = [c.id for c in LayoutTextSplitter(max_tokens=120).split_documents(pages)]
    page_store._recent.clear()  # as in a fresh process: only the page cache knows the pages
    again = LayoutTextSplitter(max_tokens=120).split_documents(pages)
    assert [c.id for c in again] == expected
    page_store._recent.clear()
    with pytest.raises(KeyError, match="with_page_json"):
        LayoutTextSplitter(max_tokens=120, cache=False).split_documents(pages)
    portable = list(DeepOCRLoader(report, cache=False, with_page_json=True).lazy_load())
    page_store._recent.clear()
    assert [c.id for c in LayoutTextSplitter(max_tokens=120).split_documents(portable)] == (
        expected
    )


# -- citations ---------------------------------------------------------------------------------


def _assert_highlighted(pdf: Path, chunk: Any, images: list[Any], dpi: float = 110) -> None:
    meta = chunk.metadata
    boxes = json.loads(meta["boxes"]) if isinstance(meta["boxes"], str) else meta["boxes"]
    pages = sorted({b["page"] for b in boxes})
    assert len(images) == len(pages)
    with dl.open_source(pdf) as src:
        for image, page in zip(images, pages, strict=True):
            plain = src.render(page, dpi).image.convert("RGB")
            changed = ImageChops.difference(plain, image).getbbox()
            assert changed is not None
            mine = [b for b in boxes if b["page"] == page]
            s = dpi / 72
            x0 = min(b["x0"] for b in mine) * s - 3
            y0 = min(b["y0"] for b in mine) * s - 3
            assert changed[0] >= x0 - 1 and changed[1] >= y0 - 1


def test_a_retrieved_node_is_highlighted(tmp_path: Path, report: Path) -> None:
    pages = DeepOCRReader(mode="pages").load_data(report)
    nodes = LayoutNodeParser(max_tokens=120).get_nodes_from_documents(pages)
    index = VectorStoreIndex(nodes, embed_model=HashEmbedding())
    target = next(n for n in nodes if "Nitrate" in n.get_content())
    (hit,) = index.as_retriever(similarity_top_k=1).retrieve(target.get_content(MetadataMode.EMBED))
    assert hit.node.node_id == target.node_id
    out = tmp_path / "hit.pdf"
    images = dl.highlight(hit.node.metadata["file_path"], hit.node, out=out)
    _assert_highlighted(report, hit.node, images)
    with pymupdf.open(out) as written:
        assert len(written) == len(images)


def test_a_retrieved_langchain_document_is_highlighted(tmp_path: Path, report: Path) -> None:
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    chunks = LayoutTextSplitter(max_tokens=120).split_documents(
        list(DeepOCRLoader(report).lazy_load())
    )
    store = InMemoryVectorStore(embedding=DeterministicFakeEmbedding(size=32))
    store.add_documents(chunks)
    target = next(c for c in chunks if "Two Column" in c.page_content)
    (hit,) = store.similarity_search(target.page_content, k=1)
    images = dl.highlight(None, hit, out=tmp_path / "hit.png")  # the path from the metadata
    _assert_highlighted(report, hit, images)
    assert (tmp_path / "hit.png").exists()
    # A chunk, a chunk dict and bare metadata work alike.
    chunk = LayoutChunker(max_tokens=120).chunk(dl.convert(report))[0]
    for given in (chunk, chunk.to_dict(), chunk.metadata):
        assert len(dl.highlight(report, given)) == len(chunk.pages)
    with pytest.raises(dl.ConfigError):
        dl.highlight(report, {"text": "no boxes"})


def test_streaming_without_a_cache_holds_each_document_itself(
    report: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepocr_loaders import page_store

    monkeypatch.setattr(page_store, "MAX_PAGES", 1)  # as a PDF longer than the store
    splitter = LayoutTextSplitter(max_tokens=120, cache=False)
    loader = DeepOCRLoader(report, cache=False)
    streamed = list(splitter.lazy_split_documents(loader.lazy_load()))
    assert {c.metadata["page"] for c in streamed} == {0, 1}
    # Loaded in full first, the first page has left the store and no cache holds it.
    with pytest.raises(KeyError, match="with_page_json"):
        splitter.split_documents(list(loader.lazy_load()))


def test_pages_read_in_worker_processes_split_in_this_one(tmp_path: Path) -> None:
    from integration_docs import make_pdf, recorded_options

    make_pdf(tmp_path / "a.pdf", "Alpha")
    make_pdf(tmp_path / "b.pdf", "Beta")
    reader = DeepOCRReader(engine="recorded", engine_options=recorded_options(), mode="pages")
    pages = SimpleDirectoryReader(str(tmp_path), file_extractor={".pdf": reader}).load_data(
        num_workers=2
    )
    # The pages were made in spawned workers: this process finds them in the page cache.
    from deepocr_loaders import page_store

    assert not any(p.metadata["deepocr_page_key"] in page_store._recent for p in pages)
    nodes = LayoutNodeParser(max_tokens=64).get_nodes_from_documents(pages)
    assert {n.metadata["file_name"] for n in nodes} == {"a.pdf", "b.pdf"}
    assert any("Sediment load" in n.get_content() for n in nodes)
