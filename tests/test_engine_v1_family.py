"""The ``deepseek-ocr`` (v1) and ``deepocr`` engines on tiny random checkpoints in the released
folder layouts: loading, batching, token budgets, truncation, OOM back-off, no page lost.

The same guarantees as the OCR-2 engine (``test_engine_ocr2.py``), run against both models
since they share the batching code but not the model, processor or checkpoint layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import pymupdf  # noqa: E402

tiny_v1 = pytest.importorskip("tiny_v1")

from engine_pages import (  # noqa: E402
    BrokenSource,
    crafted_generate,
    family_engine,
    hub_offline,  # noqa: F401 (autouse fixture)
    make_pages,
    save_tiny_family,
    wrap_generate,
    wrap_image_features,
)

import deepocr_loaders as dl  # noqa: E402
from deepocr_loaders import PageStatus  # noqa: E402
from deepocr_loaders.engines.base import PageInput  # noqa: E402
from deepocr_loaders.engines.hf_batched import BatchedVisionEngine  # noqa: E402
from deepocr_loaders.errors import EngineError, ModelLoadError  # noqa: E402

FAMILY = ["deepseek-ocr", "deepocr"]
# Two tiles wide, small landscape (global view only), two tiles tall, small square.
SIZES = [(1400, 600), (600, 400), (600, 1400), (500, 500)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_tiny_family(tmp_path_factory)


def _pages(sizes: list[tuple[int, int]] = SIZES, seed: int = 0) -> list[PageInput]:
    return make_pages(sizes, seed)


def _engine(name: str, folders: dict[str, Path], **options: Any) -> BatchedVisionEngine:
    options.setdefault("max_new_tokens", 6)
    engine: BatchedVisionEngine = family_engine(name, folders, **options)
    return engine


# -- loading -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILY)
def test_loads_released_layout_from_folder(name: str, folders: dict[str, Path]) -> None:
    engine = _engine(name, folders)
    assert engine.name == name and not engine.model.training
    assert engine.plan.device.type == "cpu" and engine.plan.dtype is torch.float32
    identity = engine.cache_identity()
    assert identity["engine"] == name and identity["mode"] == engine.mode.name
    assert str(folders[name]) in identity["model"]
    with pytest.raises(EngineError, match="batch_size"):
        _engine(name, folders, batch_size=0)
    with pytest.raises(EngineError, match="resolution mode"):
        _engine(name, folders, mode="huge")


@pytest.mark.parametrize("name", FAMILY)
def test_refuses_pickle_checkpoints(name: str, folders: dict[str, Path], tmp_path: Path) -> None:
    pickled = tmp_path / "pickled"
    for src in folders[name].rglob("*"):
        if src.is_file() and src.suffix != ".safetensors":
            dst = pickled / src.relative_to(folders[name])
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
    torch.save({"w": torch.zeros(1)}, pickled / "pytorch_model.bin")
    with pytest.raises(ModelLoadError):
        _engine(name, {name: pickled})


# -- batching ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILY)
def test_batched_equals_one_at_a_time(name: str, folders: dict[str, Path]) -> None:
    batched = _engine(name, folders, batch_size=4, mode="gundam")
    calls = wrap_generate(batched, lambda kw: None)
    vision_calls = wrap_image_features(batched)
    single = _engine(name, folders, batch_size=1, mode="gundam")
    many = list(batched.run(_pages()))
    one = list(single.run(_pages()))
    assert [p.index for p in many] == list(range(len(SIZES)))
    assert [p.raw_output for p in many] == [p.raw_output for p in one]
    assert len({p.raw_output for p in many}) > 1  # the pages really differ
    assert batched.stats.generate_calls == 1 and single.stats.generate_calls == len(SIZES)
    (kw,) = calls
    mask = kw["attention_mask"]
    assert len(set(mask.sum(dim=1).tolist())) > 1  # mixed lengths: left padding exercised
    assert bool((mask[:, -1] == 1).all())
    # Every page's image-token count is what the processor predicts from its size, and pages
    # with tiles really carried them through the batch.
    proc = batched.processor
    expected = [proc.num_image_tokens(w, h, batched.mode) for w, h in SIZES]
    assert [p.metadata["image_tokens"] for p in many] == expected
    tiles = [p.metadata["tiles"] for p in many]
    assert tiles[0] > 1 and tiles[2] > 1 and tiles[1] == 0
    (pixels,) = vision_calls  # 1 + 9 tiles at most per page: one forward of 16 views
    assert pixels["pixel_values_local"].shape[0] == sum(tiles)
    assert pixels["tile_grid"].shape == (len(SIZES), 2)
    assert kw["inputs_embeds"].shape[:2] == kw["input_ids"].shape


@pytest.mark.parametrize("name", FAMILY)
def test_modes_change_the_image_budget(name: str, folders: dict[str, Path]) -> None:
    counts = {}
    for mode in ("tiny", "small", "base"):
        engine = _engine(name, folders, mode=mode)
        calls = wrap_generate(engine, lambda kw: None)
        (page,) = engine.run(_pages([(900, 1200)]))
        image_id = engine.processor.image_token_id
        counts[mode] = int((calls[0]["input_ids"] == image_id).sum())
        assert page.metadata["image_tokens"] == counts[mode] and page.metadata["tiles"] == 0
    # 8x8, 10x10 and 16x16 feature grids, each row closed by a newline, plus the separator.
    assert counts == {"tiny": 8 * 9 + 1, "small": 10 * 11 + 1, "base": 16 * 17 + 1}


# -- truncation, failures, no page lost ---------------------------------------------------


@pytest.mark.parametrize("name", FAMILY)
def test_page_without_eos_is_retried_then_truncated(name: str, folders: dict[str, Path]) -> None:
    engine = _engine(name, folders, mode="small", max_new_tokens=5, retry_truncated=True)
    engine.model.generate = crafted_generate(engine, "# A b c", eos=False)
    (page,) = engine.run(_pages([(600, 400)]))
    assert page.status is PageStatus.TRUNCATED and "retry" in (page.error or "")
    assert page.metadata["retried"] is True and page.markdown.strip() == "# A b c"
    assert engine.stats.retried_pages == 1 and engine.stats.truncated_pages == 1


@pytest.mark.parametrize("name", FAMILY)
def test_grounded_output_becomes_blocks(name: str, folders: dict[str, Path]) -> None:
    engine = _engine(name, folders, mode="small")
    text = "<|ref|> title <|/ref|> <|det|> [[ 1 , 20 , 900 , 100 ]] <|/det|> # A b"
    engine.model.generate = crafted_generate(engine, text, eos=True)
    (page,) = engine.run(_pages([(600, 400)]))
    assert page.status is PageStatus.OK and page.engine == name
    (block,) = page.blocks
    assert block.label == "title" and block.norm_boxes == [(1, 20, 900, 100)]
    assert block.bbox is not None and block.bbox.x1 == pytest.approx(900 / 999 * 300, abs=0.5)


@pytest.mark.parametrize("name", FAMILY)
def test_oom_halves_the_batch_and_keeps_every_page(name: str, folders: dict[str, Path]) -> None:
    reference = [
        p.raw_output for p in _engine(name, folders, batch_size=1, mode="small").run(_pages())
    ]
    engine = _engine(name, folders, batch_size=4, mode="small")

    def before(kw: dict[str, Any]) -> None:
        if kw["input_ids"].shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    calls = wrap_generate(engine, before)
    pages = list(engine.run(_pages()))
    assert [p.raw_output for p in pages] == reference
    assert engine.stats.oom_backoffs >= 2 and engine._batch_limit == 1
    assert [kw["input_ids"].shape[0] for kw in calls][:3] == [4, 2, 1]


@pytest.mark.parametrize("name", FAMILY)
def test_unreadable_page_is_failed_not_dropped(name: str, folders: dict[str, Path]) -> None:
    engine = _engine(name, folders, mode="small")
    inputs = _pages([(600, 400), (600, 400)])

    inputs[1].source = BrokenSource()  # type: ignore[assignment]
    pages = list(engine.run(inputs))
    assert [p.status for p in pages] == [PageStatus.TRUNCATED, PageStatus.FAILED]
    assert "damaged page" in (pages[1].error or "")


@pytest.mark.parametrize("name", FAMILY)
def test_convert_a_pdf_end_to_end(name: str, folders: dict[str, Path]) -> None:
    pdf = pymupdf.open()
    for i in range(3):
        page = pdf.new_page(width=300 + 100 * i, height=400)
        page.insert_text((40, 60), f"Page {i + 1}")
    doc = dl.convert(
        pdf.tobytes(),
        engine=name,
        model=str(folders[name]),
        local_files_only=True,
        device="cpu",
        mode="small",
        batch_size=2,
        max_new_tokens=4,
        retry_truncated=False,
        dpi=36,
    )
    assert [p.index for p in doc.pages] == [0, 1, 2]
    assert all(p.engine == name and p.raw_output for p in doc.pages)
    assert all(p.status is PageStatus.TRUNCATED for p in doc.pages)
