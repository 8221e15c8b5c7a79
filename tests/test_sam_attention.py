"""``FoldedSamAttention``: SAM's relative-position bias folded into q and k matches transformers'
SAM attention at the released shapes, switches a whole model in place, and calls SDPA with no
``L x L`` mask."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import tiny_ocr2
import torch
import torch.nn.functional as F
from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import (
    DeepseekOcr2SamVisionConfig,
)
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2SamVisionAttention,
    DeepseekOcr2SamVisionSdpaAttention,
)

from deepocr_loaders.models.deepencoder import DeepEncoder, DeepEncoderConfig
from deepocr_loaders.models.sam_attention import (
    FoldedSamAttention,
    fold_sam_attention,
    folded_head_dim,
)

TOL = 1e-4

# (window_size of the layer, grid side of its input, views): a 1024 px view attended globally
# (64x64, table trained for 64), a 768 px tile attended globally (48x48 on the 64 table, so
# get_rel_pos interpolates), and 14x14 windows (table for 14; 8 windows = a batch of them).
SHAPES = {
    "global-1024px": (0, 64, 1),
    "global-768px": (0, 48, 2),
    "window-14": (14, 14, 8),
}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _sam_config(**overrides: Any) -> DeepseekOcr2SamVisionConfig:
    """ViT-B SAM attention: hidden 768, 12 heads of 64, 1024 px in 16 px patches."""
    kwargs: dict[str, Any] = dict(
        hidden_size=768,
        num_attention_heads=12,
        image_size=1024,
        patch_size=16,
        qkv_bias=True,
        use_rel_pos=True,
    )
    kwargs.update(overrides)
    return DeepseekOcr2SamVisionConfig(**kwargs)


def _randomise(module: torch.nn.Module) -> None:
    """Random qkv / proj weights and non-zero rel-pos tables (their zero init hides bugs)."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, DeepseekOcr2SamVisionAttention):
                # std 0.05 on 768 inputs: q and k entries ~1.4, logits spread over several units
                # so the softmax is far from uniform.
                sub.qkv.weight.normal_(0.0, 0.05)
                sub.qkv.bias.normal_(0.0, 0.1)
                sub.proj.weight.normal_(0.0, 0.05)
                if sub.use_rel_pos:
                    sub.rel_pos_h.normal_(0.0, 0.5)
                    sub.rel_pos_w.normal_(0.0, 0.5)


def _max_diff(window: int, grid: int, views: int, reference_cls: type) -> float:
    reference = reference_cls(_sam_config(), window).eval()
    _randomise(reference)
    folded = FoldedSamAttention(_sam_config(), window).eval()
    folded.load_state_dict(reference.state_dict())
    hidden = torch.randn(views, grid, grid, 768)
    with torch.no_grad():
        want, _ = reference(hidden)
        got, weights = folded(hidden)
    assert weights is None and got.shape == want.shape
    # The rel-pos terms must matter at these scales, or the comparison proves little.
    assert want.abs().max() > 1.0
    return float((got - want).abs().max())


@pytest.mark.parametrize("shape", list(SHAPES))
def test_matches_sdpa_attention_at_real_shapes(shape: str) -> None:
    window, grid, views = SHAPES[shape]
    diff = _max_diff(window, grid, views, DeepseekOcr2SamVisionSdpaAttention)
    assert diff <= TOL, f"{shape}: max abs diff {diff:.3g}"


@pytest.mark.parametrize("shape", ["global-768px", "window-14"])
def test_matches_eager_attention(shape: str) -> None:
    # The eager class also builds the L x L weights; the 64x64 case is left to the SDPA test.
    window, grid, views = SHAPES[shape]
    diff = _max_diff(window, grid, views, DeepseekOcr2SamVisionAttention)
    assert diff <= TOL, f"{shape}: max abs diff {diff:.3g}"


def test_without_rel_pos_is_plain_attention() -> None:
    config = _sam_config(hidden_size=96, num_attention_heads=4, use_rel_pos=False)
    reference = DeepseekOcr2SamVisionSdpaAttention(config, 14).eval()
    _randomise(reference)
    folded = FoldedSamAttention(config, 14).eval()
    folded.load_state_dict(reference.state_dict())
    hidden = torch.randn(3, 14, 14, 96)
    with torch.no_grad():
        assert float((folded(hidden)[0] - reference(hidden)[0]).abs().max()) <= TOL


