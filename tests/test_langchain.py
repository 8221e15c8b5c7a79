"""LangChain end to end: loader, blob parser, splitter, and incremental re-indexing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")

from integration_docs import make_pdf, recorded_options
from langchain_core.document_loaders import Blob
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.indexing import InMemoryRecordManager, index
from langchain_core.vectorstores import InMemoryVectorStore

from langchain_loader import DeepOCRBlobParser, DeepOCRLoader, LayoutTextSplitter


def _loader(paths: list[Path] | Path, **kwargs: object) -> DeepOCRLoader:
    return DeepOCRLoader(
        paths,  # type: ignore[arg-type]
        engine="recorded",
        engine_options=recorded_options(),
        **kwargs,  # type: ignore[arg-type]
    )


def test_loader_pages_follow_langchain_pdf_conventions(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", "Alpha")
    docs = list(_loader(pdf).lazy_load())
    assert [d.metadata["page"] for d in docs] == [0, 1]
    assert all(d.metadata["total_pages"] == 2 for d in docs)
    assert all(d.metadata["source"] == str(pdf) for d in docs)
    assert docs[0].metadata["page_label"] == "1"
    assert docs[0].id and docs[0].id != docs[1].id
    for doc in docs:
        assert all(isinstance(v, (str, int, float)) for v in doc.metadata.values())


def test_loader_is_lazy_and_async(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", "Alpha")
    it = _loader(pdf).lazy_load()
    assert next(it).metadata["page"] == 0

    async def collect() -> list[int]:
        return [d.metadata["page"] async for d in _loader(pdf).alazy_load()]

    assert asyncio.run(collect()) == [0, 1]


def test_blob_parser_from_bytes_and_path(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", "Alpha")
    parser = DeepOCRBlobParser("recorded", engine_options=recorded_options())
    from_path = list(parser.lazy_parse(Blob.from_path(pdf)))
    from_data = list(parser.lazy_parse(Blob.from_data(pdf.read_bytes(), path="mem.pdf")))
    assert [d.page_content for d in from_path] == [d.page_content for d in from_data]
    assert [d.id for d in from_path] == [d.id for d in from_data]  # ids come from content
    assert from_data[0].metadata["source"] == "mem.pdf"


def test_generic_loader(tmp_path: Path) -> None:
    community = pytest.importorskip("langchain_community.document_loaders.generic")
    make_pdf(tmp_path / "a.pdf", "Alpha")
    loader = community.GenericLoader.from_filesystem(
        str(tmp_path),
        glob="*.pdf",
        parser=DeepOCRBlobParser("recorded", engine_options=recorded_options()),
    )
    assert len(list(loader.lazy_load())) == 2


def test_splitter_keeps_ids_and_flat_metadata(tmp_path: Path) -> None:
    pages = list(_loader(make_pdf(tmp_path / "a.pdf", "Alpha")).lazy_load())
    chunks = LayoutTextSplitter(max_tokens=64).split_documents(pages)
    assert chunks and all(c.id for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)
    again = LayoutTextSplitter(max_tokens=64).transform_documents(pages)
    assert [c.id for c in again] == [c.id for c in chunks]
    for chunk in chunks:
        assert "deepocr_page" not in chunk.metadata
        assert all(isinstance(v, (str, int, float, bool)) for v in chunk.metadata.values())
        assert isinstance(chunk.metadata["page"], int)
        boxes = json.loads(chunk.metadata["boxes"])
        assert all({"page", "x0", "y0", "x1", "y1"} <= set(b) for b in boxes)
    sediment = next(c for c in chunks if "Sediment load" in c.page_content)
    assert sediment.metadata["page"] == 1
    with pytest.raises(ValueError, match="DeepOCRLoader"):
        LayoutTextSplitter().split_documents([type(pages[0])(page_content="plain")])


def test_splitter_page_content_starts_with_the_heading_path(tmp_path: Path) -> None:
    pages = list(_loader(make_pdf(tmp_path / "a.pdf", "Alpha")).lazy_load())
    with_path = LayoutTextSplitter(max_tokens=64).split_documents(pages)
    bare = LayoutTextSplitter(max_tokens=64, prepend_headings=False).split_documents(pages)
    assert [c.id for c in with_path] == [c.id for c in bare]
    headed = [(a, b) for a, b in zip(with_path, bare, strict=True) if a.metadata.get("headings")]
    assert headed
    for a, b in headed:
        # What a vector store embeds carries the section the chunk belongs to, once: the
        # heading lines the text opens with are not repeated after the path.
        assert a.page_content.startswith(f"{a.metadata['headings']}\n\n")
        body = a.page_content[len(a.metadata["headings"]) + 2 :]
        assert b.page_content.endswith(body)
        for heading in a.metadata["headings"].split(" > "):
            assert a.page_content.count(heading) == 1 or heading in body.split("\n\n", 1)[-1]
        assert not body.lstrip().startswith("#")


def test_incremental_reindex_uses_source(tmp_path: Path) -> None:
    a = make_pdf(tmp_path / "a.pdf", "Alpha")
    b = make_pdf(tmp_path / "b.pdf", "Beta")
    splitter = LayoutTextSplitter(max_tokens=64)
    store = InMemoryVectorStore(embedding=DeterministicFakeEmbedding(size=16))
    records = InMemoryRecordManager(namespace="test")
    records.create_schema()

    def run(paths: list[Path]) -> dict[str, int]:
        chunks = splitter.split_documents(list(_loader(paths).lazy_load()))
        result = index(
            chunks,
            records,
            store,
            cleanup="incremental",
            source_id_key="source",
            key_encoder="sha256",
        )
        return dict(result)

    first = run([a, b])
    assert first["num_added"] > 0 and first["num_deleted"] == 0
    second = run([a, b])
    assert second["num_added"] == 0 and second["num_skipped"] == first["num_added"]
    hits = store.similarity_search("Sediment load", k=50)
    assert {h.metadata["source"] for h in hits} == {str(a), str(b)}
    # A changed file replaces its own chunks and leaves the other file's alone.
    make_pdf(a, "Alpha, second edition")
    third = run([a])
    assert third["num_added"] > 0 and third["num_deleted"] == third["num_added"]
    hits = store.similarity_search("Sediment load", k=50)
    assert len(hits) == first["num_added"]


def test_splitter_passes_problem_pages_through(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", "Alpha", pages=3)  # the recording has 2 pages
    pages = list(_loader(pdf).lazy_load())
    assert pages[2].metadata["status"] == "failed"
    chunks = LayoutTextSplitter(max_tokens=64).split_documents(pages)
    failed = [c for c in chunks if c.metadata.get("status") == "failed"]
    assert len(failed) == 1 and failed[0].id == pages[2].id
    assert "deepocr_page" not in failed[0].metadata


def test_multi_vector_documents_find_a_row_of_a_long_table_by_its_id() -> None:
    from chunk_docs import STATION_HEADER, doc, heading, station_rows, table
    from langchain_classic.retrievers.multi_vector import MultiVectorRetriever
    from langchain_core.documents import Document as LCDocument
    from langchain_core.stores import InMemoryByteStore

    from deepocr_loaders.records import page_record

    long_table = doc([[heading("Readings", 2), table(STATION_HEADER, station_rows(60))]])
    pages = [
        LCDocument(id=r.id, page_content=r.text, metadata=r.metadata)
        for r in (page_record(long_table, p) for p in long_table.pages)
    ]
    splitter = LayoutTextSplitter(max_tokens=120)
    chunks = splitter.split_documents(pages)
    vectors = splitter.multi_vector_documents(chunks)
    ids = {c.id for c in chunks}
    keys = [v for v in vectors if v.page_content.startswith("Station AC-")]
    assert len(keys) == 60 and len(vectors) == len(chunks) + 60
    assert all(v.metadata["doc_id"] in ids and "boxes" not in v.metadata for v in vectors)
    store = InMemoryVectorStore(embedding=DeterministicFakeEmbedding(size=64))
    retriever = MultiVectorRetriever(
        vectorstore=store, byte_store=InMemoryByteStore(), search_kwargs={"k": 1}
    )
    retriever.vectorstore.add_documents(vectors)
    retriever.docstore.mset([(c.id, c) for c in chunks])
    (hit,) = retriever.invoke("Station AC-041")
    assert "| AC-041 |" in hit.page_content and hit.metadata["table_part"] > 1
    assert json.loads(hit.metadata["boxes"])  # the docstore returns the chunk whole
    # Chunks without ids cannot be pointed to: a clear error, not key documents that match none.
    with pytest.raises(ValueError, match="ids"):
        splitter.multi_vector_documents([LCDocument(page_content="x", metadata={})])
