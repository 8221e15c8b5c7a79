"""``engine="deepocr"``: DeepOCR, the open reproduction (DeepEncoder + Qwen2-7B), without VILA.

Loads the released folder layout (``llm/``, ``mm_projector/`` and the vision weights) onto
:mod:`deepocr_loaders.models`; everything else is the ``"deepseek-ocr"`` engine's, since the
encoder, preprocessing and page layout are v1's. DeepOCR was trained on one instruction,
"Free OCR.", and answers in Markdown without grounding boxes, so the Markdown task uses that
prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from . import register_engine
from .base import PROMPTS, Task
from .deepseek_ocr import DeepseekOcrEngine

__all__ = ["DEFAULT_MODEL", "DeepOcrEngine"]

#: The release linked from github.com/pkulium/DeepOCR. Its SAM + CLIP weights ship separately
#: (pkulium/sam_clip_ckpt): put them in the folder's ``vision_tower/``.
DEFAULT_MODEL = "pkulium/easy_deepocr"
#: DeepOCR's own configuration tiles a page into at most 6 tiles of 640 (v1's reference: 9).
DEFAULT_MODE = "gundam-6"


@register_engine("deepocr")
class DeepOcrEngine(DeepseekOcrEngine):
    """DeepOCR (SAM + CLIP DeepEncoder, linear projector, Qwen2 decoder), batched and guarded.

    ``model``: hub id or a local folder in the released layout. ``mode``: as for
    ``"deepseek-ocr"`` (default ``gundam-6``). The Markdown task is sent as DeepOCR's training
    prompt "Free OCR."; other tasks and free-text prompts are sent as given.
    """

    default_model: ClassVar[str] = DEFAULT_MODEL
    default_mode: ClassVar[str] = DEFAULT_MODE

    def _loader(self) -> Callable[..., tuple[Any, Any]]:
        from ..models.loading import load_deepocr

        return load_deepocr

    def _encode(self, image: Any, prompt: str) -> Mapping[str, Any]:
        if prompt == PROMPTS[Task.MARKDOWN]:
            prompt = PROMPTS[Task.FREE_OCR]
        return super()._encode(image, prompt)
