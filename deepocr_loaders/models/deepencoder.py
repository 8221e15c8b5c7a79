"""DeepEncoder (DeepSeek-OCR v1 and DeepOCR): SAM ViT-B -> CLIP-L/14 -> concatenated features.

The SAM half is transformers' ``DeepseekOcr2SamVisionEncoder`` (checked identical to v1's
``sam_vary_sdpa.ImageEncoderViT``: windowed attention with decomposed relative positions, neck
to 256 channels, two stride-2 3x3 convolutions). The CLIP half is built from transformers'
``CLIPEncoder`` and ``CLIPVisionEmbeddings`` parameters, but takes SAM's feature map as its patch
embeddings and interpolates position embeddings with antialiased bicubic like the reference
(transformers' CLIP interpolation uses no antialias). No final layer norm: the reference returns
the transformer output directly.

Output per image: ``[h*w, clip_hidden + sam_channels]`` = CLIP tokens (class token dropped)
concatenated with the flattened SAM map, 2048 wide for the real model.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionConfig
from transformers.models.clip.modeling_clip import CLIPEncoder, CLIPVisionEmbeddings
from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import (
    DeepseekOcr2SamVisionConfig,
)
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2SamVisionEncoder,
)

from .sam_attention import fold_sam_attention

__all__ = ["DeepEncoder", "DeepEncoderConfig"]


@dataclass
class DeepEncoderConfig:
    """Shapes of the DeepEncoder; defaults are the released DeepSeek-OCR v1 encoder."""

    sam_embed_dim: int = 768
    sam_depth: int = 12
    sam_num_heads: int = 12
    sam_window_size: int = 14
    sam_global_attn_indexes: list[int] = field(default_factory=lambda: [2, 5, 8, 11])
    sam_out_chans: int = 256
    sam_downsample_channels: list[int] = field(default_factory=lambda: [512, 1024])
    sam_mlp_ratio: float = 4.0
    sam_patch_size: int = 16
    sam_image_size: int = 1024
    clip_hidden_size: int = 1024
    clip_num_layers: int = 24
    clip_num_heads: int = 16
    clip_ffn_hidden_size: int = 4096
    clip_image_size: int = 224
    clip_patch_size: int = 14
    clip_layernorm_eps: float = 1e-5
    projector_input_dim: int = 2048

    def __post_init__(self) -> None:
        self.sam_global_attn_indexes = list(self.sam_global_attn_indexes)
        self.sam_downsample_channels = list(self.sam_downsample_channels)
        # SAM's last conv output is fed to CLIP as its patch embeddings, and the projector reads
        # CLIP + SAM concatenated: these widths are tied, so a bad config fails here, not mid-run.
        if self.sam_downsample_channels[-1] != self.clip_hidden_size:
            raise ValueError(
                f"sam_downsample_channels[-1] ({self.sam_downsample_channels[-1]}) must equal "
                f"clip_hidden_size ({self.clip_hidden_size})"
            )
        if self.projector_input_dim != self.clip_hidden_size + self.sam_downsample_channels[-1]:
            raise ValueError(
                f"projector_input_dim ({self.projector_input_dim}) must be clip_hidden_size + "
                f"sam_downsample_channels[-1] ({self.clip_hidden_size} + "
                f"{self.sam_downsample_channels[-1]})"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeepEncoderConfig:
        """Build from a ``"deepencoder"`` block; unknown keys are an error (typos hide bugs)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DeepEncoder config keys: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_reference_vision_config(cls, vision: dict[str, Any]) -> DeepEncoderConfig:
        """Derive from the released config.json's ``vision_config`` (``width`` sub-blocks)."""
        width = vision.get("width", {}) if isinstance(vision, dict) else {}
        sam = width.get("sam_vit_b", {}) if isinstance(width, dict) else {}
        clip = width.get("clip-l-14-224", {}) if isinstance(width, dict) else {}
        kwargs: dict[str, Any] = {}
        if sam:
            kwargs.update(
                sam_embed_dim=sam.get("width", 768),
                sam_depth=sam.get("layers", 12),
                sam_num_heads=sam.get("heads", 12),
                sam_global_attn_indexes=sam.get("global_attn_indexes", [2, 5, 8, 11]),
                sam_downsample_channels=sam.get("downsample_channels", [512, 1024]),
            )
        if clip:
            hidden = clip.get("width", 1024)
            kwargs.update(
                clip_hidden_size=hidden,
                clip_num_layers=clip.get("layers", 24),
                clip_num_heads=clip.get("heads", 16),
                clip_ffn_hidden_size=clip.get("ffn_hidden_size", 4 * hidden),
                clip_image_size=clip.get("image_size", 224),
                clip_patch_size=clip.get("patch_size", 14),
            )
        out = kwargs.get("sam_downsample_channels", [512, 1024])[-1]
        kwargs["projector_input_dim"] = kwargs.get("clip_hidden_size", 1024) + out
        return cls(**kwargs)

    def sam_config(self, attn_implementation: str = "sdpa") -> DeepseekOcr2SamVisionConfig:
        cfg = DeepseekOcr2SamVisionConfig(
            hidden_size=self.sam_embed_dim,
            output_channels=self.sam_out_chans,
            num_hidden_layers=self.sam_depth,
            num_attention_heads=self.sam_num_heads,
            image_size=self.sam_image_size,
            patch_size=self.sam_patch_size,
            window_size=self.sam_window_size,
            global_attn_indexes=list(self.sam_global_attn_indexes),
            downsample_channels=list(self.sam_downsample_channels),
            mlp_ratio=self.sam_mlp_ratio,
            layer_norm_eps=1e-6,
            hidden_act="gelu",
            qkv_bias=True,
            use_abs_pos=True,
            use_rel_pos=True,
        )
        cfg._attn_implementation = attn_implementation
        return cfg

    def clip_config(self, attn_implementation: str = "sdpa") -> CLIPVisionConfig:
        cfg = CLIPVisionConfig(
            hidden_size=self.clip_hidden_size,
            intermediate_size=self.clip_ffn_hidden_size,
            num_hidden_layers=self.clip_num_layers,
            num_attention_heads=self.clip_num_heads,
            image_size=self.clip_image_size,
            patch_size=self.clip_patch_size,
            hidden_act="quick_gelu",
            layer_norm_eps=self.clip_layernorm_eps,
        )
        cfg._attn_implementation = attn_implementation
        return cfg


