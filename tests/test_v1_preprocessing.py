"""DeepSeek-OCR v1 / DeepOCR preprocessing: modes, token counts, tile grids, processor layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from tiny_ocr2 import build_tokenizer
from tiny_v1 import build_deepocr_tokenizer, reference_expected, reference_ids

from deepocr_loaders.models.v1_modes import choose_tile_grid, get_v1_mode, plan_v1_page
from deepocr_loaders.models.v1_processing import V1_PROMPT, DeepEncoderProcessor

FIXTURE = Path(__file__).parent / "fixtures" / "deepseek_ocr_v1"
GREY = (127 / 255 - 0.5) / 0.5  # the padding colour after normalisation


@pytest.mark.parametrize(
    ("mode", "tokens"),
    [("tiny", 73), ("small", 111), ("base", 273), ("large", 421), ("no-crop", 273)],
)
def test_single_view_modes_count_features_newlines_and_separator(mode: str, tokens: int) -> None:
    side = get_v1_mode(mode).base_size // 64
    assert tokens == side * (side + 1) + 1
    for size in [(1000, 1400), (300, 200), (5000, 600)]:
        plan = plan_v1_page(*size, mode)
        assert plan.num_image_tokens == tokens
        assert plan.tile_grid == (1, 1)
        assert plan.num_tiles == 0


def test_gundam_tiles_large_pages_only() -> None:
    small = plan_v1_page(640, 640, "gundam")  # both sides <= 640: global view only
    assert (small.tile_grid, small.num_image_tokens) == ((1, 1), 273)
    page = plan_v1_page(1000, 1400, "gundam")  # portrait A4-ish -> 2 x 3 tiles
    assert page.tile_grid == (2, 3)
    assert page.num_image_tokens == 273 + (3 * 10) * (2 * 10 + 1)
    assert page.num_feature_tokens == 256 + 6 * 100
    assert plan_v1_page(641, 640, "gundam").tile_grid == (2, 2)


def test_gundam_tile_bounds_follow_the_mode() -> None:
    assert plan_v1_page(4000, 600, "gundam").tile_grid == (7, 1)  # HF reference: up to 9
    assert plan_v1_page(4000, 600, "gundam-6").tile_grid == (6, 1)  # vLLM config: up to 6
    assert choose_tile_grid(300, 2000, max_tiles=9) == (1, 7)


def test_mode_lookup_and_errors() -> None:
    assert get_v1_mode("Dynamic") is get_v1_mode("gundam")
    mode = get_v1_mode("small")
    assert get_v1_mode(mode) is mode
    with pytest.raises(ValueError, match="unknown DeepSeek-OCR v1 mode 'huge'"):
        get_v1_mode("huge")
    with pytest.raises(ValueError, match="positive"):
        plan_v1_page(0, 10, "base")


def test_counts_and_grids_match_the_reference() -> None:
    expected = reference_expected("deepseek_ocr_v1")
    for size, per_mode in expected["token_counts"].items():
        width, height = map(int, size.split("x"))
        for mode, count in per_mode.items():
            assert plan_v1_page(width, height, mode).num_image_tokens == count, (size, mode)
        grid = expected["tile_grids"][size]
        assert plan_v1_page(width, height, "gundam").tile_grid == (
            grid["width_tiles"],
            grid["height_tiles"],
        )
        if plan_v1_page(width, height, "gundam").num_tiles:
            assert plan_v1_page(width, height, "gundam-6").tile_grid == tuple(grid["grid_if_max_6"])


def test_processor_input_ids_match_the_reference() -> None:
    expected = reference_expected("deepseek_ocr_v1")
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast.from_pretrained(FIXTURE)
    processor = DeepEncoderProcessor(tokenizer, template="plain")
    assert processor.image_token_id == expected["image_token_id"]
    for name, run in expected["runs"].items():
        image = Image.open(FIXTURE / expected["images"][run["image"]]["file"])
        out = processor([image], [expected["prompt"]], mode=run["mode"])
        assert out["input_ids"][0].tolist() == reference_ids(run, processor.image_token_id), name
        assert out["tile_grid"][0].tolist() == run["images_spatial_crop"], name
        assert list(out["pixel_values"].shape) == run["pixel_values"]["global_shape"], name
        assert out["pixel_values"].sum().item() == pytest.approx(
            run["pixel_values"]["global_sum"], rel=1e-6
        )
        if run["pixel_values"]["tiles_sum"]:
            tiles = out["pixel_values_local"]
            assert list(tiles.shape) == run["pixel_values"]["tiles_shape"], name
            assert tiles.sum().item() == pytest.approx(run["pixel_values"]["tiles_sum"], rel=1e-6)
        else:
            assert "pixel_values_local" not in out, name


def test_processor_layout_for_a_tiled_page() -> None:
    tok = build_tokenizer()
    processor = DeepEncoderProcessor(tok)
    assert processor.default_mode == "gundam"
    # Left half black, right half white: tiles are row-major, so the first tile is black.
    image = Image.new("RGB", (1000, 1400), "white")
    image.paste((0, 0, 0), (0, 0, 500, 1400))
    out = processor([image], [V1_PROMPT], mode="gundam")
    ids = out["input_ids"][0].tolist()
    n = processor.num_image_tokens(1000, 1400, "gundam")
    assert ids[0] == tok.bos_token_id
    assert ids[1 : 1 + n] == [processor.image_token_id] * n
    assert processor.image_token_id not in ids[1 + n :]
    assert ids[1 + n :] == tok.encode(
        "\n<|grounding|>Convert the document to markdown.", add_special_tokens=False
    )
    assert out["attention_mask"].tolist() == [[1] * len(ids)]
    assert out["pixel_values"].shape == (1, 3, 1024, 1024)
    assert out["pixel_values_local"].shape == (6, 3, 640, 640)
    assert out["tile_grid"].tolist() == [[2, 3]]
    assert out["input_ids"].dtype == torch.long and out["tile_grid"].dtype == torch.long
    tiles = out["pixel_values_local"]
    assert tiles[0].mean().item() == pytest.approx(-1.0, abs=1e-2)  # top-left: black
    assert tiles[1].mean().item() == pytest.approx(1.0, abs=1e-2)  # top-right: white
    # The global view keeps the aspect ratio: grey bands left and right of the page.
    view = out["pixel_values"][0]
    assert view[:, :, 0].mean().item() == pytest.approx(GREY, abs=1e-6)
    assert view[:, 512, 1023].mean().item() == pytest.approx(GREY, abs=1e-6)


def test_tiny_and_small_squash_instead_of_padding() -> None:
    processor = DeepEncoderProcessor(build_tokenizer())
    wide = Image.new("RGB", (1000, 300), "white")
    squashed = processor([wide], ["Free OCR."], mode="tiny")["pixel_values"]
    padded = processor([wide], ["Free OCR."], mode="base")["pixel_values"]
    assert squashed.shape == (1, 3, 512, 512)
    assert torch.all(squashed == 1.0)  # no grey: the page fills the square
    assert padded[0, :, 0, :].mean().item() == pytest.approx(GREY, abs=1e-6)
    assert padded[0, :, 512, :].mean().item() == pytest.approx(1.0)


def test_prompt_without_image_gets_one_and_bad_inputs_fail() -> None:
    tok = build_tokenizer()
    processor = DeepEncoderProcessor(tok)
    image = Image.new("RGB", (300, 300), "white")
    ids = processor([image], ["Free OCR ."], mode="small")["input_ids"][0].tolist()
    assert ids.count(processor.image_token_id) == 111
    text = tok.encode("Free OCR .", add_special_tokens=False)
    assert ids[-len(text) :] == text
    with pytest.raises(ValueError, match="exactly one <image>"):
        processor([image], ["<image> <image>"], mode="small")
    with pytest.raises(ValueError, match="one page per call"):
        processor([image, image], ["x"], mode="small")
    with pytest.raises(ValueError, match="unknown template"):
        DeepEncoderProcessor(tok, template="llama")


def test_qwen2_template_wraps_the_prompt_without_bos() -> None:
    tok = build_deepocr_tokenizer()
    processor = DeepEncoderProcessor(tok, template="qwen2")
    assert processor.default_mode == "gundam-6"  # DeepOCR's config: 2 to 6 tiles
    out = processor([Image.new("RGB", (200, 200))], ["<image>\nFree OCR."], mode="base")
    ids = out["input_ids"][0].tolist()
    start, end = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    assert ids[0] == start and tok.bos_token_id not in ids
    assert ids.count(start) == 3 and ids.count(end) == 2
    first = ids.index(processor.image_token_id)
    assert ids[first : first + 273] == [processor.image_token_id] * 273
    newline = tok.convert_tokens_to_ids("\n")
    # VILA's image encoder ends every image with "\n", then the prompt's own "\n" follows.
    assert ids[first + 273 : first + 275] == [newline, newline]
    # The generation prompt closes the template: "<|im_start|>assistant\n".
    assert ids[-3:] == [start, tok.convert_tokens_to_ids("assistant"), newline]
