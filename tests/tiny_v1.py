"""Tiny random-weight DeepSeek-OCR v1 and DeepOCR checkpoints in the released folder layouts.

The shapes the token formulas depend on stay real (SAM patch 16 on 1024/640 px views, two
stride-2 convolutions, CLIP's 16 x 16 position grid), everything else is shrunk so a page takes
well under a second on a CPU. SAM keeps windowed attention only: global attention over 4096
patches is what makes a CPU slow. Imported by tests (no conftest).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tiny_ocr2 import build_tokenizer

#: The committed reference fixtures (``tests/fixtures/README.md``).
FIXTURES = Path(__file__).parent / "fixtures"


def reference_expected(name: str) -> dict[str, Any]:
    """``fixtures/<name>/expected.json``; the calling test skips while the fixture is absent."""
    import pytest

    folder = FIXTURES / name
    if not (folder / "READY").is_file():
        pytest.skip(f"reference fixture tests/fixtures/{name} not generated yet")
    return dict(json.loads((folder / "expected.json").read_text(encoding="utf-8")))


def reference_ids(run: dict[str, Any], image_token_id: int) -> list[int]:
    """The reference's input_ids: recorded whole, or as prefix + image run + suffix."""
    if "input_ids" in run:
        return list(run["input_ids"])
    layout = run["input_layout"]
    image = [image_token_id] * run["num_image_tokens"]
    return list(layout["prefix_ids"] + image + layout["suffix_ids"])


def assert_matches_reference_run(model: Any, inputs: dict[str, Any], run: dict[str, Any]) -> None:
    """Image features, last-position logits and (when recorded) 8 greedy tokens of ``model`` on
    ``inputs`` equal a run the reference code recorded (fp32, 1e-4)."""
    import pytest
    import torch

    with torch.no_grad():
        feats = model.get_image_features(
            inputs["pixel_values"], inputs.get("pixel_values_local"), inputs["tile_grid"]
        )[0]
        logits = model(**inputs).logits[0, -1]
    want = run["image_features"]
    assert list(feats.shape) == want["shape"]
    for row, key in ((0, "row0_first8"), (1, "row1_first8"), (-1, "last_first8")):
        torch.testing.assert_close(feats[row, :8], torch.tensor(want[key]), atol=1e-4, rtol=1e-4)
    assert feats.sum().item() == pytest.approx(want["sum"], rel=1e-4, abs=1e-2)
    assert feats.abs().sum().item() == pytest.approx(want["abs_sum"], rel=1e-4)
    torch.testing.assert_close(
        logits[:16], torch.tensor(run["last_logits_first16"]), atol=1e-4, rtol=1e-4
    )
    assert logits.argmax().item() == run["last_logits_argmax"]
    if "generated_ids" in run:
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
        assert out[0, inputs["input_ids"].shape[1] :].tolist() == run["generated_ids"]


def bar_page(width: int, height: int, seed: int) -> Any:
    """A synthetic page (PIL image): text-like bars at seed-dependent places."""
    import torch
    from PIL import Image, ImageDraw

    gen = torch.Generator().manual_seed(seed)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = (torch.rand(2, generator=gen) * torch.tensor([width, height])).tolist()
        draw.rectangle((x, y, x + width / 5, y + 8), fill=(20, 20, 20))
    return image


#: Encoder dims of the tiny checkpoints (the ``"deepencoder"`` config block).
TINY_ENCODER = {
    "sam_embed_dim": 32,
    "sam_depth": 2,
    "sam_num_heads": 2,
    "sam_window_size": 14,
    "sam_global_attn_indexes": [],
    "sam_out_chans": 16,
    "sam_downsample_channels": [32, 48],
    "sam_mlp_ratio": 4.0,
    "sam_patch_size": 16,
    "sam_image_size": 1024,
    "clip_hidden_size": 48,
    "clip_num_layers": 1,
    "clip_num_heads": 4,
    "clip_ffn_hidden_size": 96,
    "clip_image_size": 224,
    "clip_patch_size": 14,
    "clip_layernorm_eps": 1e-5,
    "projector_input_dim": 96,
}
CHAT_TOKENS = ["<|im_start|>", "<|im_end|>"]
_CHAT_WORDS = ["system", "user", "assistant", "You", "are", "helpful", "assistant."]


