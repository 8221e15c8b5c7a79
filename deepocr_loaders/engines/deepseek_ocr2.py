"""``engine="deepseek-ocr-2"``: DeepSeek-OCR-2 on native transformers, batched and guarded.

Batching, the repetition guard, retries and page assembly are shared with the other
in-process engines (:mod:`.hf_batched`); this module says how to load the native
``DeepseekOcr2ForConditionalGeneration`` and preprocess a page with its own processor.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from . import register_engine
from .hf_batched import BatchedVisionEngine, EngineStats
from .hf_loading import load_processor, load_safetensors_model
from .ocr2_modes import DEFAULT_MODE, ResolutionMode, get_mode

__all__ = ["DEFAULT_MODEL", "DeepseekOcr2Engine", "EngineStats"]

#: The native-transformers conversion of deepseek-ai/DeepSeek-OCR-2.
DEFAULT_MODEL = "deepseek-community/DeepSeek-OCR-2"
MODEL_TYPE = "deepseek_ocr2"


@register_engine("deepseek-ocr-2")
class DeepseekOcr2Engine(BatchedVisionEngine):
    """DeepSeek-OCR-2 (``DeepseekOcr2ForConditionalGeneration``) with batched generation.

    ``model``: hub id (default ``deepseek-community/DeepSeek-OCR-2``), a local folder, or an
    already built model instance (then ``processor`` is required). ``mode``: a resolution mode
    of :mod:`.ocr2_modes`. The other options are those of :class:`.BatchedVisionEngine`.
    """

    default_model: ClassVar[str] = DEFAULT_MODEL
    # The model indexes its tile features with these counts on the host.
    cpu_keys: ClassVar[frozenset[str]] = frozenset({"num_local_patches"})
    mode: ResolutionMode

    def __init__(
        self,
        model: str | Any | None = None,
        *,
        mode: str | ResolutionMode = DEFAULT_MODE,
        **options: Any,
    ) -> None:
        super().__init__(model, mode=mode, **options)

    def _load_folder(self, folder: Path, processor: Any) -> tuple[Any, Any]:
        proc = processor or load_processor(folder, AutoProcessor)
        model = load_safetensors_model(
            folder, AutoModelForImageTextToText, self.plan, expect_model_type=MODEL_TYPE
        )
        return model, proc

    def _get_mode(self, mode: Any) -> ResolutionMode:
        return get_mode(DEFAULT_MODE if mode is None else mode)

    def _encode(self, image: Any, prompt: str) -> Mapping[str, Any]:
        enc = self.processor(
            images=[image], text=[prompt], return_tensors="pt", **self.mode.processor_kwargs()
        )
        tiles = int(enc["num_local_patches"][0])
        out: dict[str, Any] = {
            "input_ids": enc["input_ids"],
            "pixel_values": enc["pixel_values"],
            "num_local_patches": torch.tensor([tiles], dtype=torch.long),
        }
        if enc.get("pixel_values_local") is not None:
            out["pixel_values_local"] = enc["pixel_values_local"]
        return out

    def _count_tiles(self, encoded: Mapping[str, Any]) -> int:
        return int(encoded["num_local_patches"][0])

    def _largest_page(self) -> tuple[int, int, int]:
        views = 1 + (self.mode.max_tiles if self.mode.crop else 0)
        return self.mode.token_range[1], views, self.mode.global_size
