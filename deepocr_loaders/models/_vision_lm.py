"""What DeepSeek-OCR v1 and DeepOCR share: DeepEncoder features laid out per page (tiles with a
newline after every feature row, global view likewise, then the view separator, in the
reference's order), scattered into the token embeddings at the image-token positions, for a
left-padded batch of pages; and the generation glue around it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn
from transformers import GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2SamVisionAttention,
    DeepseekOcr2SamVisionEncoder,
)

from .deepencoder import DeepEncoder, DeepEncoderConfig

__all__ = ["DeepEncoderLMBase", "DeepEncoderLMConfig", "layout_page_features", "tiles_per_page"]

# transformers renamed the output's ``past_key_values`` to ``cache`` (the old name is a
# deprecated alias): name whichever field this release has.
_CACHE_FIELD = (
    "cache"
    if "cache" in {f.name for f in dataclasses.fields(CausalLMOutputWithPast)}
    else "past_key_values"
)


class DeepEncoderLMConfig(PreTrainedConfig):
    """Fields and set-up both models' configs share: ``deepencoder`` holds DeepEncoderConfig
    fields, ``text_config`` the decoder's config, built from a dict with the class that the
    subclass names in ``sub_configs["text_config"]``."""

    text_config: dict | PreTrainedConfig | None = None
    deepencoder: dict | None = None
    initializer_range: float = 0.02
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        if self.text_config is None or isinstance(self.text_config, dict):
            self.text_config = self.sub_configs["text_config"](**(self.text_config or {}))
        self.deepencoder = DeepEncoderConfig.from_dict(dict(self.deepencoder or {})).to_dict()
        super().__post_init__(**kwargs)

    @property
    def encoder_config(self) -> DeepEncoderConfig:
        return DeepEncoderConfig.from_dict(dict(self.deepencoder or {}))


def tiles_per_page(tile_grid: torch.Tensor) -> list[int]:
    """Tiles of each page from ``tile_grid`` [B, 2] = (width_tiles, height_tiles); (1, 1) = 0."""
    return [0 if (w, h) == (1, 1) else w * h for w, h in tile_grid.tolist()]


def layout_page_features(
    global_features: torch.Tensor,
    local_features: torch.Tensor | None,
    grid: tuple[int, int],
    newline: torch.Tensor,
    separator: torch.Tensor,
) -> torch.Tensor:
    """One page's feature sequence ``[tokens, D]``: tiles (as one big 2D map, a newline after
    each row), the global view (same), the view separator."""
    dim = global_features.shape[-1]
    side = math.isqrt(global_features.shape[0])
    glob = global_features.view(side, side, dim)
    glob = torch.cat([glob, newline.expand(side, 1, dim)], dim=1).reshape(-1, dim)
    if local_features is None:
        return torch.cat([glob, separator[None]], dim=0)
    cols, rows = grid
    t = math.isqrt(local_features.shape[1])
    # Tiles are stored row-major; stitch them into a (rows*t) x (cols*t) map.
    local = local_features.view(rows, cols, t, t, dim).permute(0, 2, 1, 3, 4)
    local = local.reshape(rows * t, cols * t, dim)
    local = torch.cat([local, newline.expand(rows * t, 1, dim)], dim=1).reshape(-1, dim)
    return torch.cat([local, glob, separator[None]], dim=0)


def positions_from_mask(attention_mask: torch.Tensor, length: int) -> torch.Tensor:
    """Position ids that ignore left padding: the last ``length`` of ``cumsum(mask) - 1``."""
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    return positions[:, -length:]


class DeepEncoderLMBase(PreTrainedModel, GenerationMixin):
    """Shared forward of the DeepEncoder + decoder models (subclasses build the parts)."""

    base_model_prefix = "model"
    supports_gradient_checkpointing = False
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_attention_backend = True
    _skip_keys_device_placement = ["past_key_values"]  # noqa: RUF012 (transformers API)

    vision: DeepEncoder
    projector: nn.Linear
    image_newline: nn.Parameter
    view_separator: nn.Parameter

    def _build_vision(self, encoder: DeepEncoderConfig, text: PreTrainedConfig) -> None:
        """The DeepEncoder, its projector to the decoder width and the newline / separator
        vectors: the same for every decoder."""
        attn = getattr(text, "_attn_implementation", None) or "sdpa"
        # The vision tower stays on SDPA: SAM's attention is our folded class (no bias mask,
        # so SDPA picks a fused kernel itself), and CLIP is short enough not to need more.
        vision_attn = "sdpa" if attn not in ("eager", "sdpa") else attn
        self.vision = DeepEncoder(encoder, attn_implementation=vision_attn)
        self.projector = nn.Linear(encoder.projector_input_dim, text.hidden_size)
        self.image_newline = nn.Parameter(torch.zeros(text.hidden_size))
        self.view_separator = nn.Parameter(torch.zeros(text.hidden_size))

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, DeepseekOcr2SamVisionAttention) and module.use_rel_pos:
            nn.init.zeros_(module.rel_pos_h)
            nn.init.zeros_(module.rel_pos_w)
        elif isinstance(module, DeepseekOcr2SamVisionEncoder) and module.pos_embed is not None:
            nn.init.zeros_(module.pos_embed)
        elif isinstance(module, DeepEncoderLMBase):
            embed_std = module.image_newline.shape[-1] ** -0.5  # the decoder's width
            nn.init.normal_(module.image_newline, std=embed_std)
            nn.init.normal_(module.view_separator, std=embed_std)

    # -- per-model hooks ---------------------------------------------------------------------
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
        raise NotImplementedError

    @property
    def image_token_id(self) -> int:
        return int(self.config.image_token_id)

    # -- images --------------------------------------------------------------------------------
    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        pixel_values_local: torch.Tensor | None = None,
        tile_grid: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """Per page, the projected feature sequence that replaces its image tokens.

        All global views go through the encoder as one batch, all tiles as another, so each
        page's features are computed once.
        """
        batch = pixel_values.shape[0]
        if tile_grid is None:
            tile_grid = torch.ones(batch, 2, dtype=torch.long)
        if tile_grid.shape[0] != batch:
            raise ValueError(f"tile_grid has {tile_grid.shape[0]} rows for {batch} pages")
        counts = tiles_per_page(tile_grid)
        n_local = 0 if pixel_values_local is None else pixel_values_local.shape[0]
        if sum(counts) != n_local:
            raise ValueError(
                f"tile_grid asks for {sum(counts)} tiles, pixel_values_local holds {n_local}"
            )
        glob = self.projector(self.vision(pixel_values))
        local = None
        if pixel_values_local is not None and n_local:
            local = self.projector(self.vision(pixel_values_local)).split(counts, dim=0)
        newline = self.image_newline.to(glob.dtype)
        separator = self.view_separator.to(glob.dtype)
        pages = []
        for b, (w, h) in enumerate(tile_grid.tolist()):
            tiles = local[b] if local is not None and counts[b] else None
            pages.append(layout_page_features(glob[b], tiles, (w, h), newline, separator))
        return pages

    def _merge_images(
        self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor, features: list[torch.Tensor]
    ) -> torch.Tensor:
        mask = input_ids == self.image_token_id
        flat = torch.cat(features, dim=0).to(inputs_embeds.device, inputs_embeds.dtype)
        # Per page, not just in total: a page whose count is off would shift its neighbours.
        per_row = mask.sum(dim=1).tolist()
        per_page = [f.shape[0] for f in features]
        if per_row != per_page:
            raise ValueError(
                f"image tokens per page {per_row} do not match image features per page {per_page}"
            )
        return inputs_embeds.masked_scatter(mask.unsqueeze(-1), flat)

    # -- model API -----------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_local: torch.Tensor | None = None,
        tile_grid: torch.Tensor | None = None,
        past_key_values: Any = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        """Logits for a left-padded batch; images are encoded only when ``pixel_values`` is given
        (the prefill step: ``generate`` drops the pixel inputs afterwards)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids and inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        if pixel_values is not None:
            if input_ids is None:
                raise ValueError("pixel_values need input_ids to find the image tokens")
            features = self.get_image_features(pixel_values, pixel_values_local, tile_grid)
            inputs_embeds = self._merge_images(input_ids, inputs_embeds, features)
        if position_ids is None and attention_mask is not None and attention_mask.ndim == 2:
            position_ids = positions_from_mask(attention_mask, inputs_embeds.shape[1])  # type: ignore[assignment]
        logits, past = self._decode(
            inputs_embeds,
            attention_mask,
            position_ids,
            past_key_values,
            use_cache,
            logits_to_keep,
            **kwargs,
        )
        return CausalLMOutputWithPast(logits=logits, **{_CACHE_FIELD: past})

    def prepare_inputs_for_generation(
        self, input_ids: torch.LongTensor, inputs_embeds: torch.Tensor | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        # ``inputs_embeds`` is named, not left in **kwargs: generate accepts precomputed prompt
        # embeddings (image features already merged) only when this signature lists it.
        inputs: dict[str, Any] = super().prepare_inputs_for_generation(  # type: ignore[misc]
            input_ids, inputs_embeds=inputs_embeds, **kwargs
        )
        # transformers already drops pixel_values(_local) after prefill; tile_grid goes with them.
        if "pixel_values" not in inputs:
            inputs.pop("tile_grid", None)
        return inputs
