"""DeepSeek-OCR v1 model: reference equivalence, key mapping, strict loading, batching, generate."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from tiny_v1 import (
    assert_matches_reference_run,
    bar_page,
    collate_pages,
    reference_expected,
    reference_ids,
    save_tiny_v1,
)

from deepocr_loaders.errors import ModelLoadError
from deepocr_loaders.models.deepseek_ocr_v1 import DeepseekOcrV1Config, DeepseekOcrV1ForCausalLM
from deepocr_loaders.models.loading import (
    _parameters_on_meta,
    load_deepseek_ocr_v1,
    v1_from_reference,
    v1_to_reference,
)
from deepocr_loaders.models.v1_processing import V1_PROMPT

FIXTURE = Path(__file__).parent / "fixtures" / "deepseek_ocr_v1"
# A subset of the recorded runs keeps this file fast: single views of both pages and the tiled
# Gundam page (the Large runs differ from Base only in size).
RUNS = ["page_a/gundam", "page_a/small", "page_b/tiny", "page_b/base"]


@pytest.fixture(scope="module")
def reference() -> tuple:
    expected = reference_expected("deepseek_ocr_v1")
    model, processor = load_deepseek_ocr_v1(FIXTURE, dtype=torch.float32)
    return expected, model, processor


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    folder = save_tiny_v1(tmp_path_factory.mktemp("v1") / "tiny")
    model, processor = load_deepseek_ocr_v1(folder, dtype="float32", device="cpu")
    return folder, model, processor


@pytest.mark.parametrize("run_name", RUNS)
def test_matches_the_reference_outputs(reference: tuple, run_name: str) -> None:
    expected, model, processor = reference
    run = expected["runs"][run_name]
    image = Image.open(FIXTURE / expected["images"][run["image"]]["file"])
    inputs = processor([image], [expected["prompt"]], mode=run["mode"])
    assert inputs["input_ids"][0].tolist() == reference_ids(run, expected["image_token_id"])
    assert_matches_reference_run(model, inputs, run)


def test_key_mapping_round_trips_the_reference_layout(reference: tuple) -> None:
    _, model, _ = reference
    ckpt = load_file(str(FIXTURE / "model.safetensors"))
    back = v1_to_reference(model.state_dict())
    assert set(back) == set(ckpt)
    for name, tensor in ckpt.items():
        assert torch.equal(back[name], tensor), name
    state, unexpected, missing = v1_from_reference(back, num_experts=4)
    assert (unexpected, missing) == ([], [])
    ours = model.state_dict()
    assert set(state) == set(ours)
    assert all(torch.equal(state[k], ours[k]) for k in ours)


def _copy_fixture(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_strict_loading_names_missing_and_unexpected_keys(tiny: tuple, tmp_path: Path) -> None:
    folder, _, _ = tiny
    broken = _copy_fixture(folder, tmp_path / "broken")
    tensors = load_file(str(broken / "model.safetensors"))
    del tensors["model.sam_model.neck.1.weight"]
    del tensors["model.layers.1.mlp.experts.3.up_proj.weight"]
    tensors["model.extra_head.weight"] = torch.zeros(2)
    save_file(tensors, str(broken / "model.safetensors"))
    with pytest.raises(ModelLoadError) as err:
        load_deepseek_ocr_v1(broken)
    message = str(err.value)
    assert "vision.sam.neck.layer_norm1.weight" in message
    assert "model.layers.1.mlp.experts.3.up_proj.weight" in message
    assert "model.extra_head.weight" in message
    assert str(broken) in message


def test_shape_mismatch_and_pickles_are_refused(tiny: tuple, tmp_path: Path) -> None:
    folder, _, _ = tiny
    wrong = _copy_fixture(folder, tmp_path / "wrong")
    tensors = load_file(str(wrong / "model.safetensors"))
    tensors["model.norm.weight"] = torch.ones(3)
    save_file(tensors, str(wrong / "model.safetensors"))
    with pytest.raises(ModelLoadError, match=r"model\.norm\.weight \(3,\)"):
        load_deepseek_ocr_v1(wrong)
    pickled = _copy_fixture(folder, tmp_path / "pickled")
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ModelLoadError, match="refusing to load"):
        load_deepseek_ocr_v1(pickled)
    with pytest.raises(ModelLoadError, match="no such folder"):
        load_deepseek_ocr_v1(tmp_path / "absent")


def test_left_padded_batch_matches_single_pages(tiny: tuple) -> None:
    _, model, processor = tiny
    images = [bar_page(2000, 650, 1), bar_page(1300, 700, 2), bar_page(500, 400, 3)]
    pages = [processor([im], [V1_PROMPT], mode="gundam") for im in images]
    # Three tiles, two tiles, none: token counts differ, so the batch really is left-padded.
    assert [p["tile_grid"][0].tolist() for p in pages] == [[3, 1], [2, 1], [1, 1]]
    batch = collate_pages(pages, processor.tokenizer.pad_token_id)
    with torch.no_grad():
        batched = model(**batch).logits
        for row, page in enumerate(pages):
            single = model(**page).logits[0]
            n = single.shape[0]
            torch.testing.assert_close(batched[row, -n:], single, atol=1e-4, rtol=1e-4)
    # Different pages give different outputs: the images reach the decoder.
    assert not torch.allclose(batched[0, -1], batched[2, -1], atol=1e-3)


def test_generate_batched_equals_single_and_encodes_images_once(tiny: tuple) -> None:
    _, model, processor = tiny
    assert model.generation_config.eos_token_id == processor.tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == processor.tokenizer.pad_token_id
    pages = [
        processor([bar_page(1300, 700, 4)], [V1_PROMPT], mode="gundam"),
        processor([bar_page(600, 600, 5)], [V1_PROMPT], mode="gundam"),
    ]
    calls: list[int] = []
    hook = model.vision.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    try:
        batch = collate_pages(pages, processor.tokenizer.pad_token_id)
        out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    finally:
        hook.remove()
    # One encoder call for the two global views and one for the two tiles, prefill only.
    assert calls == [2, 2]
    new = out[:, batch["input_ids"].shape[1] :]
    for row, page in enumerate(pages):
        single = model.generate(**page, max_new_tokens=4, do_sample=False)
        assert new[row].tolist() == single[0, page["input_ids"].shape[1] :].tolist()
    assert new.shape == (2, 4)


def test_image_token_mismatch_is_an_error(tiny: tuple) -> None:
    _, model, processor = tiny
    page = processor([bar_page(500, 400, 6)], [V1_PROMPT], mode="base")
    ids = page["input_ids"].clone()
    ids[0, 1] = processor.tokenizer.pad_token_id  # one image position fewer
    with pytest.raises(ValueError, match=r"image tokens per page \[272\]"):
        model(input_ids=ids, pixel_values=page["pixel_values"], tile_grid=page["tile_grid"])
    with pytest.raises(ValueError, match="tile_grid asks for 6 tiles"):
        model(**{**page, "tile_grid": torch.tensor([[2, 3]])})


def test_real_size_model_has_the_released_key_layout() -> None:
    """The released config builds the 3.3B model (on meta) whose reference names are the 2710
    tensors of deepseek-ai/DeepSeek-OCR's model.safetensors.index.json (checked by hand)."""
    config = DeepseekOcrV1Config.from_reference({"model_type": "deepseek_vl_v2"})
    with _parameters_on_meta():
        model = DeepseekOcrV1ForCausalLM(config)
    assert sum(p.numel() for p in model.parameters()) == 3_336_106_240
    names = v1_to_reference(model.state_dict())
    assert len(names) == 2710
    for key in (
        "model.sam_model.blocks.11.attn.rel_pos_h",
        "model.sam_model.net_3.weight",
        "model.vision_model.transformer.layers.23.self_attn.qkv_proj.weight",
        "model.vision_model.pre_layrnorm.bias",
        "model.projector.layers.weight",
        "model.view_seperator",
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.11.mlp.experts.63.down_proj.weight",
        "model.layers.11.mlp.shared_experts.up_proj.weight",
        "lm_head.weight",
    ):
        assert key in names
    assert tuple(names["model.sam_model.net_3.weight"].shape) == (1024, 512, 3, 3)
    assert tuple(names["model.projector.layers.weight"].shape) == (1280, 2048)
    state, unexpected, missing = v1_from_reference(names, num_experts=64)
    assert (unexpected, missing) == ([], [])
    assert set(state) == set(model.state_dict())
