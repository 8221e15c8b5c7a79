"""LlamaIndex end to end: SimpleDirectoryReader with the reader, IngestionPipeline with the
node parser, real framework objects throughout."""

from __future__ import annotations

import asyncio
import json
import pickle
from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

from integration_docs import make_pdf, recorded_options
from llama_index.core import SimpleDirectoryReader
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import MetadataMode, NodeRelationship

from llamaindex_reader import DeepOCRReader, LayoutNodeParser


def _reader(**kwargs: object) -> DeepOCRReader:
    return DeepOCRReader(engine="recorded", engine_options=recorded_options(), **kwargs)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    make_pdf(tmp_path / "a.pdf", "Alpha")
    make_pdf(tmp_path / "b.pdf", "Beta")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7\n this is not really a pdf")
    return tmp_path


def test_simple_directory_reader_chunks(folder: Path) -> None:
    docs = SimpleDirectoryReader(
        input_dir=str(folder), file_extractor={".pdf": _reader()}
    ).load_data()
    # The corrupt file is skipped by SimpleDirectoryReader; the two good ones are chunked.
    sources = {d.metadata["file_path"] for d in docs}
    assert sources == {str(folder / "a.pdf"), str(folder / "b.pdf")}
    for doc in docs:
        for value in doc.metadata.values():
            assert isinstance(value, (str, int, float)), value
        assert "boxes" in doc.excluded_embed_metadata_keys
        assert "boxes" in doc.excluded_llm_metadata_keys
        assert json.loads(doc.metadata["boxes"])
        assert "file_path" in doc.metadata  # SimpleDirectoryReader's extra_info merged in
    table = next(d for d in docs if "AC-12" in d.text)
    assert table.metadata["headings"].endswith("Discharge")
    assert "boxes" not in table.get_content(MetadataMode.EMBED)
    # Page numbers in footers are not chunk text.
    assert all(d.text.strip() not in ("1", "2") for d in docs)
    # Stable ids: a second read gives the same ids.
    again = SimpleDirectoryReader(
        input_dir=str(folder), file_extractor={".pdf": _reader()}
    ).load_data()
    assert [d.id_ for d in again] == [d.id_ for d in docs]