def _v1_language_config(tokenizer: Any) -> dict[str, Any]:
    """A tiny ``language_config`` in the released DeepseekV2 schema."""
    return {
        "architectures": ["DeepseekV2ForCausalLM"],
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "first_k_dense_replace": 1,
        "hidden_size": 64,
        "intermediate_size": 128,
        "kv_lora_rank": None,
        "lm_head": True,
        "max_position_embeddings": 8192,
        "moe_intermediate_size": 32,
        "n_group": 1,
        "n_routed_experts": 4,
        "n_shared_experts": 2,
        "num_attention_heads": 4,
        "num_experts_per_tok": 2,
        "num_hidden_layers": 2,
        "num_key_value_heads": 4,
        "q_lora_rank": None,
        "topk_group": 1,
        "topk_method": "greedy",
        "use_mla": False,
        "vocab_size": len(tokenizer),
    }


def v1_reference_config(tokenizer: Any) -> dict[str, Any]:
    """config.json of a tiny v1 checkpoint: the released schema plus the ``deepencoder`` block."""
    enc = TINY_ENCODER
    lang = _v1_language_config(tokenizer)
    return {
        "architectures": ["DeepseekOCRForCausalLM"],
        "model_type": "deepseek_vl_v2",
        "candidate_resolutions": [[1024, 1024]],
        "global_view_pos": "head",
        "tile_tag": "2D",
        "language_config": lang,
        "projector_config": {
            "input_dim": enc["projector_input_dim"],
            "model_type": "mlp_projector",
            "n_embed": lang["hidden_size"],
            "projector_type": "linear",
        },
        "vision_config": {
            "image_size": 1024,
            "model_name": "deeplip_b_l",
            "model_type": "vision",
            "width": {
                "clip-l-14-224": {
                    "heads": enc["clip_num_heads"],
                    "image_size": enc["clip_image_size"],
                    "layers": enc["clip_num_layers"],
                    "patch_size": enc["clip_patch_size"],
                    "width": enc["clip_hidden_size"],
                },
                "sam_vit_b": {
                    "downsample_channels": enc["sam_downsample_channels"],
                    "global_attn_indexes": enc["sam_global_attn_indexes"],
                    "heads": enc["sam_num_heads"],
                    "layers": enc["sam_depth"],
                    "width": enc["sam_embed_dim"],
                },
            },
        },
        "deepencoder": dict(enc),
        **{k: v for k, v in lang.items() if k != "architectures"},
    }


def _randomise(model: Any, tokenizer: Any, eos_id: int, eos_scale: float) -> None:
    """Weights that make pages decode differently (random init alone is nearly constant)."""
    import torch

    with torch.no_grad():
        for module in model.vision.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                module.reset_parameters()
        model.get_input_embeddings().weight.normal_(0.0, 1.0)
        model.get_output_embeddings().weight.normal_(0.0, 0.5)
        model.projector.weight.normal_(0.0, 1.0)
        # Strong value/output projections: the last position's attention (a near-uniform mix
        # of hundreds of image positions) then moves the logits, so pages decode differently.
        for name, param in model.named_parameters():
            if name.endswith(("self_attn.v_proj.weight", "self_attn.o_proj.weight")):
                param.normal_(0.0, 0.5)
        model.image_newline.normal_(0.0, 1.0)
        model.view_separator.normal_(0.0, 1.0)
        # eos_scale=0 pins the EOS logit at 0 while others spread: generation runs to
        # max_new_tokens unless a test crafts an EOS (as tests/tiny_ocr2.py does).
        model.get_output_embeddings().weight[eos_id].mul_(eos_scale)


def _save_tensors(tensors: dict[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path))


def save_tiny_v1(folder: Path, seed: int = 0, *, eos_scale: float = 0.0) -> Path:
    """A tiny ``deepseek-ai/DeepSeek-OCR``-layout folder: config.json, model.safetensors
    (reference key names), tokenizer files."""
    import torch

    from deepocr_loaders.models.deepseek_ocr_v1 import DeepseekOcrV1Config, DeepseekOcrV1ForCausalLM
    from deepocr_loaders.models.loading import v1_to_reference

    tokenizer = build_tokenizer()
    raw = v1_reference_config(tokenizer)
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    config = DeepseekOcrV1Config.from_reference({**raw, "image_token_id": image_id})
    torch.manual_seed(seed)
    model = DeepseekOcrV1ForCausalLM(config)
    _randomise(model, tokenizer, tokenizer.eos_token_id, eos_scale)
    folder.mkdir(parents=True, exist_ok=True)
    _save_tensors(v1_to_reference(model.state_dict()), folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(raw, indent=2), encoding="utf-8")
    tokenizer.save_pretrained(folder)
    return folder


