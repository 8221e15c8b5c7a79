"""SAM attention: transformers' SDPA class (dense ``[views, heads, L, L]`` rel-pos bias mask)
vs ``FoldedSamAttention`` (bias folded into queries and keys, no mask), one ViT-B layer
(hidden 768, 12 heads) with random weights and rel-pos tables.

Usage::

    python benchmarks/sam_attention.py                          # CPU, fp32, 1 view
    python benchmarks/sam_attention.py --device cuda --views 8  # bf16 on a GPU
    python benchmarks/sam_attention.py --cases window-14 --repeat 1

Cases: ``global-1024`` (a 1024 px view attended globally: 64x64 grid, L = 4096),
``global-768`` (a 768 px tile: 48x48 on the table trained for 64, interpolated) and
``window-14`` (a 1024 px view in 14x14 windows: padded to 70x70 = 25 windows of L = 196).

Prints a Markdown table per view: the attention call's working memory and its time for both
forwards, and the largest difference between their outputs. Memory on CUDA is measured
(``torch.cuda.max_memory_allocated`` above what was allocated before the call); on a CPU it is
computed, not measured: the bias tensor the unfolded path allocates vs the columns the fold adds
to q, k (and v's padding). On CUDA it also lists which fused SDPA kernels accept the folded shapes.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# Runnable from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import (
    DeepseekOcr2SamVisionConfig,
)
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2SamVisionSdpaAttention,
)

from deepocr_loaders.models.sam_attention import (
    FoldedSamAttention,
    folded_head_dim,
    pads_value,
)

HIDDEN, HEADS, IMAGE, PATCH = 768, 12, 1024, 16


@dataclass(frozen=True)
class Case:
    name: str
    window: int  # the layer's window size; 0 = global attention
    grid: int  # side of the grid one attention call sees (a window, or the whole view)
    calls_per_view: int  # windows per view (1 for global attention)


CASES = {
    "global-1024": Case("global-1024", 0, 64, 1),
    "global-768": Case("global-768", 0, 48, 1),
    # 64 patches per side padded to 70 = 5 windows of 14 per side.
    "window-14": Case("window-14", 14, 14, 25),
}


@dataclass
class Row:
    case: str
    grid: int
    length: int
    head_dim: int  # folded q'/k' width
    unfolded_mib: float  # per view
    folded_mib: float  # per view
    unfolded_ms: float  # per view
    folded_ms: float  # per view
    max_diff: float


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _best_ms(fn: Callable[[], torch.Tensor], device: torch.device, repeat: int) -> float:
    """Best-of-``repeat`` milliseconds of ``fn`` (best, to damp scheduler noise)."""
    best = float("inf")
    for _ in range(repeat):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _peak_mib(fn: Callable[[], torch.Tensor], device: torch.device) -> float | None:
    """CUDA memory the call allocates beyond what was live before it (MiB); None on a CPU."""
    if device.type != "cuda":
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    _sync(device)
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def build_layers(
    case: Case, device: torch.device, dtype: torch.dtype
) -> tuple[nn.Module, nn.Module]:
    """Transformers' SDPA attention and a folded copy with the same random weights."""
    config = DeepseekOcr2SamVisionConfig(
        hidden_size=HIDDEN,
        num_attention_heads=HEADS,
        image_size=IMAGE,
        patch_size=PATCH,
        qkv_bias=True,
        use_rel_pos=True,
    )
    unfolded = DeepseekOcr2SamVisionSdpaAttention(config, case.window)
    with torch.no_grad():
        unfolded.qkv.weight.normal_(0.0, 0.05)
        unfolded.rel_pos_h.normal_(0.0, 0.5)  # zero-initialised tables would hide the bias
        unfolded.rel_pos_w.normal_(0.0, 0.5)
    folded = FoldedSamAttention(config, case.window)
    folded.load_state_dict(unfolded.state_dict())
    return unfolded.to(device, dtype).eval(), folded.to(device, dtype).eval()


def computed_mib(
    case: Case, batch: int, element_size: int, device: torch.device
) -> tuple[float, float]:
    """What each path adds on top of plain q, k, v (both copy those once), for ``batch`` calls:
    the unfolded ``[batch, heads, L, L]`` bias mask vs the folded q'/k' extra columns and v's
    padding."""
    length = case.grid * case.grid
    head_dim = HIDDEN // HEADS
    width = folded_head_dim(head_dim, (case.grid, case.grid))
    bias = batch * HEADS * length * length * element_size
    extra = 2 * (width - head_dim)
    if pads_value(device.type, head_dim, width):
        extra += width - head_dim
    folded = batch * HEADS * length * extra * element_size
    return bias / 2**20, folded / 2**20


