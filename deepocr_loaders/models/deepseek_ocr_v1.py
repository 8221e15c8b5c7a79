"""DeepSeek-OCR (v1) on modern transformers, without remote code.

Decoder: transformers' ``DeepseekOcr2TextModel``. It matches v1's decoder (the reference's
``DeepseekV2`` code with ``use_mla: false``, i.e. Llama-style multi-head attention with
rotate-half RoPE, theta 10000): RMSNorm, first ``first_k_dense_replace`` layers dense, then MoE
with softmax routing, greedy top-k, ``routed_scaling_factor`` applied and shared experts added.
One difference is handled here: transformers' router never renormalises the top-k weights, so a
config with ``norm_topk_prob: true`` gets a router that does (as the reference's V2 gate).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import DeepseekOcr2TextConfig
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2TextExperts,
    DeepseekOcr2TextModel,
    DeepseekOcr2TextTopkRouter,
)

from ._vision_lm import DeepEncoderLMBase, DeepEncoderLMConfig
from .deepencoder import DeepEncoderConfig

__all__ = ["DeepseekOcrV1Config", "DeepseekOcrV1ForCausalLM", "text_config_from_reference"]

#: The real tokenizer's ``<image>`` id (DeepSeek-OCR's vocabulary).
V1_IMAGE_TOKEN_ID = 128815


class DeepseekOcrV1Config(DeepEncoderLMConfig):
    """``text_config``: a ``DeepseekOcr2TextConfig``; ``deepencoder``: DeepEncoderConfig fields."""

    model_type = "deepseek_ocr_v1"
    sub_configs = {"text_config": DeepseekOcr2TextConfig}  # noqa: RUF012

    image_token_id: int = V1_IMAGE_TOKEN_ID
    norm_topk_prob: bool = False

    @property
    def text(self) -> DeepseekOcr2TextConfig:
        """``text_config``, typed (``__post_init__`` always makes it a config object)."""
        assert isinstance(self.text_config, DeepseekOcr2TextConfig)
        return self.text_config

    @classmethod
    def from_reference(cls, data: dict[str, Any]) -> DeepseekOcrV1Config:
        """From the released ``config.json`` (``model_type: deepseek_vl_v2``)."""
        # The HF reference's config class *is* the decoder config (DeepseekOCRConfig subclasses
        # DeepseekV2Config), so the top-level keys are what it reads; vLLM reads
        # ``language_config``. The released file has both, equal; top level wins here.
        top = {k: v for k, v in data.items() if not isinstance(v, dict)}
        language = {**(data.get("language_config") or {}), **top}
        if language.get("use_mla", False):
            raise ValueError("multi-head latent attention (use_mla: true) is not supported")
        if language.get("topk_method", "greedy") not in ("greedy", "group_limited_greedy"):
            raise ValueError(f"MoE routing {language.get('topk_method')!r} is not supported")
        if language.get("scoring_func", "softmax") != "softmax":
            raise ValueError(f"MoE scoring {language.get('scoring_func')!r} is not supported")
        encoder = data.get("deepencoder")
        if encoder is None:
            encoder = DeepEncoderConfig.from_reference_vision_config(
                data.get("vision_config", {})
            ).to_dict()
        projector = data.get("projector_config") or {}
        text = text_config_from_reference(language)
        if projector.get("n_embed", text.hidden_size) != text.hidden_size:
            raise ValueError(
                f"projector width {projector['n_embed']} != decoder width {text.hidden_size}"
            )
        if projector.get("projector_type", "linear") != "linear":
            raise ValueError(f"projector {projector['projector_type']!r} is not supported")
        return cls(
            text_config=text,
            deepencoder=encoder,
            image_token_id=int(data.get("image_token_id", V1_IMAGE_TOKEN_ID)),
            norm_topk_prob=bool(language.get("norm_topk_prob", False)),
        )


def text_config_from_reference(lang: dict[str, Any]) -> DeepseekOcr2TextConfig:
    """The decoder config from DeepseekV2-schema keys; absent keys take the released
    DeepSeek-OCR values (3B MoE: 12 layers, 1280 wide, 64 routed + 2 shared experts, 6 active)."""
    layers = int(lang.get("num_hidden_layers", 12))
    first_dense = int(lang.get("first_k_dense_replace", 1))
    freq = int(lang.get("moe_layer_freq", 1))
    experts = lang.get("n_routed_experts", 64)
    mlp_types = [
        "sparse" if experts and i >= first_dense and i % freq == 0 else "dense"
        for i in range(layers)
    ]
    rope = lang.get("rope_scaling")
    if rope:
        raise ValueError(f"rope_scaling {rope!r} is not supported")
    heads = int(lang.get("num_attention_heads", 10))
    return DeepseekOcr2TextConfig(
        vocab_size=int(lang.get("vocab_size", 129280)),
        hidden_size=int(lang.get("hidden_size", 1280)),
        intermediate_size=int(lang.get("intermediate_size", 6848)),
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=int(lang.get("num_key_value_heads") or heads),
        max_position_embeddings=int(lang.get("max_position_embeddings", 8192)),
        rms_norm_eps=float(lang.get("rms_norm_eps", 1e-6)),
        rope_parameters={"rope_type": "default", "rope_theta": float(lang.get("rope_theta", 1e4))},
        hidden_act=lang.get("hidden_act", "silu"),
        attention_bias=bool(lang.get("attention_bias", False)),
        moe_intermediate_size=int(lang.get("moe_intermediate_size", 896)),
        n_routed_experts=int(experts or 1),
        n_shared_experts=int(lang.get("n_shared_experts", 2) or 0),
        num_experts_per_tok=int(lang.get("num_experts_per_tok", 6)),
        routed_scaling_factor=float(lang.get("routed_scaling_factor", 1.0)),
        topk_method=lang.get("topk_method", "greedy"),
        n_group=lang.get("n_group", 1),
        topk_group=lang.get("topk_group", 1),
        mlp_layer_types=mlp_types,
        bos_token_id=lang.get("bos_token_id", 0),
        eos_token_id=lang.get("eos_token_id", 1),
        pad_token_id=lang.get("pad_token_id"),
        tie_word_embeddings=False,
    )


class _NormalisedTopkRouter(DeepseekOcr2TextTopkRouter):
    """Greedy top-k whose weights are renormalised to sum to 1 (``norm_topk_prob: true``)."""

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, weights, indices = super().forward(hidden_states)
        if (self.top_k or 1) > 1:
            # The reference gate: top-k softmax weights / their sum * routed_scaling_factor.
            # ``weights`` already carries the factor once, which the ratio cancels.
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
            weights = weights * self.routed_scaling_factor
        return logits, weights, indices


class DeepseekOcrV1ForCausalLM(DeepEncoderLMBase):
    """DeepEncoder + linear projector + DeepSeek MoE decoder (``DeepseekOcr2TextModel``)."""

    config: DeepseekOcrV1Config
    config_class = DeepseekOcrV1Config
    _no_split_modules = [  # noqa: RUF012 (transformers API)
        "DeepseekOcr2SamVisionLayer",
        "CLIPEncoderLayer",
        "DeepseekOcr2TextDecoderLayer",
    ]

    def __init__(self, config: DeepseekOcrV1Config) -> None:
        super().__init__(config)
        text = config.text
        self._build_vision(config.encoder_config, text)
        self.model = DeepseekOcr2TextModel(text)
        if config.norm_topk_prob:
            for layer in self.model.layers:
                gate = getattr(layer.mlp, "gate", None)
                if isinstance(gate, DeepseekOcr2TextTopkRouter):
                    router = _NormalisedTopkRouter(text)
                    router.weight = gate.weight
                    layer.mlp.gate = router
        self.lm_head = nn.Linear(text.hidden_size, text.vocab_size, bias=False)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, DeepseekOcr2TextExperts):
            nn.init.normal_(module.gate_up_proj, std=std)
            nn.init.normal_(module.down_proj, std=std)
        elif isinstance(module, DeepseekOcr2TextTopkRouter):
            nn.init.normal_(module.weight, std=std)

    def get_input_embeddings(self) -> nn.Module:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

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
        out = self.model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
            **kwargs,
        )
        hidden = out.last_hidden_state
        if isinstance(logits_to_keep, int) and logits_to_keep > 0:
            hidden = hidden[:, -logits_to_keep:]
        elif isinstance(logits_to_keep, torch.Tensor):
            hidden = hidden[:, logits_to_keep]
        return self.lm_head(hidden), out.past_key_values
