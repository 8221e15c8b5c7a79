"""How many pages fit on the device at once: a memory plan from the model's shapes.

The in-process engines used to start at a fixed batch size and halve it on out-of-memory; on a
large GPU that wastes memory, on a small one it costs failed attempts (and each attempt's
vision features). The plan instead adds up what one ``generate`` call holds:

* **fixed**: the activations of one vision micro-batch (``vision_views`` views through SAM and
  the second encoder at once; the rest of a batch's views wait their turn) and a safety margin;
* **per page**: the merged prompt embeddings (held by ``generate`` until it returns), plus the
  larger of two peaks that come one after the other: prefill (the prompt's KV cache and one
  layer's activations over the prompt) and the end of decoding (the KV cache for the prompt and
  the page's whole token budget, and the float32 logits of a step).

``batch_size = (free * headroom - fixed) // per_page``, clamped to ``[1, max_batch]``. The
estimates are deliberately on the high side (activation factors, fp32 logits copies); the
engine's out-of-memory halving remains the safety net when they are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "MemoryPlan",
    "PageShape",
    "TextShape",
    "VisionShape",
    "plan_memory",
    "text_shape",
    "vision_shape",
]

GIB = 1 << 30
#: Live tensors of width ``hidden`` per token inside a SAM block at its peak (residual, norm,
#: qkv, folded q/k, attention output, the 4x MLP), with room for window padding copies.
_VISION_ACTIVATION_FACTOR = 24
#: Live tensors of width ``hidden`` per prompt token in a decoder layer during prefill
#: (residual, norm, q/k/v, attention output), besides the MLP's intermediate ones.
_PREFILL_HIDDEN_FACTOR = 6
#: Copies of a decode step's logits row in float32 (logits, processed scores, the guard's).
_LOGITS_COPIES = 3


@dataclass(frozen=True)
class TextShape:
    """The decoder shapes that set KV-cache and activation sizes."""

    layers: int
    kv_heads: int
    head_dim: int
    hidden: int
    intermediate: int
    """Largest per-token MLP width: the dense MLP, or experts-per-token x expert width."""
    vocab: int
    dtype_bytes: int

    @property
    def kv_bytes_per_token(self) -> int:
        """Keys and values of one token over all layers."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes


