"""Figure crops: right pixels, safe names, never outside the output folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from deepocr_loaders.errors import DeepOCRError
from deepocr_loaders.figures import crop_figures, safe_stem
from deepocr_loaders.grounding import build_page

RAW = (
    "<|ref|>title<|/ref|><|det|>[[0, 0, 999, 99]]<|/det|>\n# Report\n\n"
    "<|ref|>image<|/ref|><|det|>[[100, 200, 500, 600]]<|/det|>\n\n"
    "<|ref|>image_caption<|/ref|><|det|>[[100, 610, 500, 650]]<|/det|>\nFigure 1: red\n"
)


def _page_and_image() -> tuple[object, Image.Image]:
    page = build_page(RAW, index=2, width=612.0, height=792.0)
    # Rendered at 2x (144 dpi): the figure area is red, the rest white.
    image = Image.new("RGB", (1224, 1584), "white")
    fig = page.blocks[1].bbox
    assert fig is not None
    box = fig.scale(2, 2)
    image.paste((255, 0, 0), (round(box.x0), round(box.y0), round(box.x1), round(box.y1)))
    return page, image


def test_crops_figure_blocks_at_the_image_resolution(tmp_path: Path) -> None:
    page, image = _page_and_image()
    written = crop_figures(page, image, tmp_path, stem="report")  # type: ignore[arg-type]
    assert [p.name for p in written] == ["report-p3-1.png"]
    crop = Image.open(written[0])
    expected_w = round((500 - 100) / 999 * 612 * 2)
    assert abs(crop.width - expected_w) <= 2
    assert crop.getpixel((crop.width // 2, crop.height // 2)) == (255, 0, 0)
    md = page.markdown  # type: ignore[attr-defined]
    assert "![figure](report-p3-1.png)" in md and "Figure 1: red" in md


def test_hostile_stems_stay_inside_the_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for stem in ["../../etc/passwd", "..", "/abs/path", "a b/c\\d:e*?", "", "x" * 300]:
        page, image = _page_and_image()
        (path,) = crop_figures(page, image, out, stem=stem)  # type: ignore[arg-type]
        assert path.parent == out.resolve()
        assert len(path.name) < 100
    assert not (tmp_path / "etc").exists()
    assert safe_stem("../../etc/passwd") == "passwd"
    assert safe_stem("a b/c\\d:e*?") == "c_d_e"
    assert safe_stem("..") == "figure"


def test_blocks_without_boxes_or_other_kinds_are_skipped(tmp_path: Path) -> None:
    page = build_page("Plain free OCR text, no grounding.", index=0, width=100.0, height=100.0)
    assert crop_figures(page, Image.new("RGB", (200, 200)), tmp_path) == []
    page2, image = _page_and_image()
    assert crop_figures(page2, image, tmp_path, kinds=()) == []  # type: ignore[arg-type]


def test_a_crop_that_fails_midway_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page, image = _page_and_image()

    def half_then_fail(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"\x89PNG partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    with monkeypatch.context() as mp:
        mp.setattr(Image.Image, "save", half_then_fail)
        with pytest.raises(DeepOCRError, match="disk full"):
            crop_figures(page, image, tmp_path, stem="report")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []  # neither a partial crop nor a temporary file
    (path,) = crop_figures(page, image, tmp_path, fmt="jpg", stem="report")  # type: ignore[arg-type]
    assert Image.open(path).format == "JPEG"
