"""``engine="deepseek-ocr"``: DeepSeek-OCR (v1) on our own modules, batched and guarded.

DeepSeek-OCR's reference code needs ``trust_remote_code`` and an old transformers; this engine
runs the same checkpoint (``deepseek-ai/DeepSeek-OCR`` safetensors, by key mapping) on
:mod:`deepocr_loaders.models`, with the batching, guard and retries of :mod:`.hf_batched`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from ..errors import EngineError
from . import register_engine
from .hf_batched import BatchedVisionEngine

__all__ = ["DEFAULT_MODEL", "DeepseekOcrEngine", "decoder_attention"]

DEFAULT_MODEL = "deepseek-ai/DeepSeek-OCR"
#: The reference's default: 640-pixel tiles plus a 1024 global view.
DEFAULT_MODE = "gundam"


def decoder_attention(plan: str | dict[str, str] | None) -> str:
    """The decoder's attention implementation from a device plan's setting (the vision tower
    always runs SDPA: SAM's folded attention calls it without a mask, so it can pick a fused
    kernel)."""
    if isinstance(plan, dict):
        return plan.get("text_config") or plan.get("") or "sdpa"
    return plan or "sdpa"


@register_engine("deepseek-ocr")
class DeepseekOcrEngine(BatchedVisionEngine):
    """DeepSeek-OCR v1 (SAM + CLIP-L DeepEncoder, 3B MoE decoder) with batched generation.

    ``model``: hub id (default ``deepseek-ai/DeepSeek-OCR``) or a local folder in the released
    layout; never loaded with remote code. ``mode``: ``tiny``, ``small``, ``base``, ``large``,
    ``gundam`` (default) or ``gundam-6``. The other options are those of
    :class:`.BatchedVisionEngine`.
    """

    default_model: ClassVar[str] = DEFAULT_MODEL
    default_mode: ClassVar[str] = DEFAULT_MODE
    cpu_keys: ClassVar[frozenset[str]] = frozenset({"tile_grid"})

    def _loader(self) -> Callable[..., tuple[Any, Any]]:
        """The folder loader of :mod:`deepocr_loaders.models.loading` for this model."""
        from ..models.loading import load_deepseek_ocr_v1

        return load_deepseek_ocr_v1

    def _load_folder(self, folder: Path, processor: Any) -> tuple[Any, Any]:
        model, proc = self._loader()(
            folder,
            dtype=self.plan.dtype,
            device=self.plan.device,
            attn_implementation=decoder_attention(self.plan.attn_implementation),
        )
        return model, processor or proc

    def _get_mode(self, mode: Any) -> Any:
        from ..models.v1_modes import get_v1_mode

        try:
            return get_v1_mode(self.default_mode if mode is None else mode)
        except ValueError as exc:
            raise EngineError(f"resolution mode: {exc}") from None

    def _encode(self, image: Any, prompt: str) -> Mapping[str, Any]:
        return dict(self.processor(images=[image], text=[prompt], mode=self.mode))

    def _count_tiles(self, encoded: Mapping[str, Any]) -> int:
        # tile_grid (1, 1) means the global view only.
        width, height = (int(v) for v in encoded["tile_grid"][0])
        count = width * height
        return count if count > 1 else 0

    def _largest_page(self) -> tuple[int, int, int]:
        from ..models.v1_modes import largest_page

        tokens, tiles = largest_page(self.mode)
        return tokens, 1 + tiles, max(self.mode.base_size, self.mode.image_size)
