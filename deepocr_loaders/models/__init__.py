"""Our own DeepSeek-OCR v1 and DeepOCR models on modern transformers (no remote code).

Names are imported lazily: ``v1_modes`` is pure Python, the rest pulls in torch/transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DeepEncoder": "deepencoder",
    "DeepEncoderConfig": "deepencoder",
    "DeepEncoderProcessor": "v1_processing",
    "DEEPOCR_PROMPT": "v1_processing",
    "V1_PROMPT": "v1_processing",
    "V1Mode": "v1_modes",
    "V1PagePlan": "v1_modes",
    "get_v1_mode": "v1_modes",
    "plan_v1_page": "v1_modes",
    "DeepseekOcrV1Config": "deepseek_ocr_v1",
    "DeepseekOcrV1ForCausalLM": "deepseek_ocr_v1",
    "DeepOcrConfig": "deepocr",
    "DeepOcrForCausalLM": "deepocr",
    "load_deepseek_ocr_v1": "loading",
    "load_deepocr": "loading",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