def test_folded_head_dims_are_multiples_of_eight() -> None:
    assert folded_head_dim(64, (64, 64)) == 192
    assert folded_head_dim(64, (48, 48)) == 160
    assert folded_head_dim(64, (14, 14)) == 96  # 92 padded
    assert folded_head_dim(24, (16, 16), use_rel_pos=False) == 24


@pytest.fixture()
def sdpa_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Record the shapes and mask of every ``F.scaled_dot_product_attention`` call."""
    calls: list[dict[str, Any]] = []
    real = F.scaled_dot_product_attention

    def recording(
        query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        mask = kwargs.get("attn_mask", args[0] if args else None)
        calls.append({"q": query.shape, "k": key.shape, "v": value.shape, "mask": mask})
        return real(query, key, value, *args, **kwargs)

    # Both the folded module (F.) and transformers (torch.nn.functional.) resolve it here.
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    yield calls


def test_folded_attention_passes_no_mask(sdpa_calls: list[dict[str, Any]]) -> None:
    window, grid, views = SHAPES["global-768px"]
    reference = DeepseekOcr2SamVisionSdpaAttention(_sam_config(), window).eval()
    _randomise(reference)
    hidden = torch.randn(views, grid, grid, 768)
    length = grid * grid
    with torch.no_grad():
        reference(hidden)
        # Control: the recorder sees the unfolded class's dense [views, heads, L, L] bias.
        assert sdpa_calls[-1]["mask"].shape == (views, 12, length, length)
        fold_sam_attention(reference)
        reference(hidden)
    call = sdpa_calls[-1]
    assert call["mask"] is None
    # q' and k' carry the fold (64 + 48 + 48); v is padded to match so the fused CPU kernel
    # (which wants equal head dims) takes it instead of the math fallback.
    assert call["q"] == call["k"] == call["v"] == (views, 12, length, 160)


def test_fold_switches_a_native_ocr2_vision_tower() -> None:
    from transformers import DeepseekOcr2ForConditionalGeneration

    config = tiny_ocr2.build_config(tiny_ocr2.build_tokenizer())
    # One global layer besides the windowed one, so both kinds are compared.
    config.vision_config.sam_config.global_attn_indexes = [1]
    model = DeepseekOcr2ForConditionalGeneration(config).eval()
    tower = model.model.vision_tower
    for module in tower.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            module.reset_parameters()  # SAM's 1e-10 init would make every image the same
    with torch.no_grad():
        for module in tower.modules():
            if isinstance(module, DeepseekOcr2SamVisionAttention):
                module.rel_pos_h.normal_(0.0, 0.5)
                module.rel_pos_w.normal_(0.0, 0.5)
    layers = len(tower.sam_encoder.layers)
    pixels = {size: torch.randn(1, 3, size, size) for size in (768, 1024)}
    with torch.no_grad():
        before = {size: tower(p).last_hidden_state for size, p in pixels.items()}
        params = {name: p.clone() for name, p in tower.named_parameters()}

        assert fold_sam_attention(model) == layers == 2
        attns = [layer.attn for layer in tower.sam_encoder.layers]
        assert all(type(attn) is FoldedSamAttention for attn in attns)
        after = {size: tower(p).last_hidden_state for size, p in pixels.items()}
        for size in pixels:
            diff = float((after[size] - before[size]).abs().max())
            assert diff <= TOL, f"{size} px: max abs diff {diff:.3g}"

        # A second call finds nothing left to switch and changes nothing.
        assert fold_sam_attention(model) == 0
        again = tower(pixels[768]).last_hidden_state
    assert torch.equal(again, after[768])
    for name, p in tower.named_parameters():
        assert torch.equal(p, params[name]), name


def test_deepencoder_folds_sam_by_default() -> None:
    config = DeepEncoderConfig(
        sam_embed_dim=32,
        sam_depth=2,
        sam_num_heads=2,
        sam_global_attn_indexes=[1],
        sam_out_chans=16,
        sam_downsample_channels=[16, 32],
        clip_hidden_size=32,
        clip_num_layers=1,
        clip_num_heads=2,
        clip_ffn_hidden_size=64,
        projector_input_dim=64,
    )
    attn = [layer.attn for layer in DeepEncoder(config).sam.layers]
    assert all(type(a) is FoldedSamAttention for a in attn)
    plain = [layer.attn for layer in DeepEncoder(config, fold_sam=False).sam.layers]
    assert all(type(a) is DeepseekOcr2SamVisionSdpaAttention for a in plain)