def test_pages_mode_and_extra_info(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", "Alpha")
    docs = _reader(mode="pages").load_data(pdf, extra_info={"team": "hydro"})
    assert [d.metadata["page"] for d in docs] == [0, 1]
    assert [d.metadata["page_label"] for d in docs] == ["1", "2"]
    assert all(d.metadata["team"] == "hydro" and d.metadata["total_pages"] == 2 for d in docs)
    assert "# Alder Creek Survey" in docs[0].text


def test_reader_pickles_without_engine(tmp_path: Path) -> None:
    reader = _reader()
    reader.load_data(make_pdf(tmp_path / "a.pdf", "Alpha"))
    assert reader._engine is not None
    clone = pickle.loads(pickle.dumps(reader))
    assert clone._engine is None
    assert clone.engine_options == reader.engine_options
    assert clone.load_data(tmp_path / "a.pdf")


def test_num_workers_spawned_processes(folder: Path) -> None:
    (folder / "broken.pdf").unlink()
    docs = SimpleDirectoryReader(
        input_dir=str(folder), file_extractor={".pdf": _reader()}
    ).load_data(num_workers=2)
    assert {d.metadata["file_name"] for d in docs} == {"a.pdf", "b.pdf"}


def test_read_through_fsspec(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.pipe("/docs/a.pdf", make_pdf(tmp_path / "a.pdf", "Alpha").read_bytes())
    docs = _reader(mode="pages").load_data("/docs/a.pdf", fs=fs)
    assert docs[0].metadata["file_path"] == "/docs/a.pdf"


def test_aload_data(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", "Alpha")
    reader = _reader()
    docs = asyncio.run(reader.aload_data(pdf))
    assert [d.id_ for d in docs] == [d.id_ for d in reader.load_data(pdf)]


def test_ingestion_pipeline_with_node_parser(tmp_path: Path) -> None:
    pages = _reader(mode="pages").load_data(make_pdf(tmp_path / "a.pdf", "Alpha"))
    parser = LayoutNodeParser(max_tokens=64)
    nodes = IngestionPipeline(transformations=[parser]).run(documents=pages)
    assert nodes
    assert all("deepocr_page" not in n.metadata for n in nodes)
    first, second = nodes[0], nodes[1]
    assert first.relationships[NodeRelationship.SOURCE].node_id == pages[0].id_
    assert first.relationships[NodeRelationship.NEXT].node_id == second.node_id
    assert second.relationships[NodeRelationship.PREVIOUS].node_id == first.node_id
    sediment = next(n for n in nodes if "Sediment load" in n.get_content())
    assert sediment.metadata["page"] == 1
    assert sediment.relationships[NodeRelationship.SOURCE].node_id == pages[1].id_
    # Settings are pydantic fields: a different budget is a different cache key.
    assert LayoutNodeParser(max_tokens=64).to_dict() != LayoutNodeParser(max_tokens=32).to_dict()


def test_nodes_embed_headings_and_text_not_page_numbers(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", "Alpha")
    pages = SimpleDirectoryReader(
        input_files=[str(pdf)], file_extractor={".pdf": _reader(mode="pages")}
    ).load_data()
    seen: list[str] = []

    def count(text: str) -> int:
        seen.append(text)
        return len(text.split())

    nodes = LayoutNodeParser(max_tokens=64, tokenizer=count).get_nodes_from_documents(pages)
    assert seen  # the budget is counted with the given tokenizer
    table = next(n for n in nodes if "AC-12" in n.get_content())
    embed = table.get_content(MetadataMode.EMBED)
    # The model reads the heading path, unlabelled, then the text (LlamaIndex's "key: value"
    # lines are for the LLM); the LLM gets the path under its key.
    assert embed.startswith(f"{table.metadata['headings']}\n\n")
    assert table.text in embed and "headings:" not in embed
    for key in ("page_start", "page_label_start", "source", "file_path", "kind", "total_pages"):
        assert f"{key}:" not in embed, key
    llm = table.get_content(MetadataMode.LLM)
    # Citations stay readable, by the printed page label; no 0-based index reaches the LLM.
    # (SimpleDirectoryReader shows the LLM file_path and hides file_name; that carries over.)
    assert f"file_path: {pdf}" in llm and f"page_label: {table.metadata['page_label']}" in llm
    for key in ("page", "page_start", "page_end", "page_label_start", "source", "file_name"):
        assert f"\n{key}:" not in f"\n{llm}", key
    # SimpleDirectoryReader's own exclusions carry over to the chunk nodes.
    assert "last_modified_date" in table.metadata and "last_modified_date:" not in llm


def test_page_documents_made_elsewhere_embed_no_paths_or_page_numbers(tmp_path: Path) -> None:
    # Page Documents built from page records directly (LangChain's metadata, a ``source``
    # path, no exclusions): the base class merges their keys into the nodes, which must
    # still embed only headings and text.
    from llama_index.core import Document as LIDocument

    from deepocr_loaders import convert
    from deepocr_loaders.records import page_record

    pdf = make_pdf(tmp_path / "a.pdf", "Alpha")
    doc = convert(pdf, engine="recorded", **recorded_options())
    pages = [
        LIDocument(id_=r.id, text=r.text, metadata=r.metadata)
        for r in (page_record(doc, page) for page in doc.pages)
    ]
    nodes = LayoutNodeParser(max_tokens=64).get_nodes_from_documents(pages)
    assert nodes
    for node in nodes:
        assert node.metadata["source"] == str(pdf)
        embed = node.get_content(MetadataMode.EMBED)
        for key in ("source", "file_path", "page", "total_pages", "document_sha256"):
            assert f"\n{key}:" not in f"\n{embed}", key
        assert "\nsource:" not in f"\n{node.get_content(MetadataMode.LLM)}"


def test_nodes_embed_plain_text_and_hand_the_llm_markdown() -> None:
    from chunk_docs import blk, doc, heading, para
    from hash_embedding import HashEmbedding
    from llama_index.core import Document as LIDocument
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.storage.docstore import SimpleDocumentStore

    from deepocr_loaders import BlockKind
    from deepocr_loaders.records import page_record

    ticks = "2001 2002 2003\nIndex\n0.0\n-0.2"
    document = doc(
        [
            [
                heading("Returns", 2),
                para("Use `diff(log(x))` for **log returns** of a series."),
                blk(BlockKind.FIGURE, ticks, (72, 200, 540, 400)),
                blk(BlockKind.CAPTION, "Figure 4: Log-difference returns", label="image_caption"),
            ]
        ]
    )
    pages = [
        LIDocument(id_=r.id, text=r.text, metadata={**r.metadata, "tenant": "acme"})
        for r in (page_record(document, p) for p in document.pages)
    ]
    seen: list[str] = []

    class Recording(HashEmbedding):
        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            seen.extend(texts)
            return [self._vector(t) for t in texts]

    nodes = IngestionPipeline(transformations=[LayoutNodeParser(), Recording()]).run(
        documents=pages
    )
    (node,) = nodes
    # A user's own key stays a "key: value" line; the heading path follows, unlabelled.
    expected = (
        "tenant: acme\n\nReturns\n\nUse diff(log(x)) for log returns of a series.\n\n[figure]"
        "\n\nFigure 4: Log-difference returns"
    )
    assert seen == [expected] == [node.get_content(MetadataMode.EMBED)]
    llm = node.get_content(MetadataMode.LLM)
    assert "`diff(log(x))`" in llm and "**log returns**" in llm and ticks in llm
    assert "headings: Returns" in llm and "tenant: acme" in llm
    # To a store it is a TextNode with its Markdown text; the embedding text is not stored.
    store = SimpleDocumentStore()
    store.add_documents([node])
    back = store.get_document(node.node_id)
    assert type(back).__name__ == "TextNode" and back.text == node.text
    assert "[figure]" not in json.dumps(store.docs[node.node_id].to_dict())


def test_split_table_embeds_its_row_keys_for_the_model_only(tmp_path: Path) -> None:
    from chunk_docs import STATION_HEADER, doc, heading, station_rows, table
    from llama_index.core import Document as LIDocument

    from deepocr_loaders.records import page_record

    long_table = doc([[heading("Readings", 2), table(STATION_HEADER, station_rows(60))]])
    pages = [
        LIDocument(id_=r.id, text=r.text, metadata=r.metadata)
        for r in (page_record(long_table, p) for p in long_table.pages)
    ]
    parts = LayoutNodeParser(max_tokens=120).get_nodes_from_documents(pages)
    assert len(parts) > 2
    for node in parts:
        rows = [ln.split("|")[1].strip() for ln in node.text.splitlines() if "| AC-" in ln]
        keys = node.metadata["table_keys"]
        assert keys.endswith("Station: " + ", ".join(rows))
        # The model reads the headings and the keys, not the cells; the LLM reads the rows.
        embed = node.get_content(MetadataMode.EMBED)
        assert embed == f"Readings\n\n{keys}"
        llm = node.get_content(MetadataMode.LLM)
        assert "table_keys" not in llm and f"| {rows[0]} |" in llm


def test_row_key_nodes_find_a_row_of_a_long_table_by_its_id(tmp_path: Path) -> None:
    from chunk_docs import STATION_HEADER, doc, heading, station_rows, table
    from hash_embedding import HashEmbedding
    from llama_index.core import Document as LIDocument
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import IndexNode

    from deepocr_loaders.records import page_record

    long_table = doc([[heading("Readings", 2), table(STATION_HEADER, station_rows(60))]])
    pages = [
        LIDocument(id_=r.id, text=r.text, metadata=r.metadata)
        for r in (page_record(long_table, p) for p in long_table.pages)
    ]
    nodes = LayoutNodeParser(max_tokens=120, row_key_nodes=True).get_nodes_from_documents(pages)
    chunks = [n for n in nodes if not isinstance(n, IndexNode)]
    keys = [n for n in nodes if isinstance(n, IndexNode)]
    assert len(keys) == 60 and len(chunks) > 2
    assert LayoutNodeParser(max_tokens=120).get_nodes_from_documents(pages) == chunks
    by_id = {c.node_id: c for c in chunks}
    for key in keys:
        assert key.get_content(MetadataMode.EMBED) == key.text  # the key alone is embedded
        assert key.text.removeprefix("Station ") + " |" in by_id[key.index_id].text
    index = VectorStoreIndex(nodes, embed_model=HashEmbedding())
    (hit,) = index.as_retriever(similarity_top_k=1).retrieve("Station AC-041")
    assert not isinstance(hit.node, IndexNode)  # the key resolves to its chunk
    assert "| AC-041 |" in hit.node.get_content() and hit.node.metadata["table_part"] > 1


def test_node_parser_rejects_foreign_documents() -> None:
    from llama_index.core import Document

    with pytest.raises(ValueError, match="DeepOCRReader"):
        LayoutNodeParser().get_nodes_from_documents([Document(text="plain")])


def test_folder_with_scan_and_corrupt_file_reports_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The real default engine ("auto") over born-digital, image-only and corrupt PDFs."""
    import pymupdf

    pdf = pymupdf.open()
    pdf.new_page(width=612, height=792).insert_textbox(
        pymupdf.Rect(72, 72, 540, 400), "Born digital text about river gauges. " * 20
    )
    scan = pdf.new_page(width=612, height=792)  # a picture of a page: needs OCR
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 400, 400), 0)
    pix.set_rect(pix.irect, (250, 250, 250))
    scan.insert_image(scan.rect, pixmap=pix)
    pdf.save(tmp_path / "mixed.pdf")
    (tmp_path / "corrupt.pdf").write_bytes(b"%PDF-1.7\n truncated")
    reader = DeepOCRReader()  # engine="auto"; no OCR engine can run here
    docs = SimpleDirectoryReader(str(tmp_path), file_extractor={".pdf": reader}).load_data()
    assert {d.metadata["file_name"] for d in docs} == {"mixed.pdf"}
    ok = [d for d in docs if d.metadata.get("status", "ok") == "ok"]
    problems = [d for d in docs if d.metadata.get("status", "ok") != "ok"]
    assert ok and "river gauges" in ok[0].text
    assert [(d.metadata["page"], d.metadata["status"]) for d in problems] == [(1, "needs_ocr")]
    assert "needs_ocr" in problems[0].text
    assert "needs_ocr" in caplog.text
