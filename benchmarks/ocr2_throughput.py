"""Throughput of the DeepSeek-OCR family engines: the one-page loop (what the reference
``infer()`` does) vs our batched engine, on a model built from config values with random
weights (no hub download).

Usage::

    python benchmarks/ocr2_throughput.py --size real            # on a CUDA GPU
    python benchmarks/ocr2_throughput.py --size tiny            # CPU smoke test (CI)
    python benchmarks/ocr2_throughput.py --size real --batch-sizes 1,8,16,32 --new-tokens 1000
    python benchmarks/ocr2_throughput.py --model deepseek-ocr --size real   # v1, 3.3 B MoE
    python benchmarks/ocr2_throughput.py --model deepocr --size real        # + Qwen2-7B
    python benchmarks/ocr2_throughput.py --model deepseek-ocr --size real --params-only

``--model``: ``deepseek-ocr-2`` (default, ``DeepseekOcr2Engine``), ``deepseek-ocr`` (v1,
``DeepseekOcrEngine``) or ``deepocr`` (``DeepOcrEngine``); the configs are in
``model_configs.py``. Every page generates exactly ``--new-tokens`` tokens
(``min_new_tokens = max_new_tokens``), so random weights cost what a real dense page costs.
Pages are letter-size PDF pages rendered at 144 dpi (1224 x 1584 px; OCR-2 "gundam": 6 tiles +
the global view = 1121 image tokens). ``--mode`` defaults to the engine's own default
(``gundam``; DeepOCR: ``gundam-6``).
Prints a Markdown table: pages/s, generated tokens/s, speed-up over the loop, the share of
wall time the device is busy, and a stage breakdown of the batched rows from the engine's clock
(``EngineStats``): preprocessing (workers' CPU seconds per page), the time the engine waited
for preprocessed pages, vision and prefill per page, the mean decode step, peak GPU memory
beyond the weights against the memory plan's figure, and failed pages. ``--batch-sizes``
takes ``plan`` for the batch the memory plan chooses. ``--jsonl PATH`` appends each row as one
JSON line the moment it is measured; ``--deadline S`` skips rows that would start after S
seconds (device runs with a fixed budget). The engine folds SAM's attention on the model it is
given, so after the warm-up both paths run the folded attention.

``--lengths realistic`` gives every page its own output length instead of a fixed one, drawn
(seeded) from a log-normal with median ``--new-tokens`` (default 800 at real size), 90th
percentile 2.5x the median (2,000) and a cap of 5.12x (4,096): the spread issue #15 gives for
real DeepSeek-OCR pages (100 to ~4,000 tokens per page; the figures are the issue's, not
measured here). Each page then ends exactly there (``exact_lengths``), so a static batch runs
until its longest page ends, as it would on real pages. ``--schedulers static,continuous``
runs each batch size with both schedulers; the rows add the mean slot occupancy of the
continuous ones.
``--params-only`` builds the model on the ``meta`` device (shapes only, no memory) and prints
its parameter count.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pymupdf
import torch

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_configs import MODELS, BenchModel, build_bench_model, count_params

from deepocr_loaders.engines.base import PageInput, Task
from deepocr_loaders.engines.hf_loading import plan_device
from deepocr_loaders.sources import Source, open_source


def make_pdf(pages: int) -> bytes:
    doc = pymupdf.open()
    for n in range(pages):
        page = doc.new_page(width=612, height=792)
        page.insert_text((72, 72), f"Benchmark page {n + 1}", fontsize=18)
        for line in range(40):
            page.insert_text((72, 110 + 16 * line), f"Line {line} of dense text " * 3, fontsize=9)
    return bytes(doc.tobytes())


def page_inputs(src: Source, count: int) -> list[PageInput]:
    return [PageInput(src, i, src.page_label(i), *src.page_size(i), dpi=144) for i in range(count)]


@dataclass
class Result:
    name: str
    seconds: float
    pages: int
    tokens: int
    busy: float
    peak_gib: float | None
    batch: int | None = None
    failed: int = 0
    preprocess_s: float = 0.0
    wait_s: float = 0.0
    vision_s: float = 0.0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    decode_steps: int = 0
    plan_gib: float | None = None
    plan_line: str = ""
    scheduler: str = "static"
    occupancy: float | None = None
    graph_replays: int = 0
    """Decode steps replayed from a captured CUDA graph (continuous on CUDA; 0: eager)."""

    @property
    def vision_prefill_ms(self) -> float:
        """Vision + prefill per page, milliseconds."""
        return 1000 * (self.vision_s + self.prefill_s) / max(self.pages, 1)

    @property
    def step_ms(self) -> float:
        """Mean decode step (one token for every page of a batch), milliseconds."""
        return 1000 * self.decode_s / max(self.decode_steps, 1)


class _Timer:
    """Wraps ``model.generate`` to add up the time spent inside it."""

    def __init__(self, model: Any, device: torch.device) -> None:
        self.model, self.device, self.total = model, device, 0.0
        self.real: Callable[..., Any] = model.generate
        model.generate = self

    def __call__(self, **kwargs: Any) -> Any:
        _sync(self.device)
        t = time.perf_counter()
        out = self.real(**kwargs)
        _sync(self.device)
        self.total += time.perf_counter() - t
        return out

    def restore(self) -> None:
        self.model.generate = self.real


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


def _allocated(device: torch.device) -> float:
    return torch.cuda.memory_allocated() / 2**30 if device.type == "cuda" else 0.0


def one_page_loop(bench: BenchModel, inputs: list[PageInput], new_tokens: int, mode: str) -> Result:
    """Preprocess one page, generate, next page: the reference ``infer()`` pattern."""
    model, tokenizer = bench.model, bench.processor.tokenizer
    device = model.device
    timer = _Timer(model, device)
    _reset_peak(device)
    start = time.perf_counter()
    tokens = 0
    for inp in inputs:
        enc: dict[str, Any] = {}
        for key, value in bench.encode(inp.image, mode).items():
            if not isinstance(value, torch.Tensor) or key in bench.engine_cls.cpu_keys:
                enc[key] = value  # host-side counts (tile grid), as the engine keeps them
            elif value.is_floating_point():
                enc[key] = value.to(device, model.dtype)
            else:
                enc[key] = value.to(device)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        tokens += out.shape[1] - enc["input_ids"].shape[1]
        inp.release()
    seconds = time.perf_counter() - start
    timer.restore()
    return Result(
        "one-page loop", seconds, len(inputs), tokens, timer.total / seconds, _peak(device)
    )


def realistic_lengths(pages: int, median: int, seed: int = 0) -> dict[int, int]:
    """Per page, a generated-token count from a log-normal with the given median, its 90th
    percentile at 2.5x the median and a cap of 5.12x (see the module docstring)."""
    rng = random.Random(seed)
    sigma = math.log(2.5) / 1.2816  # z of the 90th percentile
    cap = int(5.12 * median)
    return {
        i: max(2, min(cap, round(rng.lognormvariate(math.log(median), sigma))))
        for i in range(pages)
    }


def batched(
    bench: BenchModel,
    inputs: list[PageInput],
    new_tokens: int,
    mode: str,
    batch_size: int | None,
    scheduler: str = "static",
    lengths: dict[int, int] | None = None,
) -> Result:
    """The engine over ``inputs``; ``batch_size=None``: the memory plan's choice; ``lengths``:
    each page's exact output length (else every page makes ``new_tokens``)."""
    device = bench.model.device
    _reset_peak(device)
    weights = _allocated(device)
    budget = max(lengths.values()) if lengths else new_tokens
    engine = bench.engine_cls(
        bench.model,
        processor=bench.processor,
        mode=mode,
        batch_size=batch_size,
        max_new_tokens=budget,
        min_new_tokens=None if lengths else new_tokens,
        exact_lengths=lengths,
        scheduler=scheduler,
        retry_truncated=False,  # forced lengths: no retries
    )
    timer = _Timer(bench.model, device)
    start = time.perf_counter()
    pages = failed = 0
    for page in engine.run(inputs, Task.MARKDOWN):
        pages += page.raw_output is not None
        failed += page.status.value == "failed"
        inputs[page.index].release()
    seconds = time.perf_counter() - start
    timer.restore()
    s = engine.stats
    peak = _peak(device)
    plan = engine.memory_plan
    occupancy = s.slot_steps_busy / s.slot_steps if s.slot_steps else None
    label = "continuous" if scheduler == "continuous" else "batched"
    return Result(
        f"{label}, batch {engine.batch_size}" + ("" if batch_size else " (plan)"),
        seconds,
        pages,
        s.generated_tokens,
        min(1.0, (s.vision_s + s.prefill_s + s.decode_s) / seconds),
        None if peak is None else peak - weights,
        batch=engine.batch_size,
        failed=failed,
        preprocess_s=s.preprocess_s,
        wait_s=s.wait_s,
        vision_s=s.vision_s,
        prefill_s=s.prefill_s,
        decode_s=s.decode_s,
        decode_steps=s.decode_steps,
        plan_gib=None if plan is None else plan.planned_peak / 2**30,
        plan_line="" if plan is None else plan.describe(),
        scheduler=scheduler,
        occupancy=occupancy,
        graph_replays=s.graph_replays,
    )


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(results: list[Result]) -> str:
    base = results[0].pages / results[0].seconds
    rows = [
        "| run | pages | seconds | pages/s | tokens/s | vs first | busy | preprocess s/page "
        "| waited s | vision+prefill ms/page | decode step ms | slots busy | peak GiB | plan GiB "
        "| failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        pps = r.pages / r.seconds
        stages = (
            f"{r.preprocess_s / max(r.pages, 1):.3f} | {r.wait_s:.1f} | "
            f"{r.vision_prefill_ms:.0f} | {r.step_ms:.1f}"
            if r.batch is not None
            else "- | - | - | -"
        )
        rows.append(
            f"| {r.name} | {r.pages} | {r.seconds:.1f} | {pps:.2f} | {r.tokens / r.seconds:.0f} "
            f"| {pps / base:.2f}x | {r.busy:.0%} | {stages} "
            f"| {'-' if r.occupancy is None else f'{r.occupancy:.0%}'} | {_gib(r.peak_gib)} "
            f"| {_gib(r.plan_gib)} | {r.failed} |"
        )
    return "\n".join(rows)


def _emit(path: str | None, model: str, result: Result) -> None:
    """Append one row to ``path`` as a JSON line, at once (a device run may be cut short)."""
    if path is None:
        return
    row = {"model": model, **vars(result)}
    row["pages_per_s"] = result.pages / result.seconds
    row["tokens_per_s"] = result.tokens / result.seconds
    row["vision_prefill_ms_per_page"] = result.vision_prefill_ms
    row["decode_step_ms"] = result.step_ms
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", choices=MODELS, default="deepseek-ocr-2")
    ap.add_argument("--size", choices=["tiny", "real"], default="tiny")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--pages", type=int, default=None, help="default: 8 tiny, 64 real")
    ap.add_argument("--new-tokens", type=int, default=None, help="default: 16 tiny, 1000 real")
    ap.add_argument(
        "--batch-sizes",
        default=None,
        help="comma-separated; 'plan' = the memory plan's choice (default: 1,2,4,8 tiny; "
        "1,8,16,32 real)",
    )
    ap.add_argument("--no-loop", action="store_true", help="skip the one-page loop row")
    ap.add_argument(
        "--lengths",
        choices=["fixed", "realistic"],
        default="fixed",
        help="fixed: every page makes --new-tokens; realistic: per-page lengths, median "
        "--new-tokens (see above)",
    )
    ap.add_argument("--schedulers", default="static", help="comma-separated: static, continuous")
    ap.add_argument("--jsonl", default=None, help="append each row to this file as it is measured")
    ap.add_argument("--deadline", type=float, default=None, help="seconds; later rows are skipped")
    ap.add_argument("--mode", default=None, help="default: the engine's (gundam; deepocr gundam-6)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per row; the fastest is shown")
    ap.add_argument(
        "--plan-gib",
        type=float,
        default=None,
        help="build on the meta device, print the memory plan for this many free GiB "
        "(bf16, --new-tokens per page), exit",
    )
    ap.add_argument(
        "--params-only",
        action="store_true",
        help="build on the meta device, print the parameter count, exit",
    )
    return ap.parse_args(argv)


def _count(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 10**8 else f"{n / 1e6:.2f} M"


def params_line(bench: BenchModel, size: str) -> str:
    total, vision = count_params(bench.model)
    return (
        f"model {bench.name} {size}: {_count(total)} params (vision tower {_count(vision)}, "
        f"rest {_count(total - vision)})"
    )


def run_benchmark(args: argparse.Namespace) -> list[Result]:
    """Build the model, warm up, time the loop and each batch size; print and return rows."""
    real = args.size == "real"
    if args.params_only:
        bench = build_bench_model(args.model, args.size, torch.device("meta"), torch.float32)
        print(params_line(bench, args.size))
        return []
    if args.plan_gib is not None:
        bench = build_bench_model(args.model, args.size, torch.device("meta"), torch.bfloat16)
        for scheduler in ("static", "continuous"):
            engine = bench.engine_cls(
                bench.model,
                processor=bench.processor,
                mode=args.mode or bench.default_mode,
                max_new_tokens=args.new_tokens or 4096,
                memory_limit_gb=args.plan_gib,
                scheduler=scheduler,
            )
            assert engine.memory_plan is not None
            print(f"{args.model} {args.size} {scheduler}: {engine.memory_plan.describe()}")
        return []
    plan = plan_device(args.device, args.dtype)
    if real and plan.device.type == "cpu":
        print("note: --size real on a CPU is very slow; use a CUDA GPU", file=sys.stderr)
    pages = args.pages or (64 if real else 8)
    realistic = args.lengths == "realistic"
    new_tokens = args.new_tokens or ((800 if realistic else 1000) if real else 16)
    lengths = realistic_lengths(pages, new_tokens) if realistic else None
    schedulers = args.schedulers.split(",")
    spec = args.batch_sizes or ("1,8,16,32" if real else "1,2,4,8")
    sizes: list[int | None] = [None if b == "plan" else int(b) for b in spec.split(",")]
    torch.manual_seed(0)
    start = time.perf_counter()
    bench = build_bench_model(args.model, args.size, plan.device, plan.dtype)
    built = time.perf_counter() - start
    mode = args.mode or bench.default_mode
    device_name = (
        torch.cuda.get_device_name(plan.device)
        if plan.device.type == "cuda"
        else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"device: {device_name} | dtype {plan.dtype} | {params_line(bench, args.size)}, random "
        f"weights, built in {built:.1f} s | mode {mode} | {pages} pages x "
        + (
            f"realistic lengths (median {new_tokens}, mean "
            f"{sum(lengths.values()) / len(lengths):.0f}, max {max(lengths.values())}) "
            if lengths
            else f"{new_tokens} new tokens "
        )
        + f"| torch {torch.__version__}"
    )
    with open_source(make_pdf(pages), name="benchmark.pdf") as src:
        inputs = page_inputs(src, pages)
        # Warm-up of both paths: first CUDA kernels, allocator, processor caches.
        one_page_loop(bench, inputs[:2], min(new_tokens, 4), mode)
        batched(bench, inputs[:2], min(new_tokens, 4), mode, 2)
        runs: list[Callable[[], Result]] = []
        if not args.no_loop:
            runs.append(partial(one_page_loop, bench, inputs, new_tokens, mode))
        runs += [
            partial(batched, bench, inputs, new_tokens, mode, b, sched, lengths)
            for b in sizes
            for sched in schedulers
        ]
        results = []
        for run in runs:
            if args.deadline is not None and time.perf_counter() - start > args.deadline:
                print(f"deadline of {args.deadline:.0f} s reached: later rows skipped")
                break
            result = min((run() for _ in range(max(1, args.repeat))), key=lambda r: r.seconds)
            results.append(result)
            _emit(args.jsonl, args.model, result)
            if result.plan_line:
                print(f"{result.name}: {result.plan_line}")
    if results:
        print(table(results))
    return results


def main(argv: list[str] | None = None) -> int:
    run_benchmark(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
