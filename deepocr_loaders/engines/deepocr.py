"""``engine="deepocr"``: DeepOCR, the open reproduction (DeepEncoder + Qwen2-7B), without VILA.

Loads the released folder layout (``llm/``, ``mm_projector/`` and the vision weights) onto
:mod:`deepocr_loaders.models`; batching, guard and retries come from :mod:`.hf_batched`.
DeepOCR was trained on one instruction, "Free OCR.", and answers in Markdown without grounding
boxes, so the Markdown task uses that prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from . import register_engine
from .base import PROMPTS, Task
from .deepseek_ocr import decoder_attention, tiles_in, v1_mode
from .hf_batched import BatchedVisionEngine

__all__ = ["DEFAULT_MODEL", "DeepOcrEngine"]

#: The release linked from github.com/pkulium/DeepOCR. Its SAM + CLIP weights ship separately
#: (pkulium/sam_clip_ckpt): put them in the folder's ``vision_tower/``.
DEFAULT_MODEL = "pkulium/easy_deepocr"
#: DeepOCR's own configuration tiles a page into at most 6 tiles of 640 (v1's reference: 9).
DEFAULT_MODE = "gundam-6"


@register_engine("deepocr")
class DeepOcrEngine(BatchedVisionEngine):
    """DeepOCR (SAM + CLIP DeepEncoder, linear projector, Qwen2 decoder), batched and guarded.

    ``model``: hub id or a local folder in the released layout. ``mode``: as for
    ``"deepseek-ocr"`` (default ``gundam-6``). The Markdown task is sent as DeepOCR's training
    prompt "Free OCR."; other tasks and free-text prompts are sent as given.
    """

    default_model: ClassVar[str] = DEFAULT_MODEL
    cpu_keys: ClassVar[frozenset[str]] = frozenset({"tile_grid"})

    def _load_folder(self, folder: Path, processor: Any) -> tuple[Any, Any]:
        from ..models.loading import load_deepocr

        model, proc = load_deepocr(
            folder,
            dtype=self.plan.dtype,
            device=self.plan.device,
            attn_implementation=decoder_attention(self.plan.attn_implementation),
        )
        return model, processor or proc

    def _get_mode(self, mode: Any) -> Any:
        return v1_mode(mode, DEFAULT_MODE)

    def _encode(self, image: Any, prompt: str) -> Mapping[str, Any]:
        if prompt == PROMPTS[Task.MARKDOWN]:
            prompt = PROMPTS[Task.FREE_OCR]
        return dict(self.processor(images=[image], text=[prompt], mode=self.mode))

    def _count_tiles(self, encoded: Mapping[str, Any]) -> int:
        return tiles_in(encoded)
