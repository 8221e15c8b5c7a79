"""DeepOCR (SAM + CLIP + Qwen2) model: reference equivalence, folder loading, batching."""

from __future__ import annotations

import json
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
    save_tiny_deepocr,
)

from deepocr_loaders.errors import ModelLoadError
from deepocr_loaders.models.loading import load_deepocr
from deepocr_loaders.models.v1_modes import plan_v1_page
from deepocr_loaders.models.v1_processing import DEEPOCR_PROMPT

FIXTURE = Path(__file__).parent / "fixtures" / "deepocr"
VISION_FILE = "sam_clip_ckpt/model-00001-of-000001.safetensors"
MODE = "gundam-6"  # DeepOCR's config: 640 px tiles, 2 to 6 of them, 1024 px global view


@pytest.fixture(scope="module")
def reference() -> tuple:
    expected = reference_expected("deepocr")
    model, processor = load_deepocr(FIXTURE, dtype=torch.float32)
    return expected, model, processor


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    folder = save_tiny_deepocr(tmp_path_factory.mktemp("deepocr") / "tiny")
    model, processor = load_deepocr(folder, dtype="float32", device="cpu")
    return folder, model, processor


def test_token_counts_and_grids_match_the_reference(reference: tuple) -> None:
    expected, _, _ = reference
    assert expected["min_max_tiles"] == [2, 6]
    for size, counts in expected["token_counts"].items():
        width, height = map(int, size.split("x"))
        plan = plan_v1_page(width, height, MODE)
        assert plan.num_image_tokens == counts["projected_rows"], size
        grid = expected["tile_grids"][size]
        assert plan.tile_grid == (grid["width_tiles"], grid["height_tiles"]), size


@pytest.mark.parametrize("page", ["page_a", "page_b"])
def test_matches_the_reference_outputs(reference: tuple, page: str) -> None:
    expected, model, processor = reference
    run = expected["runs"][page]
    assert processor.format_prompt(DEEPOCR_PROMPT) == expected["prompt_after_template"]
    inputs = processor(
        [Image.open(FIXTURE / expected["images"][page]["file"])], [DEEPOCR_PROMPT], mode=MODE
    )
    ids = inputs["input_ids"][0].tolist()
    start, end = run["image_span"]
    assert len(ids) == run["sequence_length"]
    assert ids.index(processor.image_token_id) == start
    assert ids[start:end] == [processor.image_token_id] * (end - start)
    assert ids[run["newline_row_at"]] == expected["newline_ids"][0]
    assert inputs["tile_grid"][0].tolist() == run["images_spatial_crop"]
    assert "generated_ids" in run  # every DeepOCR run records its greedy tokens
    assert_matches_reference_run(model, inputs, run)


def test_left_padded_batch_and_generate_match_single_pages(tiny: tuple) -> None:
    _, model, processor = tiny
    pages = [
        processor([bar_page(1300, 700, 1)], [DEEPOCR_PROMPT], mode=MODE),
        processor([bar_page(400, 500, 2)], [DEEPOCR_PROMPT], mode=MODE),
    ]
    assert [p["tile_grid"][0].tolist() for p in pages] == [[2, 1], [1, 1]]
    batch = collate_pages(pages, processor.tokenizer.pad_token_id)
    with torch.no_grad():
        batched = model(**batch).logits
        singles = [model(**p).logits[0] for p in pages]
    for row, single in enumerate(singles):
        torch.testing.assert_close(batched[row, -single.shape[0] :], single, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(singles[0][-1], singles[1][-1], atol=1e-3)
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    for row, page in enumerate(pages):
        alone = model.generate(**page, max_new_tokens=4, do_sample=False)
        assert out[row, batch["input_ids"].shape[1] :].tolist() == (
            alone[0, page["input_ids"].shape[1] :].tolist()
        )


def test_folder_layout_errors_are_clear(tiny: tuple, tmp_path: Path) -> None:
    folder, _, _ = tiny
    no_projector = tmp_path / "no_projector"
    shutil.copytree(folder, no_projector)
    shutil.rmtree(no_projector / "mm_projector")
    with pytest.raises(ModelLoadError, match="no mm_projector/"):
        load_deepocr(no_projector)

    extra = tmp_path / "extra"
    shutil.copytree(folder, extra)
    tensors = load_file(str(extra / VISION_FILE))
    del tensors["model.vision_model.pre_layrnorm.bias"]
    tensors["model.sam_model.unknown.weight"] = torch.zeros(1)
    save_file(tensors, str(extra / VISION_FILE))
    with pytest.raises(ModelLoadError) as err:
        load_deepocr(extra)
    assert "vision.clip.pre_layernorm.bias" in str(err.value)
    assert "model.sam_model.unknown.weight" in str(err.value)

    # A full DeepSeek-OCR file as the vision source (VILA reads SAM + CLIP by prefix): the
    # decoder part is known and skipped; an unknown tensor is still an error (above).
    shared = tmp_path / "shared"
    shutil.copytree(folder, shared)
    tensors = load_file(str(shared / VISION_FILE))
    tensors["model.layers.0.mlp.gate_proj.weight"] = torch.zeros(4, 2)
    tensors["model.view_seperator"] = torch.zeros(1280)
    tensors["lm_head.weight"] = torch.zeros(3, 2)
    save_file(tensors, str(shared / VISION_FILE))
    load_deepocr(shared)

    # The release's config names the file by its path on the training machine: found by its
    # last two parts inside the folder, never read from outside it.
    released = tmp_path / "released"
    shutil.copytree(folder, released)
    config = json.loads((released / "config.json").read_text(encoding="utf-8"))
    config["mm_vision_tower"] = "/scratch/train/" + config["mm_vision_tower"]
    (released / "config.json").write_text(json.dumps(config), encoding="utf-8")
    load_deepocr(released)
    # Named outside the folder and not found inside: vision_tower/ is the documented place.
    config["mm_vision_tower"] = "../elsewhere/model.safetensors"
    (released / "config.json").write_text(json.dumps(config), encoding="utf-8")
    vision_dir = released / "sam_clip_ckpt"
    vision_dir.rename(released / "vision_tower")
    load_deepocr(released)
    shutil.rmtree(released / "vision_tower")
    with pytest.raises(ModelLoadError, match=r"not a file in the folder.*vision_tower/"):
        load_deepocr(released)
