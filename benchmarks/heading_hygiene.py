"""Heading and furniture hygiene of the text layer + chunker on real PDFs (issue #17).

Usage::

    python benchmarks/heading_hygiene.py [PDF_OR_DIR ...] [--code CHECKOUT] [--no-speed]

Corpus: the PDFs given, else the real set of :mod:`text_layer_realset` (fetched from Debian's
archive into ``/work/realpdfs`` when missing). Each PDF is converted with the default
``text-layer`` engine and chunked with ``LayoutChunker()``; then, per PDF:

* **page no.**: chunks whose heading path holds a bare page number (``6``, ``xii``, ``Page 3``);
* **running**: chunks whose heading path holds a running header or footer: a text line that
  recurs, digits ignored, in the top or bottom 12% of at least two pages at the same height,
  found from the PDF's own text lines (not from the engine's labels);
* **code**: chunks whose heading path holds a code line: a heading set in a monospaced font
  (PyMuPDF's flag or a Courier/``tt``/Inconsolata-like name) or reading as TeX
  (``\\command``, ``% comment``);
* **repeated**: chunks whose embedded text (``contextualized_text``) holds a heading twice;
* **furn. in text**: chunks whose text holds a running line or a bare page number as a
  paragraph of its own;
* **marked**: blocks the document labels page header or footer;
* with speed on, the time of the conversion (``convert(...).to_markdown()``) against
  ``pymupdf4llm.to_markdown`` (defaults), after one warm-up run of both, best of ``--repeat``.

``--code CHECKOUT`` imports the package from another checkout (e.g. ``main``) to compare.
Prints a Markdown table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymupdf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

_MARGIN = 0.12
_NUMBER_RE = re.compile(
    r"(?:[Pp]age\s+)?[-–—]?\s*(?:\d{1,4}|[ivxlcdm]{1,7})\s*[-–—]?(?:\s*(?:/|of)\s*\d{1,4})?"
)
_MONO_RE = re.compile(r"(?i)mono|courier|consol|menlo|typewriter|xtt|tt\d")
_TEX_RE = re.compile(r"^(?:\d+\s+)?(?:\\[A-Za-z@]+|%)")
_DIGITS_RE = re.compile(r"\d+")
_WS_RE = re.compile(r"\s+")


def _key(text: str) -> str:
    return (
        _WS_RE.sub(" ", _DIGITS_RE.sub("#", text.replace("#", " ").replace("*", "")))
        .strip()
        .casefold()
    )


def running_lines(pdf: pymupdf.Document) -> dict[str, list[float]]:
    """Keys of the text lines that recur in a page margin at the same height on 2+ pages, with
    that height (centre, share of the page height); lines set larger than the body text are
    not running heads."""
    seen: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    pages = [pdf[i].get_text("dict")["blocks"] for i in range(pdf.page_count)]
    sizes: Counter[float] = Counter()
    for blocks in pages:
        for block in blocks:
            for line in block.get("lines", ()):
                for span in line["spans"]:
                    sizes[round(span["size"], 1)] += len(span["text"].strip())
    body = sizes.most_common(1)[0][0] if sizes else 0.0
    for number, blocks in enumerate(pages):
        page = pdf[number]
        h = page.rect.height
        for block in blocks:
            for line in block.get("lines", ()):
                if max(s["size"] for s in line["spans"]) > body * 1.05:
                    continue  # running heads are not set larger than the text (slide titles are)
                text = " ".join(s["text"] for s in line["spans"]).strip()
                y0, y1 = line["bbox"][1], line["bbox"][3]
                band = "top" if y1 <= _MARGIN * h else "bottom" if y0 >= (1 - _MARGIN) * h else ""
                key = _key(text)
                if band and key.strip("# "):
                    seen[(band, key)].append((number, (y0 + y1) / 2 / h))
    keys: dict[str, list[float]] = defaultdict(list)
    for (_, key), occ in seen.items():
        ys = sorted(y for _, y in occ)
        mid = ys[len(ys) // 2]
        if len({p for p, y in occ if abs(y - mid) <= 0.03}) >= 2:
            keys[key].append(mid)
    return keys


def _at(block: Any, height: float, ys: list[float]) -> bool:
    """Whether ``block`` sits at one of the heights ``ys`` (shares of the page height)."""
    if block.bbox is None or not height:
        return False
    y = (block.bbox.y0 + block.bbox.y1) / 2 / height
    return any(abs(y - m) <= 0.03 for m in ys)


def _is_code_heading(pdf: pymupdf.Document, block: Any) -> bool:
    text = block.plain_text.strip()
    if _TEX_RE.match(text):
        return True
    if block.bbox is None:
        return False
    page = pdf[block.page_index]
    spans = [
        s
        for b in page.get_text("dict", clip=pymupdf.Rect(block.bbox.as_tuple()))["blocks"]
        for line in b.get("lines", ())
        for s in line["spans"]
        if s["text"].strip()
    ]
    chars = sum(len(s["text"].strip()) for s in spans)
    mono = sum(
        len(s["text"].strip()) for s in spans if s["flags"] & 8 or _MONO_RE.search(s["font"])
    )
    return chars > 0 and mono / chars >= 0.5


@dataclass
class Row:
    name: str
    pages: int
    chunks: int = 0
    page_number: int = 0
    running: int = 0
    code: int = 0
    repeated: int = 0
    furniture_in_text: int = 0
    marked: int = 0
    ours_s: float = 0.0
    theirs_s: float = 0.0
    examples: tuple[str, ...] = ()


def check(path: Path, convert: Callable[..., Any], chunker: Any, engine: Any) -> Row:
    doc = convert(str(path), engine=engine)
    chunks = chunker.chunk(doc)
    with pymupdf.open(path) as pdf:
        running = running_lines(pdf)
        heading_blocks: dict[str, list[Any]] = defaultdict(list)
        for b in doc.blocks:
            if b.kind.value in ("heading", "title"):
                heading_blocks[b.plain_text.strip()].append(b)
        code_titles = {
            t for t, bs in heading_blocks.items() if any(_is_code_heading(pdf, b) for b in bs)
        }
        heights = {p.index: p.height for p in doc.pages}
        running_titles = {
            t
            for t, bs in heading_blocks.items()
            if _key(t) in running
            and any(_at(b, heights.get(b.page_index, 0.0), running[_key(t)]) for b in bs)
        }
    row = Row(path.name, len(doc.pages), len(chunks))
    row.marked = sum(1 for b in doc.blocks if b.kind.value in ("page_header", "page_footer"))
    examples: list[str] = []
    for c in chunks:
        path_ = list(c.metadata["heading_path"])
        bad = False
        if any(_NUMBER_RE.fullmatch(h.strip()) for h in path_):
            row.page_number += 1
            bad = True
        if any(h.strip() in running_titles for h in path_):
            row.running += 1
            bad = True
        if any(h.strip() in code_titles for h in path_):
            row.code += 1
            bad = True
        if bad and len(examples) < 3:
            examples.append(" > ".join(path_)[:80])
        embed = c.metadata.get("contextualized_text", c.text)
        paras = [p.strip().lstrip("#").strip().casefold() for p in embed.split("\n\n")]
        heads = [h.strip().casefold() for h in path_]
        if paras and paras[0] == " > ".join(heads):
            paras = [*heads, *paras[1:]]  # the path line holds each of its headings once
        if any(h and paras.count(h) > 1 for h in heads):
            row.repeated += 1
        text_paras = [p.strip() for p in c.text.split("\n\n")]
        if any(_key(p) in running or _NUMBER_RE.fullmatch(p) for p in text_paras if p):
            row.furniture_in_text += 1
    row.examples = tuple(examples)
    return row


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--code", type=Path, default=HERE.parent, help="checkout to import")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve()))
    from text_layer_realset import fetch_realset

    from chunking import LayoutChunker
    from deepocr_loaders import convert
    from deepocr_loaders.engines.text_layer import TextLayerEngine

    files: list[Path] = []
    for p in args.paths or fetch_realset():
        files.extend(sorted(p.rglob("*.pdf")) if p.is_dir() else [p])
    engine = TextLayerEngine()
    chunker = LayoutChunker()
    rows = []
    import pymupdf4llm

    def theirs(f: Path) -> object:
        with pymupdf.open(f) as d:
            return pymupdf4llm.to_markdown(d, show_progress=False)

    for i, f in enumerate(files):
        row = check(f, convert, chunker, engine)
        if not args.no_speed:
            if i == 0:
                theirs(f)  # warm-up: the layout model loads once per process
            row.ours_s = best_of(args.repeat, lambda: convert(str(f), engine=engine).to_markdown())  # noqa: B023
            row.theirs_s = best_of(args.repeat, lambda: theirs(f))  # noqa: B023
        rows.append(row)
        print(f"{row.name}: {row}", file=sys.stderr, flush=True)
    print_table(rows, not args.no_speed, args.code)
    return 0


def print_table(rows: Iterable[Row], speed: bool, code: Path) -> None:
    rows = list(rows)
    print(f"code: {code.resolve()} ({os.cpu_count()} CPUs)\n")
    head = (
        "| PDF | pages | chunks | page no. | running | code | repeated | furn. in text | marked |"
    )
    sep = "|---|---|---|---|---|---|---|---|---|"
    if speed:
        head += " text-layer s | pymupdf4llm s | ratio |"
        sep += "---|---|---|"
    print(head)
    print(sep)
    tot = Row("**all**", sum(r.pages for r in rows))
    for r in rows:
        for k in (
            "chunks",
            "page_number",
            "running",
            "code",
            "repeated",
            "furniture_in_text",
            "marked",
            "ours_s",
            "theirs_s",
        ):
            setattr(tot, k, getattr(tot, k) + getattr(r, k))
    for r in [*rows, tot]:
        line = (
            f"| {r.name} | {r.pages} | {r.chunks} | {r.page_number} | {r.running} | {r.code} | "
            f"{r.repeated} | {r.furniture_in_text} | {r.marked} |"
        )
        if speed:
            ratio = r.ours_s / r.theirs_s if r.theirs_s else 0.0
            line += f" {r.ours_s:.2f} | {r.theirs_s:.2f} | {ratio:.2f}x |"
        print(line)
    bad = [(r.name, e) for r in rows for e in r.examples]
    if bad:
        print("\nExamples of bad heading paths:\n")
        for name, e in bad:
            print(f"- {name}: `{e}`")


if __name__ == "__main__":
    raise SystemExit(main())
