"""Throughput of ``engine="openai"`` against a local stand-in server as concurrency grows.

The server (tests/fake_openai_server.py, a real HTTP server on 127.0.0.1) answers every request
with the same recorded grounded page after a fixed latency, so the table shows what the client
does with that latency: the ideal is ``concurrency / latency`` pages/s until the client's own
work (rendering, PNG encoding, JSON, HTTP, parsing) or the stand-in server becomes the limit.

Three inputs: ``tiny`` (64x80 px images: pure client overhead), ``page`` (A4 text pages
rendered at 144 dpi and sent as PNG, the default) and ``jpeg`` (the same pages as JPEG q90).

Usage::

    python benchmarks/openai_client_throughput.py [--pages 200] [--latency 0.1]
        [--concurrency 1,2,4,8,16,32,64] [--inputs tiny,page,jpeg]

Prints a Markdown table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import pymupdf

ROOT = Path(__file__).resolve().parent.parent
# Runnable from a checkout without installing the package; the stand-in server lives in tests/.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_openai_server import FakeOpenAIServer, solid_page_image  # noqa: E402

from deepocr_loaders.engines.base import PageInput  # noqa: E402
from deepocr_loaders.engines.openai_client import OpenAIEngine  # noqa: E402
from deepocr_loaders.samples import sample_grounded_output  # noqa: E402
from deepocr_loaders.sources import RenderedPage, Source, open_source  # noqa: E402

LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation. "
)


class TinySource(Source):
    """Synthetic small images: measures the client's per-request overhead only."""

    kind = "image"

    def __init__(self, count: int) -> None:
        super().__init__("tiny", "0" * 64, count)

    def page_label(self, index: int) -> str:
        return str(index + 1)

    def page_size(self, index: int) -> tuple[float, float]:
        return 612.0, 792.0

    def render(self, index: int, dpi: float = 144) -> RenderedPage:
        return RenderedPage(index, str(index + 1), solid_page_image(index), 612.0, 792.0, dpi)

    def _release(self) -> None:
        pass


def text_pdf(pages: int) -> bytes:
    """A4 pages of dense text, different on every page."""
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=595, height=842)
        page.insert_text((56, 60), f"Section {number}: throughput page", fontsize=16)
        page.insert_textbox(pymupdf.Rect(56, 80, 540, 800), LOREM * 14, fontsize=9)
    data = bytes(doc.tobytes())
    doc.close()
    return data


def run_once(
    source: Source, pages: int, base_url: str, concurrency: int, image_format: str
) -> tuple[float, int]:
    """Seconds for ``pages`` pages through a fresh engine, and how many pages came back ok."""
    inputs = (PageInput(source, i, str(i + 1), *source.page_size(i), dpi=144) for i in range(pages))
    engine = OpenAIEngine(
        "bench", base_url=base_url, concurrency=concurrency, image_format=image_format
    )
    with engine:
        start = time.perf_counter()
        ok = sum(page.ok for page in engine.run(inputs))
        return time.perf_counter() - start, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1, help="server seconds per request")
    parser.add_argument("--concurrency", default="1,2,4,8,16,32,64")
    parser.add_argument("--inputs", default="tiny,page,jpeg")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    kinds = args.inputs.split(",")

    sources: dict[str, Source] = {}
    if "tiny" in kinds:
        sources["tiny"] = TinySource(args.pages)
    for kind in ("page", "jpeg"):
        if kind in kinds:
            sources[kind] = open_source(text_pdf(args.pages), name="bench.pdf")

    print(
        f"{args.pages} pages per run, {args.latency * 1000:.0f} ms server latency per request; "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}\n"
    )
    header = ["concurrency", "ideal pages/s"]
    header += [f"{kind} pages/s" for kind in sources] + [
        f"{kind} peak in flight" for kind in sources
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    with FakeOpenAIServer({None: sample_grounded_output()}, key_of=lambda body: None) as server:
        server.state.latency = args.latency
        for c in levels:
            rates, peaks = [], []
            for kind, source in sources.items():
                server.state.max_in_flight = 0
                fmt = "jpeg" if kind == "jpeg" else "png"
                seconds, ok = run_once(source, args.pages, server.base_url, c, fmt)
                if ok != args.pages:
                    raise SystemExit(f"only {ok}/{args.pages} pages ok at concurrency {c}")
                rates.append(f"{args.pages / seconds:.1f}")
                peaks.append(str(server.max_in_flight))
            ideal = f"{min(c, args.pages) / args.latency:.0f}"
            print("| " + " | ".join([str(c), ideal, *rates, *peaks]) + " |", flush=True)
    for source in sources.values():
        source.close()


if __name__ == "__main__":
    main()