class SamFedClipEmbeddings(CLIPVisionEmbeddings):
    """CLIP embeddings whose patch embeddings come from SAM's feature map.

    ``patch_embedding`` is kept (the checkpoint carries it) but unused, as in the reference.
    """

    def forward(self, patch_embeds: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        batch = patch_embeds.shape[0]
        tokens = patch_embeds.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(tokens.dtype).expand(batch, 1, -1)
        embeddings = torch.cat([cls, tokens], dim=1)
        return embeddings + self._positions(tokens.shape[1]).to(embeddings.dtype)

    def _positions(self, num_tokens: int) -> torch.Tensor:
        table = self.position_embedding.weight
        src = math.isqrt(table.shape[0] - 1)
        tgt = math.isqrt(num_tokens)
        if src == tgt:
            return table.unsqueeze(0)
        grid = table[1:].reshape(1, src, src, -1).permute(0, 3, 1, 2).float()
        # Antialiased bicubic in float32, as the reference does (matters when shrinking 16->10).
        grid = F.interpolate(
            grid, size=(tgt, tgt), mode="bicubic", antialias=True, align_corners=False
        ).to(table.dtype)
        grid = grid.permute(0, 2, 3, 1).reshape(tgt * tgt, -1)
        return torch.cat([table[:1], grid], dim=0).unsqueeze(0)


class DeepEncoderClip(nn.Module):
    """CLIP-L/14 body: embeddings from SAM features, pre-layernorm, transformer, no post-norm."""

    def __init__(self, config: CLIPVisionConfig) -> None:
        super().__init__()
        self.embeddings = SamFedClipEmbeddings(config)
        self.pre_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.encoder = CLIPEncoder(config)  # type: ignore[arg-type]  # only reads the vision fields

    def forward(self, sam_features: torch.Tensor) -> torch.Tensor:
        hidden = self.pre_layernorm(self.embeddings(sam_features))
        return self.encoder(inputs_embeds=hidden).last_hidden_state


class DeepEncoder(nn.Module):
    """SAM + CLIP; ``forward(pixel_values [N,3,S,S]) -> [N, (S/64)^2, projector_input_dim]``.

    Args:
        config: Encoder shapes.
        attn_implementation: ``"sdpa"`` or ``"eager"`` for CLIP (and SAM when not folded).
        fold_sam: Run SAM's attention with its relative-position bias folded into queries and
            keys (``sam_attention.FoldedSamAttention``): no ``L x L`` bias tensor per view.
    """

    def __init__(
        self,
        config: DeepEncoderConfig,
        *,
        attn_implementation: str = "sdpa",
        fold_sam: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        self.sam = DeepseekOcr2SamVisionEncoder(config.sam_config(attn_implementation))
        if fold_sam:
            fold_sam_attention(self.sam)
        self.clip = DeepEncoderClip(config.clip_config(attn_implementation))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pixel_values = pixel_values.to(self.sam.patch_embed.projection.weight.dtype)
        sam_map = self.sam(pixel_values).last_hidden_state  # [N, C, h, w]
        clip_tokens = self.clip(sam_map)[:, 1:]  # class token dropped
        return torch.cat([clip_tokens, sam_map.flatten(2).transpose(1, 2)], dim=-1)
