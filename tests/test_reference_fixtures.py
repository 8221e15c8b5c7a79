"""Self-consistency of the reference fixtures in tests/fixtures/ (issue #7).

These only check that the committed fixture folders hang together (files, real key layout,
shapes vs config, tokenizers load under this project's transformers, expected.json complete);
the equivalence tests that run our implementation against expected.json live elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
V1 = FIXTURES / "deepseek_ocr_v1"
DEEPOCR = FIXTURES / "deepocr"

DEEPENCODER_KEYS = {
    "sam_embed_dim", "sam_depth", "sam_num_heads", "sam_window_size", "sam_global_attn_indexes",
    "sam_out_chans", "sam_downsample_channels", "sam_mlp_ratio", "sam_patch_size",
    "sam_image_size", "clip_hidden_size", "clip_num_layers", "clip_num_heads",
    "clip_ffn_hidden_size", "clip_image_size", "clip_patch_size", "clip_layernorm_eps",
    "projector_input_dim",
}  # fmt: skip
MODES = ["tiny", "small", "base", "large", "gundam"]


def _maker() -> Any:
    """The generator script, for its constants (it has no import-time side effects)."""
    spec = importlib.util.spec_from_file_location(
        "make_reference_fixtures", FIXTURES / "make_reference_fixtures.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tensors(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _check_encoder_shapes(t: dict[str, Any], enc: dict[str, Any], prefix: str = "model.") -> None:
    """SAM + CLIP tensor shapes follow the 'deepencoder' block; token-formula shapes stay real."""
    e, c0 = enc["sam_embed_dim"], enc["sam_out_chans"]
    c1, c2 = enc["sam_downsample_channels"]
    grid = enc["sam_image_size"] // enc["sam_patch_size"]
    assert grid == 64 and enc["sam_patch_size"] == 16  # 1024 px -> 64 -> two stride-2 -> 16
    sam = prefix + "sam_model."
    assert t[sam + "patch_embed.proj.weight"].shape == (e, 3, 16, 16)
    assert t[sam + "pos_embed"].shape == (1, grid, grid, e)
    assert t[sam + "net_2.weight"].shape == (c1, c0, 3, 3)
    assert t[sam + "net_3.weight"].shape == (c2, c1, 3, 3)
    assert t[sam + "neck.0.weight"].shape == (c0, e, 1, 1)
    blocks = {k.split(".")[3] for k in t if k.startswith(sam + "blocks.")}
    assert len(blocks) == enc["sam_depth"]
    head_dim = e // enc["sam_num_heads"]
    for i in range(enc["sam_depth"]):
        span = grid if i in enc["sam_global_attn_indexes"] else enc["sam_window_size"]
        assert t[f"{sam}blocks.{i}.attn.rel_pos_h"].shape == (2 * span - 1, head_dim)
        hidden = int(e * enc["sam_mlp_ratio"])
        assert t[f"{sam}blocks.{i}.mlp.lin1.weight"].shape == (hidden, e)
    clip = prefix + "vision_model."
    h = enc["clip_hidden_size"]
    assert h == c2, "CLIP takes SAM's last conv output as its patch embeddings"
    positions = (enc["clip_image_size"] // enc["clip_patch_size"]) ** 2 + 1
    assert t[clip + "embeddings.position_embedding.weight"].shape == (positions, h)
    assert t[clip + "embeddings.class_embedding"].shape == (h,)
    layers = {k.split(".")[4] for k in t if k.startswith(clip + "transformer.layers.")}
    assert len(layers) == enc["clip_num_layers"]
    assert t[clip + "transformer.layers.0.self_attn.qkv_proj.weight"].shape == (3 * h, h)
    assert t[clip + "transformer.layers.0.mlp.fc1.weight"].shape == (enc["clip_ffn_hidden_size"], h)
    assert enc["projector_input_dim"] == h + c2


def _tile_rows(grid: dict[str, int]) -> int:
    """Image rows the 640-px tiles add: 10 rows per tile row, each 10 per tile + 1 newline."""
    if not grid["num_tiles"]:
        return 0
    return (10 * grid["width_tiles"] + 1) * 10 * grid["height_tiles"]


def _check_run(run: dict[str, Any]) -> None:
    assert len(run["last_logits_first16"]) == 16
    assert all(math.isfinite(v) for v in run["last_logits_first16"])
    assert len(run["generated_ids"]) == 8 and len(run["generated_top2_margins"]) == 8
    feats = run["image_features"]
    for key in ("row0_first8", "row1_first8", "last_first8"):
        assert len(feats[key]) == 8
    assert feats["abs_sum"] > 0 and math.isfinite(feats["sum"])
    assert [c["module"] for c in run["encoder_calls"]][-2:] == ["sam", "clip"]


# --- DeepSeek-OCR v1 ----------------------------------------------------------------------------
def test_v1_files_present() -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "expected.json", "page_a.png", "page_b.png", "READY"):  # fmt: skip
        assert (V1 / name).is_file(), name


def test_v1_config_schema_and_deepencoder_block() -> None:
    cfg = _json(V1 / "config.json")
    for key in ("language_config", "projector_config", "vision_config", "candidate_resolutions",
                "tile_tag", "global_view_pos", "deepencoder"):  # fmt: skip
        assert key in cfg
    assert set(cfg["deepencoder"]) == DEEPENCODER_KEYS
    assert cfg["projector_config"]["input_dim"] == cfg["deepencoder"]["projector_input_dim"]
    assert cfg["projector_config"]["n_embed"] == cfg["hidden_size"]
    assert cfg["language_config"]["use_mla"] is False
    sam = cfg["vision_config"]["width"]["sam_vit_b"]
    assert sam["width"] == cfg["deepencoder"]["sam_embed_dim"]


def test_v1_safetensors_use_the_real_key_layout_and_config_shapes() -> None:
    maker = _maker()
    cfg = _json(V1 / "config.json")
    t = _tensors(V1 / "model.safetensors")
    assert {maker.key_pattern(k) for k in t} == maker.V1_REAL_KEY_PATTERNS
    vocab, hidden = cfg["vocab_size"], cfg["hidden_size"]
    assert t["model.embed_tokens.weight"].shape == (vocab, hidden)
    assert t["lm_head.weight"].shape == (vocab, hidden)
    assert t["model.image_newline"].shape == (hidden,)
    assert t["model.view_seperator"].shape == (hidden,)
    assert t["model.projector.layers.weight"].shape == (
        hidden,
        cfg["deepencoder"]["projector_input_dim"],
    )
    _check_encoder_shapes(t, cfg["deepencoder"])
    # Layer 0 dense (first_k_dense_replace = 1), later layers MoE with routed + shared experts.
    assert "model.layers.0.mlp.gate_proj.weight" in t
    n = cfg["num_hidden_layers"]
    for i in range(cfg["first_k_dense_replace"], n):
        experts = {k.split(".")[5] for k in t if k.startswith(f"model.layers.{i}.mlp.experts.")}
        assert len(experts) == cfg["n_routed_experts"]
        assert t[f"model.layers.{i}.mlp.gate.weight"].shape == (cfg["n_routed_experts"], hidden)
        shared = cfg["moe_intermediate_size"] * cfg["n_shared_experts"]
        assert t[f"model.layers.{i}.mlp.shared_experts.up_proj.weight"].shape == (shared, hidden)
    assert t["model.layers.0.self_attn.q_proj.weight"].shape == (hidden, hidden)  # plain MHA


def test_v1_tokenizer_loads_and_matches_recorded_ids() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(V1)
    exp = _json(V1 / "expected.json")
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (0, 1, 2)
    assert tok.convert_tokens_to_ids("<image>") == exp["image_token_id"]
    for special in ("<|grounding|>", "<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"):
        assert len(tok(special, add_special_tokens=False).input_ids) == 1
    layout = exp["runs"]["page_a/base"]["input_layout"]
    suffix = exp["prompt_after_template"].split("<image>")[1]
    assert tok(suffix, add_special_tokens=False).input_ids == layout["suffix_ids"]
    assert layout["prefix_ids"] == [tok.bos_token_id]


def test_v1_expected_json_is_complete_and_consistent() -> None:
    from PIL import Image

    exp = _json(V1 / "expected.json")
    assert {"torch", "transformers"} <= set(exp["reference"]["versions"])
    for name, info in exp["images"].items():
        assert Image.open(V1 / info["file"]).size == tuple(info["size"]), name
    for size, counts in exp["token_counts"].items():
        assert set(counts) == set(MODES), size
        # Fixed-size modes: q x (q + 1) + 1 with q = side / 64.
        assert (counts["tiny"], counts["small"], counts["base"], counts["large"]) == (
            73,
            111,
            273,
            421,
        )
        grid = exp["tile_grids"][size]
        tiles = _tile_rows(grid)
        assert counts["gundam"] == 273 + tiles
    assert exp["tile_grids"]["1000x1400"]["num_tiles"] == 6
    assert exp["tile_grids"]["500x300"]["num_tiles"] == 0
    assert set(exp["runs"]) == {f"{p}/{m}" for p in ("page_a", "page_b") for m in MODES}
    for key, run in exp["runs"].items():
        _check_run(run)
        start, end = run["input_layout"]["image_span"]
        assert end - start == run["num_image_tokens"] == run["image_features"]["shape"][0], key
        layout = run["input_layout"]
        assert (
            len(layout["prefix_ids"]) == start and exp["image_token_id"] not in layout["suffix_ids"]
        )
        assert (
            run["num_image_tokens"]
            == exp["token_counts"]["1000x1400" if key.startswith("page_a") else "500x300"][
                run["mode"]
            ]
        )


# --- DeepOCR ------------------------------------------------------------------------------------
def test_deepocr_folder_layout() -> None:
    cfg = _json(DEEPOCR / "config.json")
    for name in ("llm/config.json", "llm/model.safetensors", "llm/tokenizer.json",
                 "mm_projector/config.json", "mm_projector/model.safetensors",
                 "expected.json", "page_a.png", "page_b.png", "READY"):  # fmt: skip
        assert (DEEPOCR / name).is_file(), name
    assert (DEEPOCR / cfg["vision_tower_cfg"]).is_file()
    assert "sam_clip" in cfg["vision_tower_cfg"]  # VILA picks the SAM+CLIP tower by this name
    assert set(cfg["deepencoder"]) == DEEPENCODER_KEYS
    assert cfg["chat_template"] == "qwen2"


def test_deepocr_weights_match_config() -> None:
    import torch
    from transformers import AutoConfig, Qwen2ForCausalLM

    cfg = _json(DEEPOCR / "config.json")
    enc = cfg["deepencoder"]
    vision = _tensors(DEEPOCR / cfg["vision_tower_cfg"])
    assert all(k.startswith(("model.sam_model.", "model.vision_model.")) for k in vision)
    _check_encoder_shapes(vision, enc)

    llm_cfg = AutoConfig.from_pretrained(DEEPOCR / "llm")
    assert llm_cfg.model_type == "qwen2" and llm_cfg.hidden_size == cfg["hidden_size"]
    with torch.device("meta"):
        reference = Qwen2ForCausalLM(llm_cfg).state_dict()
    llm = _tensors(DEEPOCR / "llm/model.safetensors")
    assert set(llm) == set(reference)
    assert all(tuple(llm[k].shape) == tuple(reference[k].shape) for k in llm)

    proj = _tensors(DEEPOCR / "mm_projector/model.safetensors")
    hidden = cfg["hidden_size"]
    assert set(proj) == {"layers.weight", "layers.bias", "image_newline", "view_seperator"}
    assert proj["layers.weight"].shape == (hidden, enc["projector_input_dim"])
    assert proj["image_newline"].shape == proj["view_seperator"].shape == (hidden,)
    assert _json(DEEPOCR / "mm_projector/config.json")["mm_projector_type"] == "linear"


def test_deepocr_tokenizer_and_prompt() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(DEEPOCR / "llm")
    exp = _json(DEEPOCR / "expected.json")
    text = "".join(exp["prompt_parts"]).replace("<image>", "<image>\n")
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
    )
    assert prompt == exp["prompt_after_template"]
    assert tok(prompt).input_ids == exp["input_ids"]
    assert exp["input_ids"].count(exp["image_token_id"]) == 1
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == exp["eos_token_id"]


def test_deepocr_expected_json_is_complete_and_consistent() -> None:
    exp = _json(DEEPOCR / "expected.json")
    assert exp["min_max_tiles"] == [2, 6]
    for size, counts in exp["token_counts"].items():
        grid = exp["tile_grids"][size]
        tiles = _tile_rows(grid)
        assert counts["projected_rows"] == 273 + tiles, size
    assert set(exp["runs"]) == {"page_a", "page_b"}
    n_text = len(exp["input_ids"]) - 1
    for name, run in exp["runs"].items():
        _check_run(run)
        start, end = run["image_span"]
        assert end - start == run["num_image_rows"] == run["image_features"]["shape"][0]
        assert run["newline_row_at"] == end
        assert run["sequence_length"] == n_text + run["num_image_rows"] + len(exp["newline_ids"])
        size = "1000x1400" if name == "page_a" else "500x300"
        assert run["num_image_rows"] == exp["token_counts"][size]["projected_rows"]


@pytest.mark.parametrize("folder", [V1, DEEPOCR])
def test_fixture_folders_stay_small(folder: Path) -> None:
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total < 2.5 * 1024 * 1024, total