@dataclass(frozen=True)
class VisionShape:
    """The SAM stage, where a view's activations peak."""

    hidden: int
    heads: int
    patch: int
    dtype_bytes: int
    folded: bool
    """Relative positions folded into q/k (:mod:`deepocr_loaders.models.sam_attention`): no
    ``[heads, L, L]`` bias or score tensor per view."""

    def bytes_per_view(self, side: int) -> int:
        """Peak activation bytes of one ``side`` x ``side`` view inside SAM."""
        tokens = (side // self.patch) ** 2
        total = tokens * self.hidden * self.dtype_bytes * _VISION_ACTIVATION_FACTOR
        if not self.folded:  # dense bias, scores and probabilities of a global-attention layer
            total += 3 * self.heads * tokens * tokens * self.dtype_bytes
        return total


@dataclass(frozen=True)
class PageShape:
    """The largest page the mode can produce, and its token budget."""

    prompt_tokens: int
    """Image tokens of the largest page plus the prompt's text tokens."""
    new_tokens: int
    views: int
    """Views of the largest page (global view + tiles)."""
    view_side: int
    """Side in pixels of the largest view (the global one)."""


@dataclass(frozen=True)
class MemoryPlan:
    """The plan's decision and the figures behind it (all sizes in bytes)."""

    batch_size: int
    vision_views: int
    free: int
    per_page: int
    kv_per_page: int
    vision: int
    budget: int
    prefill: int = 0
    """Continuous batching: one prefill group's fixed cost."""

    def describe(self) -> str:
        """One line for the debug log and benchmarks."""
        return (
            f"memory plan: {self.free / GIB:.1f} GiB free, {self.budget / GIB:.1f} GiB usable; "
            f"{self.per_page / GIB:.3f} GiB per page (KV cache {self.kv_per_page / GIB:.3f}); "
            f"vision {self.vision_views} views per forward ({self.vision / GIB:.2f} GiB) "
            f"-> batch {self.batch_size}"
        )

    @property
    def planned_peak(self) -> int:
        """Bytes the plan expects a full batch to hold beyond the weights."""
        return self.vision + self.prefill + self.batch_size * self.per_page


def _text_config(config: Any) -> Any:
    for name in ("text_config", "language_config", "llm_config"):
        sub = getattr(config, name, None)
        if sub is not None and not isinstance(sub, dict):
            return sub
    return config


def text_shape(config: Any, dtype: torch.dtype) -> TextShape:
    """The decoder's :class:`TextShape` from a transformers config (or its ``text_config``).

    Args:
        config: the model's config (DeepSeek-OCR-2, our v1/DeepOCR configs, or a text config).
        dtype: the dtype the model runs in (KV cache and activations use it).
    """
    text = _text_config(config)
    heads = int(text.num_attention_heads)
    hidden = int(text.hidden_size)
    head_dim = getattr(text, "head_dim", None) or hidden // heads
    dense = int(getattr(text, "intermediate_size", 0) or 0)
    experts = int(getattr(text, "num_experts_per_tok", 0) or 0)
    expert_width = int(getattr(text, "moe_intermediate_size", 0) or 0)
    shared = int(getattr(text, "n_shared_experts", 0) or 0)
    moe = (experts + shared) * expert_width
    return TextShape(
        layers=int(text.num_hidden_layers),
        kv_heads=int(getattr(text, "num_key_value_heads", None) or heads),
        head_dim=int(head_dim),
        hidden=hidden,
        intermediate=max(dense, moe),
        vocab=int(text.vocab_size),
        dtype_bytes=torch.empty((), dtype=dtype).element_size(),
    )


def vision_shape(config: Any, dtype: torch.dtype, *, folded: bool) -> VisionShape:
    """The SAM stage's :class:`VisionShape` from an OCR-2 config (``vision_config.sam_config``)
    or a DeepEncoder one (``encoder_config``); SAM ViT-B's values when neither says.

    Args:
        config: the model's config.
        dtype: the dtype the vision tower runs in.
        folded: whether the SAM attention runs with folded relative positions.
    """
    hidden, heads, patch = 768, 12, 16
    sam = getattr(getattr(config, "vision_config", None), "sam_config", None)
    encoder = getattr(config, "encoder_config", None)
    if sam is not None:
        hidden, heads = int(sam.hidden_size), int(sam.num_attention_heads)
        patch = int(getattr(sam, "patch_size", patch))
    elif encoder is not None:
        hidden, heads = int(encoder.sam_embed_dim), int(encoder.sam_num_heads)
        patch = int(encoder.sam_patch_size)
    return VisionShape(
        hidden, heads, patch, torch.empty((), dtype=dtype).element_size(), folded=folded
    )


def plan_memory(
    text: TextShape,
    vision: VisionShape,
    page: PageShape,
    *,
    free: int,
    max_batch: int = 256,
    max_vision_views: int = 64,
    headroom: float = 0.85,
    prefill_pages: int | None = None,
) -> MemoryPlan:
    """Choose the batch size and the vision micro-batch for ``free`` bytes of device memory.

    Args:
        text: the decoder's shapes.
        vision: the vision tower's shapes.
        page: the largest page of the mode and its token budget.
        free: device memory free for activations and caches (weights already loaded).
        max_batch: the largest batch the plan may choose.
        max_vision_views: the most views one vision forward may take.
        headroom: the share of ``free`` the plan may use (the allocator fragments the rest).
        prefill_pages: continuous batching: pages prefilled together while the slots' whole
            cache stays allocated. A slot then costs its full KV cache and a step's logits, and
            one prefill group (embeddings, prompt KV, activations) is a fixed cost.
    """
    budget = int(free * headroom)
    per_view = vision.bytes_per_view(page.view_side)
    # Vision runs before prefill, so its peak and the decoder's do not add up fully; still,
    # keep the micro-batch within an eighth of the budget so the KV cache gets the rest.
    vision_views = max(1, min(max_vision_views, budget // 8 // max(per_view, 1)))
    vision_bytes = vision_views * per_view
    prompt = page.prompt_tokens
    kv_prompt = prompt * text.kv_bytes_per_token
    kv = (prompt + page.new_tokens) * text.kv_bytes_per_token
    embeds = prompt * text.hidden * text.dtype_bytes
    # Prefill holds one layer's activations for the whole prompt (plus the boolean 4-D
    # attention mask that left padding needs); decoding holds the full cache and the logits.
    # The two peaks come one after the other, so a page costs the larger of them.
    prefill = (
        prompt * (_PREFILL_HIDDEN_FACTOR * text.hidden + 3 * text.intermediate) * text.dtype_bytes
        + prompt * prompt
    )
    logits = _LOGITS_COPIES * text.vocab * 4
    fixed = vision_bytes
    if prefill_pages is None:
        per_page = embeds + max(kv_prompt + prefill, kv + logits)
    else:
        per_page = kv + logits
        fixed += prefill_pages * (embeds + kv_prompt + prefill)
    batch = (budget - fixed) // per_page
    return MemoryPlan(
        batch_size=int(max(1, min(max_batch, batch))),
        vision_views=int(vision_views),
        free=int(free),
        per_page=int(per_page),
        kv_per_page=int(kv),
        vision=int(vision_bytes),
        budget=budget,
        prefill=int(fixed - vision_bytes),
    )
