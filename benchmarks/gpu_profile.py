"""Where a model engine's GPU time goes: the vision tower per page at several group sizes, and
``torch.profiler`` tables of one vision forward, one static ``generate`` and one continuous run,
on a model built from config values with random weights (no hub download).

Usage (on a CUDA GPU; ``--size tiny`` is a CPU smoke run of the script itself)::

    python benchmarks/gpu_profile.py --size real --out out/profile

Each stage writes its file under ``--out`` the moment it ends (a device run may be cut short):
``vision.txt`` (ms per page for 1, 4 and ``vision_batch`` views' worth of pages, median of three,
plus the wall time against the summed kernel time: a wall far above the kernels means the
stage waits on the host, not on the GPU), ``prof_vision.txt``, ``prof_static.txt`` and
``prof_continuous.txt`` (the profiler's top operators by device time, then by host time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_configs import MODELS, build_bench_model
from ocr2_throughput import _sync, make_pdf, page_inputs

from deepocr_loaders.engines.base import Task, prompt_for
from deepocr_loaders.engines.hf_loading import plan_device
from deepocr_loaders.sources import open_source


def _timed(fn: Callable[[], Any], device: torch.device, repeat: int = 3) -> float:
    """Median wall seconds of ``fn`` over ``repeat`` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeat):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _profiled(fn: Callable[[], Any], device: torch.device, title: str, rows: int) -> str:
    """``fn`` under the profiler: wall time, summed kernel time, kernel count, top operators."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    fn()  # warm-up outside the profile
    _sync(device)
    t = time.perf_counter()
    with profile(activities=activities) as prof:
        fn()
        _sync(device)
    wall = time.perf_counter() - t
    events = prof.key_averages()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    kernel_ms = sum(e.device_time_total for e in kernels) / 1000 if kernels else 0.0
    device_key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return (
        f"## {title}\nwall {wall * 1000:.1f} ms under the profiler | kernels {len(kernels)}, "
        f"summed {kernel_ms:.1f} ms\n\n"
        f"### by device time\n{events.table(sort_by=device_key, row_limit=rows)}\n\n"
        f"### by host time\n{events.table(sort_by='self_cpu_time_total', row_limit=rows)}\n"
    )


def _stage(out: Path, name: str, fn: Callable[[], str]) -> None:
    started = time.perf_counter()
    try:
        text = fn()
    except Exception:
        text = f"{name} failed:\n{traceback.format_exc()}"
    (out / f"{name}.txt").write_text(text, encoding="utf-8")
    print(f"== {name} ({time.perf_counter() - started:.1f} s)\n{text[:3000]}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", choices=MODELS, default="deepseek-ocr-2")
    ap.add_argument("--size", choices=["tiny", "real"], default="tiny")
    ap.add_argument("--out", default="out/profile")
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--rows", type=int, default=25, help="operators per profiler table")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_device("auto", "auto")
    dev = plan.device
    torch.manual_seed(0)
    bench = build_bench_model(args.model, args.size, dev, plan.dtype)
    mode = bench.default_mode

    def engine(**kw: Any) -> Any:
        return bench.engine_cls(
            bench.model,
            processor=bench.processor,
            mode=mode,
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            retry_truncated=False,
            **kw,
        )

    static = engine(batch_size=16)
    prompt = prompt_for(Task.MARKDOWN, query=None)
    with open_source(make_pdf(32), name="profile.pdf") as src:
        inputs = page_inputs(src, 32)
        prepared = [p for p in static._prepared(inputs[:16], prompt) if p.error is None]
        per_forward = max(1, static.vision_batch // (1 + prepared[0].tiles))

        def embed(pages: list[Any]) -> Callable[[], Any]:
            def run() -> Any:
                ids, _ = static._collate_ids(pages)
                with torch.inference_mode():
                    return static._prompt_embeddings(pages, ids)

            return run

        def vision() -> str:
            lines = [
                f"{args.model} {args.size} {plan.dtype} on {dev} | mode {mode} | "
                f"{1 + prepared[0].tiles} views/page, {prepared[0].image_tokens} image tokens | "
                f"vision_batch {static.vision_batch} views",
                "| pages per call | ms per page |",
                "|---:|---:|",
            ]
            for n in sorted({1, 4, per_forward, min(16, 2 * per_forward)}):
                seconds = _timed(embed(prepared[:n]), dev)
                lines.append(f"| {n} | {1000 * seconds / n:.1f} |")
            return "\n".join(lines)

        _stage(out, "vision", vision)
        _stage(
            out,
            "prof_vision",
            lambda: _profiled(embed(prepared[:per_forward]), dev, "vision", args.rows),
        )
        settings = replace(static.guard, max_new_tokens=args.new_tokens)

        def static_generate() -> Any:
            return static._generate(prepared, settings)

        _stage(
            out,
            "prof_static",
            lambda: _profiled(
                static_generate, dev, f"static generate, 16 pages x {args.new_tokens}", args.rows
            ),
        )
        cont = engine(batch_size=16, scheduler="continuous")

        def continuous() -> Any:
            return [p for p in cont.run(inputs[16:32], Task.MARKDOWN)]

        _stage(
            out,
            "prof_continuous",
            lambda: (
                _profiled(
                    continuous,
                    dev,
                    f"continuous, 16 slots, 16 pages x {args.new_tokens}",
                    args.rows,
                )
                + f"\ngraph replays {cont.stats.graph_replays}, "
                f"decode steps {cont.stats.decode_steps}"
            ),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
