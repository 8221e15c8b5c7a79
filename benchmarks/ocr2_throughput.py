"""DeepSeek-OCR-2 throughput: the one-page loop (what the reference ``infer()`` does) vs the
batched engine, on a model built from config values with random weights (no hub download).

Usage::

    python benchmarks/ocr2_throughput.py --size real            # on a CUDA GPU
    python benchmarks/ocr2_throughput.py --size tiny            # CPU smoke test (CI)
    python benchmarks/ocr2_throughput.py --size real --batch-sizes 1,8,16,32 --new-tokens 1000

Every page generates exactly ``--new-tokens`` tokens (``min_new_tokens = max_new_tokens``), so
random weights cost what a real dense page costs. Pages are letter-size PDF pages rendered at
144 dpi (1224 x 1584 px: 6 tiles + the global view = 1121 image tokens in "gundam" mode).
Prints a Markdown table: pages/s, generated tokens/s, speed-up over the loop, the share of
wall time spent inside ``generate`` (GPU busy, roughly) and peak GPU memory.
"""

from __future__ import annotations

import argparse
import platform
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

from deepocr_loaders.engines.base import PageInput, Task, prompt_for
from deepocr_loaders.engines.deepseek_ocr2 import DeepseekOcr2Engine
from deepocr_loaders.engines.hf_loading import plan_device
from deepocr_loaders.engines.ocr2_modes import get_mode
from deepocr_loaders.sources import Source, open_source

# DeepSeek-OCR-2's published configuration (deepseek-community/DeepSeek-OCR-2, config.json):
# DeepSeek-3B-MoE decoder, SAM ViT-B + Qwen2-0.5B-sized encoder.
REAL_TEXT = {
    "vocab_size": 129280,
    "hidden_size": 1280,
    "intermediate_size": 6848,
    "moe_intermediate_size": 896,
    "num_hidden_layers": 12,
    "num_attention_heads": 10,
    "num_key_value_heads": 10,
    "n_routed_experts": 64,
    "n_shared_experts": 2,
    "num_experts_per_tok": 6,
    "n_group": 1,
    "topk_group": 1,
    "topk_method": "greedy",
    "max_position_embeddings": 8192,
    "mlp_layer_types": ["dense"] + ["sparse"] * 11,  # first_k_dense_replace = 1
    "bos_token_id": 0,
    "eos_token_id": 1,
}
REAL_SAM = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "global_attn_indexes": [2, 5, 8, 11],
    "downsample_channels": [512, 896],
}
REAL_ENCODER = {
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "rope_theta": 1000000.0,
    "vocab_size": 1,
}
TINY_TEXT = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "max_position_embeddings": 4096,
    "mlp_layer_types": ["dense", "sparse"],
    "bos_token_id": 0,
    "eos_token_id": 1,
}
TINY_SAM = {
    "hidden_size": 32,
    "output_channels": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "window_size": 16,
    "global_attn_indexes": [],
    "downsample_channels": [32, 48],
}
TINY_ENCODER = {
    "hidden_size": 48,
    "intermediate_size": 96,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1,
}
SPECIALS = ["<image>", "<|grounding|>", "<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"]


