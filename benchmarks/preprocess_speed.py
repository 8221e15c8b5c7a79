"""How fast the model engines' image preprocessing runs on this machine's CPU, and how it scales
with worker threads: the rate the GPU can be fed at (``preprocess_workers``).

Usage::

    python benchmarks/preprocess_speed.py                       # all three families
    python benchmarks/preprocess_speed.py --threads 1,4,8,16 --pages 32

Pages are letter-size PDF pages rendered at 144 dpi (1224 x 1584 px), preprocessed by each
family's processor in its engine's default mode (OCR-2 "gundam": global view + 6 tiles), the
way the engine's worker threads do it. Prints pages/s per thread count and the speed-up over one
thread; at 8 pages/s of GPU throughput the engine needs a row at or above 8.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_configs import MODELS, build_bench_model
from ocr2_throughput import make_pdf

from deepocr_loaders.sources import open_source


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated families")
    ap.add_argument("--threads", default=None, help="comma-separated (default: 1,2,4,8 <= cores)")
    ap.add_argument("--pages", type=int, default=16, help="pages per measurement")
    return ap.parse_args(argv)


def measure(encode: object, images: list[object], threads: int) -> float:
    """Pages per second with ``threads`` workers (images reused round-robin)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(encode, images))  # type: ignore[arg-type]
    return len(images) / (time.perf_counter() - start)


def run_benchmark(args: argparse.Namespace) -> list[tuple[str, int, float]]:
    cores = os.cpu_count() or 1
    wanted = args.threads or ",".join(str(t) for t in (1, 2, 4, 8) if t <= max(1, cores))
    threads = [int(t) for t in wanted.split(",")]
    print(f"{cores} cores | torch {torch.__version__} | {args.pages} letter pages at 144 dpi")
    rows: list[tuple[str, int, float]] = []
    with open_source(make_pdf(4), name="preprocess.pdf") as src:
        pages = [src.render(i % 4, dpi=144).image for i in range(args.pages)]
        for name in args.models.split(","):
            bench = build_bench_model(name, "tiny", torch.device("cpu"), torch.float32)  # type: ignore[arg-type]
            mode = bench.default_mode

            def encode(image: object, bench: object = bench, mode: str = mode) -> object:
                return bench.encode(image, mode)  # type: ignore[attr-defined]

            encode(pages[0])  # warm-up: caches, first allocations
            for t in threads:
                rows.append((name, t, measure(encode, pages, t)))  # type: ignore[arg-type]
    print("| model | threads | pages/s | vs 1 thread |")
    print("|---|---:|---:|---:|")
    base: dict[str, float] = {}
    for name, t, rate in rows:
        base.setdefault(name, rate)
        print(f"| {name} | {t} | {rate:.2f} | {rate / base[name]:.2f}x |")
    return rows


def main(argv: list[str] | None = None) -> int:
    run_benchmark(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