#: VILA's chat_templates/qwen2.jinja as VILA installs it (indentation and newlines stripped).
QWEN2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant<|im_end|>\\n' }}{% endif %}"
    "{% for message in messages if message['content'] is not none %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_deepocr_tokenizer() -> Any:
    """The tiny tokenizer plus Qwen2's chat tokens, a newline token and VILA's chat template."""
    tokenizer = build_tokenizer()
    tokenizer.add_tokens(CHAT_TOKENS, special_tokens=True)
    tokenizer.add_tokens(["\n", *_CHAT_WORDS])
    tokenizer.chat_template = QWEN2_CHAT_TEMPLATE
    return tokenizer


def save_tiny_deepocr(folder: Path, seed: int = 0, *, eos_scale: float = 0.0) -> Path:
    """A tiny DeepOCR folder as VILA saves it: ``llm/`` (Qwen2 + tokenizer), ``mm_projector/``,
    ``sam_clip_ckpt/`` (SAM + CLIP under the v1 prefixes, named by the top config's
    ``mm_vision_tower``), top config with the encoder dims."""
    import torch
    from transformers import Qwen2Config

    from deepocr_loaders.models.deepocr import DeepOcrConfig, DeepOcrForCausalLM
    from deepocr_loaders.models.loading import deepencoder_to_reference

    tokenizer = build_deepocr_tokenizer()
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    text = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config = DeepOcrConfig(
        text_config=text,
        deepencoder=dict(TINY_ENCODER),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    torch.manual_seed(seed)
    model = DeepOcrForCausalLM(config)
    _randomise(model, tokenizer, eos_id, eos_scale)
    state = model.state_dict()
    llm_dir, proj_dir, vision_dir = (
        folder / "llm",
        folder / "mm_projector",
        folder / "sam_clip_ckpt",
    )
    for sub in (llm_dir, proj_dir, vision_dir):
        sub.mkdir(parents=True, exist_ok=True)
    model.llm.generation_config.eos_token_id = eos_id
    model.llm.save_pretrained(llm_dir, safe_serialization=True)
    tokenizer.save_pretrained(llm_dir)
    projector = {
        "layers.weight": state["projector.weight"],
        "layers.bias": state["projector.bias"],
        "image_newline": state["image_newline"],
        "view_seperator": state["view_separator"],
    }
    _save_tensors(projector, proj_dir / "model.safetensors")
    (proj_dir / "config.json").write_text(
        json.dumps({"model_type": "v2l_projector", "mm_projector_type": "linear"}), encoding="utf-8"
    )
    vision = deepencoder_to_reference(state, "model.sam_model.", "model.vision_model.")
    _save_tensors(vision, vision_dir / "model-00001-of-000001.safetensors")
    top = {
        "architectures": ["LlavaLlamaModel"],
        "model_type": "llava_llama",
        "mm_vision_tower": "sam_clip_ckpt/model-00001-of-000001.safetensors",
        "chat_template": "qwen2",
        "deepencoder": dict(TINY_ENCODER),
    }
    (folder / "config.json").write_text(json.dumps(top, indent=2), encoding="utf-8")
    return folder


def collate_pages(pages: list[Any], pad_id: int) -> dict[str, Any]:
    """Left-pad one-page processor outputs into a batch (the engine's layout): tiles of all pages
    concatenated in page order, one ``tile_grid`` row per page."""
    import torch

    length = max(p["input_ids"].shape[1] for p in pages)
    ids, mask = [], []
    for p in pages:
        pad = length - p["input_ids"].shape[1]
        ids.append(torch.cat([torch.full((1, pad), pad_id), p["input_ids"]], dim=1))
        mask.append(torch.cat([torch.zeros(1, pad, dtype=torch.long), p["attention_mask"]], dim=1))
    batch = {
        "input_ids": torch.cat(ids),
        "attention_mask": torch.cat(mask),
        "pixel_values": torch.cat([p["pixel_values"] for p in pages]),
        "tile_grid": torch.cat([p["tile_grid"] for p in pages]),
    }
    tiles = [p["pixel_values_local"] for p in pages if "pixel_values_local" in p]
    if tiles:
        batch["pixel_values_local"] = torch.cat(tiles)
    return batch