def probe_cuda_backends(case: Case, batch: int, dtype: torch.dtype) -> str:
    """Which fused CUDA SDPA kernels run the folded shapes, with v padded and unpadded."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    length = case.grid * case.grid
    head_dim = HIDDEN // HEADS
    width = folded_head_dim(head_dim, (case.grid, case.grid))
    q = torch.randn(batch, HEADS, length, width, device="cuda", dtype=dtype)
    parts = []
    for v_width in sorted({width, head_dim}):
        v = torch.randn(batch, HEADS, length, v_width, device="cuda", dtype=dtype)
        ok = []
        for backend in (
            SDPBackend.FLASH_ATTENTION,
            SDPBackend.EFFICIENT_ATTENTION,
            SDPBackend.CUDNN_ATTENTION,
        ):
            try:
                with sdpa_kernel([backend]):
                    F.scaled_dot_product_attention(q, q, v, scale=head_dim**-0.5)
                ok.append(backend.name.lower())
            except RuntimeError:
                pass
        parts.append(f"q/k {width}, v {v_width}: {', '.join(ok) or 'none (math only)'}")
    return f"{case.name}: " + "; ".join(parts)


def run_case(case: Case, views: int, device: torch.device, dtype: torch.dtype, repeat: int) -> Row:
    torch.manual_seed(0)
    unfolded, folded = build_layers(case, device, dtype)
    batch = views * case.calls_per_view
    hidden = torch.randn(batch, case.grid, case.grid, HIDDEN, device=device, dtype=dtype)

    def run_unfolded() -> torch.Tensor:
        return unfolded(hidden)[0]

    def run_folded() -> torch.Tensor:
        return folded(hidden)[0]

    with torch.inference_mode():
        want, got = run_unfolded(), run_folded()  # also the warm-up
        diff = float((want.float() - got.float()).abs().max())
        del want, got
        unfolded_ms = _best_ms(run_unfolded, device, repeat) / views
        folded_ms = _best_ms(run_folded, device, repeat) / views
        peak_u, peak_f = _peak_mib(run_unfolded, device), _peak_mib(run_folded, device)
    if peak_u is None or peak_f is None:
        peak_u, peak_f = computed_mib(case, batch, hidden.element_size(), device)
    length = case.grid * case.grid
    return Row(
        case.name,
        case.grid,
        length,
        folded_head_dim(HIDDEN // HEADS, (case.grid, case.grid)),
        peak_u / views,
        peak_f / views,
        unfolded_ms,
        folded_ms,
        diff,
    )


def table(rows: list[Row], measured: bool) -> str:
    kind = "peak" if measured else "computed"
    lines = [
        f"| case | grid | L | q'/k' dim | unfolded MiB ({kind}) | folded MiB ({kind}) "
        "| unfolded ms | folded ms | speed-up | max abs diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.case} | {r.grid}x{r.grid} | {r.length} | {r.head_dim} | {r.unfolded_mib:.1f} "
            f"| {r.folded_mib:.1f} | {r.unfolded_ms:.1f} | {r.folded_ms:.1f} "
            f"| {r.unfolded_ms / r.folded_ms:.2f}x | {r.max_diff:.2g} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu or cuda")
    ap.add_argument("--views", type=int, default=1, help="1024 px views (or 768 px tiles) per call")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per row; the fastest counts")
    return ap.parse_args(argv)


def run_benchmark(args: argparse.Namespace) -> list[Row]:
    """Time and size both forwards for every case; print and return the rows."""
    name = (
        args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    )
    device = torch.device(name)
    # bf16 is what runs on a GPU; the CPU runs fp32 (its bf16 matmuls are slow and not the
    # deployment target).
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cases = [CASES[c] for c in args.cases.split(",")]
    device_name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"device: {device_name} | dtype {dtype} | {args.views} view(s) | hidden {HIDDEN}, "
        f"{HEADS} heads | torch {torch.__version__}"
    )
    rows = [run_case(c, args.views, device, dtype, max(1, args.repeat)) for c in cases]
    measured = device.type == "cuda"
    print(table(rows, measured))
    if measured:
        print("MiB: torch.cuda.max_memory_allocated during the call, minus what was live before.")
        for case in cases:
            print(probe_cuda_backends(case, args.views * case.calls_per_view, dtype))
    else:
        print(
            "MiB on CPU are computed, not measured: unfolded = the [views, heads, L, L] bias mask "
            "it allocates; folded = the columns the fold adds to q and k, plus v's zero padding "
            "to their width (the fused CPU kernel wants equal head dims)."
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    run_benchmark(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
