"""Time per call of the repetition guard (``NoRepeatNGramWindowProcessor``) at a real decode
shape: batch 64, DeepSeek's 129,280-token vocabulary, window 90, 30-grams, after 200 generated
tokens, half the rows looping so the guard fires. The guard from whatever checkout is on
``sys.path`` first: run it in an old checkout to compare with an earlier guard.

Usage::

    python benchmarks/guard_speed.py                 # CPU; --device cuda on a GPU
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deepocr_loaders.engines.hf_guard import NoRepeatNGramWindowProcessor


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=129280)
    ap.add_argument("--generated", type=int, default=200)
    ap.add_argument("--calls", type=int, default=100)
    return ap.parse_args(argv)


def run_benchmark(args: argparse.Namespace) -> list[float]:
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    prompt = 600
    ids = torch.randint(0, args.vocab, (args.batch, prompt + args.generated), generator=gen)
    loop = torch.randint(0, args.vocab, (8,), generator=gen)
    half = args.batch // 2
    ids[:half, prompt:] = loop.repeat(args.generated // 8 + 1)[: args.generated]  # looping rows
    ids = ids.to(device)
    scores = torch.randn(args.batch, args.vocab, generator=gen).to(device)
    guard = NoRepeatNGramWindowProcessor(30, 90, prompt_length=prompt)
    times = []
    with torch.inference_mode():
        for i in range(args.calls + 5):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            guard(ids, scores)  # type: ignore[arg-type]
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 5:  # warm-up calls left out
                times.append(1000 * (time.perf_counter() - start))
    print(
        f"device {device} | torch {torch.__version__}, {torch.get_num_threads()} threads | "
        f"batch {args.batch}, vocab {args.vocab}, {args.generated} generated"
    )
    print("| calls | median ms | min ms | fired |")
    print("|---:|---:|---:|---:|")
    print(f"| {args.calls} | {statistics.median(times):.2f} | {min(times):.2f} | {guard.fired} |")
    return times


def main(argv: list[str] | None = None) -> int:
    run_benchmark(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
