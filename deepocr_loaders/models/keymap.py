"""Key mapping between the reference checkpoints' tensor names and our modules.

* SAM (``sam_model.*``): ``blocks.N`` -> ``layers.N`` of transformers' DeepseekOcr2 SAM encoder,
  ``neck.0..3`` -> ``neck.conv1/layer_norm1/conv2/layer_norm2``, ``net_2/net_3`` ->
  ``proj.conv1/conv2``.
* CLIP (``vision_model.*``): ``transformer.layers.N`` -> ``encoder.layers.N`` of transformers'
  ``CLIPEncoder``; the packed ``qkv_proj`` splits into ``q/k/v_proj`` (consecutive thirds, as the
  reference views it as (3, heads, head_dim)); ``pre_layrnorm`` (sic) -> ``pre_layernorm``.
* v1 decoder: names kept, except routed experts (one module each in the checkpoint), which
  transformers keeps fused: ``gate_up_proj`` [E, 2I, H] (gate rows first) and ``down_proj``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..errors import ModelLoadError

__all__ = [
    "IGNORABLE",
    "deepencoder_to_reference",
    "map_deepencoder",
    "v1_from_reference",
    "v1_to_reference",
]

# (checkpoint pattern, our name) for SAM, relative to the SAM prefix; reversible one-to-one.
_SAM_RULES = [
    (r"patch_embed\.proj\.", "patch_embed.projection."),
    (r"blocks\.(\d+)\.norm1\.", r"layers.\1.layer_norm1."),
    (r"blocks\.(\d+)\.norm2\.", r"layers.\1.layer_norm2."),
    (r"blocks\.(\d+)\.(attn|mlp)\.", r"layers.\1.\2."),
    (r"neck\.0\.", "neck.conv1."),
    (r"neck\.1\.", "neck.layer_norm1."),
    (r"neck\.2\.", "neck.conv2."),
    (r"neck\.3\.", "neck.layer_norm2."),
    (r"net_2\.", "proj.conv1."),
    (r"net_3\.", "proj.conv2."),
    (r"pos_embed$", "pos_embed"),
]
_CLIP_RULES = [
    (
        r"embeddings\.(class_embedding|patch_embedding\.weight|position_embedding\.weight)$",
        r"embeddings.\1",
    ),
    (r"pre_layrnorm\.", "pre_layernorm."),
    (
        r"transformer\.layers\.(\d+)\.(layer_norm1|layer_norm2|mlp\.fc1|mlp\.fc2|self_attn\.out_proj)\.",
        r"encoder.layers.\1.\2.",
    ),
]
_QKV = re.compile(r"transformer\.layers\.(\d+)\.self_attn\.qkv_proj\.(weight|bias)$")
_EXPERT = re.compile(
    r"model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$"
)
# Buffers the reference saves or may save, which we recompute: ignored, not "unexpected".
IGNORABLE = re.compile(r"(^|\.)embeddings\.position_ids$")


def _rename(name: str, rules: list[tuple[str, str]]) -> str | None:
    for pattern, repl in rules:
        new, n = re.subn("^" + pattern, repl, name)
        if n:
            return new
    return None


def map_deepencoder(
    name: str, tensor: torch.Tensor, sam_prefix: str, clip_prefix: str, out: dict[str, torch.Tensor]
) -> bool:
    """Map one SAM/CLIP checkpoint tensor into ``out`` (our ``vision.*`` names)."""
    if name.startswith(sam_prefix):
        ours = _rename(name[len(sam_prefix) :], _SAM_RULES)
        if ours is None:
            return False
        out["vision.sam." + ours] = tensor
        return True
    if name.startswith(clip_prefix):
        rest = name[len(clip_prefix) :]
        qkv = _QKV.match(rest)
        if qkv:
            layer, kind = qkv.groups()
            if tensor.shape[0] % 3:
                raise ModelLoadError(f"{name}: packed q/k/v of {tensor.shape[0]} rows")
            # The reference views qkv as (3, heads, head_dim): q, k, v are consecutive thirds.
            for part, chunk in zip(("q", "k", "v"), tensor.chunk(3, dim=0), strict=True):
                out[f"vision.clip.encoder.layers.{layer}.self_attn.{part}_proj.{kind}"] = chunk
            return True
        ours = _rename(rest, _CLIP_RULES)
        if ours is None:
            return False
        out["vision.clip." + ours] = tensor
        return True
    return False


def deepencoder_to_reference(
    state: Mapping[str, torch.Tensor], sam_prefix: str, clip_prefix: str
) -> dict[str, torch.Tensor]:
    """Our ``vision.*`` tensors under the reference's SAM/CLIP names (inverse mapping)."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for name, tensor in state.items():
        if name.startswith("vision.sam."):
            ref = _sam_back(name[len("vision.sam.") :])
            out[sam_prefix + ref] = tensor
        elif name.startswith("vision.clip."):
            rest = name[len("vision.clip.") :]
            m = re.match(r"encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)$", rest)
            if m:
                qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = tensor
                continue
            out[clip_prefix + _clip_back(rest)] = tensor
    for (layer, kind), parts in qkv.items():
        packed = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
        out[f"{clip_prefix}transformer.layers.{layer}.self_attn.qkv_proj.{kind}"] = packed
    return out