def build_processor(vocab_size: int) -> Any:
    """A word-level tokenizer covering every id the model can emit, plus the processor."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import DeepseekOcr2Processor, PreTrainedTokenizerFast
    from transformers.models.deepseek_ocr2.image_processing_pil_deepseek_ocr2 import (
        DeepseekOcr2ImageProcessorPil,
    )

    head = ["<bos>", "<eos>", "<pad>", "<unk>", *SPECIALS]
    words = ["Convert", "the", "document", "to", "markdown", ".", "Free", "OCR"]
    vocab = {t: i for i, t in enumerate(head + words)}
    vocab.update({f"w{i}": i for i in range(len(vocab), vocab_size)})
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=SPECIALS,
    )
    return DeepseekOcr2Processor(image_processor=DeepseekOcr2ImageProcessorPil(), tokenizer=tok)


def build_model(size: str, processor: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """``DeepseekOcr2ForConditionalGeneration`` at real or tiny size, random weights."""
    from transformers import DeepseekOcr2Config, DeepseekOcr2ForConditionalGeneration

    real = size == "real"
    text = dict(REAL_TEXT if real else TINY_TEXT)
    text["pad_token_id"] = processor.tokenizer.pad_token_id
    config = DeepseekOcr2Config(
        vision_config={
            "sam_config": REAL_SAM if real else TINY_SAM,
            "encoder_config": REAL_ENCODER if real else TINY_ENCODER,
        },
        text_config=text,
        image_token_id=processor.image_token_id,
    )
    config._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):  # initialise straight on the GPU: seconds, not minutes
            model = DeepseekOcr2ForConditionalGeneration(config)
        # The config's SAM init (std 1e-10) gives near-zero activations that real weights never
        # have (and float32 denormals, ~100x slower on x86): use torch's per-layer init.
        with torch.no_grad():
            for module in model.model.vision_tower.modules():
                if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                    module.reset_parameters()
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


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


def one_page_loop(
    model: Any, processor: Any, inputs: list[PageInput], new_tokens: int, mode: str
) -> Result:
    """Preprocess one page, generate, next page: the reference ``infer()`` pattern."""
    device = model.device
    prompt = prompt_for(Task.MARKDOWN)
    kwargs = get_mode(mode).processor_kwargs()
    timer = _Timer(model, device)
    _reset_peak(device)
    start = time.perf_counter()
    tokens = 0
    for inp in inputs:
        enc = processor(images=[inp.image], text=[prompt], return_tensors="pt", **kwargs)
        enc = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in enc.items()}
        for key in ("pixel_values", "pixel_values_local"):
            if key in enc:
                enc[key] = enc[key].to(model.dtype)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                eos_token_id=processor.tokenizer.eos_token_id,
                pad_token_id=processor.tokenizer.pad_token_id,
            )
        tokens += out.shape[1] - enc["input_ids"].shape[1]
        inp.release()
    seconds = time.perf_counter() - start
    timer.restore()
    return Result(
        "one-page loop", seconds, len(inputs), tokens, timer.total / seconds, _peak(device)
    )


def batched(
    model: Any,
    processor: Any,
    inputs: list[PageInput],
    new_tokens: int,
    mode: str,
    batch_size: int,
) -> Result:
    engine = DeepseekOcr2Engine(
        model,
        processor=processor,
        mode=mode,
        batch_size=batch_size,
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        retry_truncated=False,  # fixed-length outputs never end in EOS: no retries
    )
    device = model.device
    timer = _Timer(model, device)
    _reset_peak(device)
    start = time.perf_counter()
    pages = 0
    for page in engine.run(inputs, Task.MARKDOWN):
        pages += page.raw_output is not None
        inputs[page.index].release()
    seconds = time.perf_counter() - start
    timer.restore()
    tokens = engine.stats.generated_tokens
    return Result(f"batched, batch {batch_size}", seconds, pages, tokens, timer.total / seconds,
                  _peak(device))  # fmt: skip


def table(results: list[Result]) -> str:
    base = results[0].pages / results[0].seconds
    rows = [
        "| run | pages | seconds | pages/s | tokens/s | vs loop | in generate | peak GPU GiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        pps = r.pages / r.seconds
        peak = "-" if r.peak_gib is None else f"{r.peak_gib:.1f}"
        rows.append(
            f"| {r.name} | {r.pages} | {r.seconds:.1f} | {pps:.2f} | {r.tokens / r.seconds:.0f} "
            f"| {pps / base:.2f}x | {r.busy:.0%} | {peak} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", choices=["tiny", "real"], default="tiny")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--pages", type=int, default=None, help="default: 8 tiny, 64 real")
    ap.add_argument("--new-tokens", type=int, default=None, help="default: 16 tiny, 1000 real")
    ap.add_argument("--batch-sizes", default=None, help="default: 1,2,4,8 tiny; 1,8,16,32 real")
    ap.add_argument("--mode", default="gundam")
    ap.add_argument("--repeat", type=int, default=1, help="runs per row; the fastest is shown")
    args = ap.parse_args(argv)
    real = args.size == "real"
    plan = plan_device(args.device, args.dtype)
    if real and plan.device.type == "cpu":
        print("note: --size real on a CPU is very slow; use a CUDA GPU", file=sys.stderr)
    pages = args.pages or (64 if real else 8)
    new_tokens = args.new_tokens or (1000 if real else 16)
    sizes = [int(b) for b in (args.batch_sizes or ("1,8,16,32" if real else "1,2,4,8")).split(",")]

    torch.manual_seed(0)
    vocab = REAL_TEXT["vocab_size"] if real else TINY_TEXT["vocab_size"]
    processor = build_processor(int(vocab))  # type: ignore[call-overload]
    model = build_model(args.size, processor, plan.device, plan.dtype)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    device_name = (
        torch.cuda.get_device_name(plan.device)
        if plan.device.type == "cuda"
        else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"device: {device_name} | dtype {plan.dtype} | model {args.size} ({params:.2f} B params, "
        f"random weights) | mode {args.mode} | {pages} pages x {new_tokens} new tokens | "
        f"torch {torch.__version__}"
    )
    with open_source(make_pdf(pages), name="benchmark.pdf") as src:
        inputs = page_inputs(src, pages)
        # Warm-up of both paths: first CUDA kernels, allocator, processor caches.
        one_page_loop(model, processor, inputs[:2], min(new_tokens, 4), args.mode)
        batched(model, processor, inputs[:2], min(new_tokens, 4), args.mode, 2)
        runs: list[Callable[[], Result]] = [
            partial(one_page_loop, model, processor, inputs, new_tokens, args.mode)
        ]
        runs += [
            partial(batched, model, processor, inputs, new_tokens, args.mode, b) for b in sizes
        ]
        results = [
            min((run() for _ in range(max(1, args.repeat))), key=lambda r: r.seconds)
            for run in runs
        ]
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
