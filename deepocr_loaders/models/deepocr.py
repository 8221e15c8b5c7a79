"""DeepOCR (pkulium/DeepOCR, the open DeepSeek-OCR reproduction) without VILA.

The same DeepEncoder as v1, VILA's ``linear`` multimodal projector (``Linear(2048 -> LLM
width)``, which also owns the ``image_newline`` / ``view_seperator`` vectors at the LLM width)
and a transformers ``Qwen2ForCausalLM``. Pages are laid out as in v1 (tiles, global view, a
newline after every feature row, separator).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Qwen2Config, Qwen2ForCausalLM

from ._vision_lm import DeepEncoderLMBase, DeepEncoderLMConfig

__all__ = ["DeepOcrConfig", "DeepOcrForCausalLM"]


class DeepOcrConfig(DeepEncoderLMConfig):
    """``text_config``: the LLM's ``Qwen2Config``; ``deepencoder``: DeepEncoderConfig fields."""

    model_type = "deepocr"
    sub_configs = {"text_config": Qwen2Config}  # noqa: RUF012 (transformers API)

    image_token_id: int = 151649

    @property
    def text(self) -> Qwen2Config:
        """``text_config``, typed (``__post_init__`` always makes it a config object)."""
        assert isinstance(self.text_config, Qwen2Config)
        return self.text_config


class DeepOcrForCausalLM(DeepEncoderLMBase):
    """DeepEncoder + linear projector (+ newline / separator vectors) + ``Qwen2ForCausalLM``."""

    config: DeepOcrConfig
    config_class = DeepOcrConfig
    _no_split_modules = [  # noqa: RUF012 (transformers API)
        "DeepseekOcr2SamVisionLayer",
        "CLIPEncoderLayer",
        "Qwen2DecoderLayer",
    ]

    def __init__(self, config: DeepOcrConfig) -> None:
        super().__init__(config)
        self._build_vision(config.encoder_config, config.text)
        self.llm = Qwen2ForCausalLM(config.text)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.llm.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.llm.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.llm.get_output_embeddings()

    def _decode(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None,
        position_ids: torch.LongTensor | None,
        past_key_values: Any,
        use_cache: bool | None,
        logits_to_keep: int | torch.Tensor,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, Any]:
        out = self.llm(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )
        return out.logits, out.past_key_values