def _sam_back(name: str) -> str:
    back = [
        (r"patch_embed\.projection\.", "patch_embed.proj."),
        (r"layers\.(\d+)\.layer_norm1\.", r"blocks.\1.norm1."),
        (r"layers\.(\d+)\.layer_norm2\.", r"blocks.\1.norm2."),
        (r"layers\.(\d+)\.(attn|mlp)\.", r"blocks.\1.\2."),
        (r"neck\.conv1\.", "neck.0."),
        (r"neck\.layer_norm1\.", "neck.1."),
        (r"neck\.conv2\.", "neck.2."),
        (r"neck\.layer_norm2\.", "neck.3."),
        (r"proj\.conv1\.", "net_2."),
        (r"proj\.conv2\.", "net_3."),
        (r"pos_embed$", "pos_embed"),
    ]
    ref = _rename(name, back)
    if ref is None:
        raise KeyError(f"no reference name for vision.sam.{name}")
    return ref


def _clip_back(name: str) -> str:
    back = [
        (r"embeddings\.", "embeddings."),
        (r"pre_layernorm\.", "pre_layrnorm."),
        (r"encoder\.layers\.(\d+)\.", r"transformer.layers.\1."),
    ]
    ref = _rename(name, back)
    if ref is None:
        raise KeyError(f"no reference name for vision.clip.{name}")
    return ref


def v1_from_reference(
    tensors: Mapping[str, torch.Tensor], num_experts: int
) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """(our state dict, unexpected checkpoint keys, missing expert keys) of a v1 checkpoint."""
    out: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    experts: dict[int, dict[tuple[int, str], torch.Tensor]] = {}
    direct = {
        "model.projector.layers.weight": "projector.weight",
        "model.projector.layers.bias": "projector.bias",
        "model.image_newline": "image_newline",
        "model.view_seperator": "view_separator",
        "lm_head.weight": "lm_head.weight",
    }
    for name, tensor in tensors.items():
        if IGNORABLE.search(name):
            continue
        if name in direct:
            out[direct[name]] = tensor
        elif map_deepencoder(name, tensor, "model.sam_model.", "model.vision_model.", out):
            continue
        elif m := _EXPERT.match(name):
            layer, expert, proj = int(m.group(1)), int(m.group(2)), m.group(3)
            experts.setdefault(layer, {})[(expert, proj)] = tensor
        elif name.startswith(("model.layers.", "model.embed_tokens.", "model.norm.")):
            out[name] = tensor  # the decoder keeps the reference's names
        else:
            unexpected.append(name)
    missing: list[str] = []
    for layer, parts in sorted(experts.items()):
        stray = sorted(e for e, _ in parts if e >= num_experts)
        unexpected += [f"model.layers.{layer}.mlp.experts.{e}.*" for e in stray]
        want = [(e, p) for e in range(num_experts) for p in ("gate_proj", "up_proj", "down_proj")]
        lacking = [
            f"model.layers.{layer}.mlp.experts.{e}.{p}.weight"
            for e, p in want
            if (e, p) not in parts
        ]
        if lacking:
            missing += lacking
            continue
        # transformers keeps experts fused: gate_up [E, 2I, H] (gate rows first), down [E, H, I].
        out[f"model.layers.{layer}.mlp.experts.gate_up_proj"] = torch.stack(
            [
                torch.cat([parts[(e, "gate_proj")], parts[(e, "up_proj")]], dim=0)
                for e in range(num_experts)
            ]
        )
        out[f"model.layers.{layer}.mlp.experts.down_proj"] = torch.stack(
            [parts[(e, "down_proj")] for e in range(num_experts)]
        )
    return out, unexpected, missing


def v1_to_reference(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our v1 state dict under the reference checkpoint's names (for tiny test checkpoints)."""
    out = deepencoder_to_reference(state, "model.sam_model.", "model.vision_model.")
    back = {
        "projector.weight": "model.projector.layers.weight",
        "projector.bias": "model.projector.layers.bias",
        "image_newline": "model.image_newline",
        "view_separator": "model.view_seperator",
        "lm_head.weight": "lm_head.weight",
    }
    for name, tensor in state.items():
        if name.startswith("vision."):
            continue
        if name in back:
            out[back[name]] = tensor
        elif m := re.match(r"model\.layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)$", name):
            layer = m.group(1)
            for e, t in enumerate(tensor):
                if m.group(2) == "down_proj":
                    out[f"model.layers.{layer}.mlp.experts.{e}.down_proj.weight"] = t.clone()
                else:
                    gate, up = t.chunk(2, dim=0)
                    out[f"model.layers.{layer}.mlp.experts.{e}.gate_proj.weight"] = gate.clone()
                    out[f"model.layers.{layer}.mlp.experts.{e}.up_proj.weight"] = up.clone()
        else:
            out[name] = tensor
    return out
