"""The model engines' memory behaviour on tiny random-weight models of all three families:
out-of-memory retries that start after the failed attempt is freed, the memory plan (its KV-cache
arithmetic against the caches the models really allocate, and the batch it chooses), vision
micro-batches, the first window's early start and the stage clock."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from engine_pages import (  # noqa: E402
    family_engine,
    hub_offline,  # noqa: F401 (autouse fixture)
    make_pages,
    save_tiny_family,
    wrap_generate,
    wrap_image_features,
)

from deepocr_loaders.engines import get_engine  # noqa: E402
from deepocr_loaders.engines.base import PageInput  # noqa: E402
from deepocr_loaders.engines.hf_batched import (  # noqa: E402
    DEFAULT_MAX_NEW_TOKENS,
    BatchedVisionEngine,
)
from deepocr_loaders.engines.memory_plan import (  # noqa: E402
    GIB,
    PageShape,
    TextShape,
    VisionShape,
    plan_memory,
    text_shape,
)
from deepocr_loaders.errors import ConfigError  # noqa: E402

FAMILY = ["deepseek-ocr-2", "deepseek-ocr", "deepocr"]
# Two pages with tiles, two without: mixed view counts for the micro-batches.
SIZES = [(1400, 600), (600, 400), (600, 1400), (500, 500)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_tiny_family(tmp_path_factory)


def _engine(name: str, folders: dict[str, Path], **options: Any) -> BatchedVisionEngine:
    options.setdefault("max_new_tokens", 6)
    engine: BatchedVisionEngine = family_engine(name, folders, **options)
    return engine


def _pages(sizes: list[tuple[int, int]] = SIZES) -> list[PageInput]:
    return make_pages(sizes, 0)


# -- out of memory ------------------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILY)
def test_oom_retry_starts_after_the_failed_attempt_is_freed(
    name: str, folders: dict[str, Path]
) -> None:
    reference = [p.raw_output for p in _engine(name, folders, batch_size=1).run(_pages())]
    engine = _engine(name, folders, batch_size=4)
    pinned: list[weakref.ref[Any]] = []
    alive_at_retry: list[list[bool]] = []

    def before(kw: dict[str, Any]) -> None:
        # At every call, the tensors of the attempt that failed before it must be gone.
        alive_at_retry.append([ref() is not None for ref in pinned])
        pinned.clear()
        if kw["input_ids"].shape[0] > 1:  # an OOM injected at batch > 1
            pinned.extend(
                weakref.ref(kw[key]) for key in ("inputs_embeds", "input_ids", "attention_mask")
            )
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    sizes: list[int] = []
    real = engine.model.generate

    def generate(**kwargs: Any) -> Any:  # records sizes only: holding kwargs would pin them
        sizes.append(int(kwargs["input_ids"].shape[0]))
        before(kwargs)
        return real(**kwargs)

    engine.model.generate = generate
    pages = list(engine.run(_pages()))
    assert [p.index for p in pages] == list(range(len(SIZES)))
    assert [p.raw_output for p in pages] == reference
    assert sizes[:3] == [4, 2, 1]
    assert engine.stats.oom_backoffs >= 2 and engine.stats.failed_pages == 0
    # Every call after a failed one checked three references, and found them all dead.
    after_failure = [alive for n, alive in zip(sizes, alive_at_retry[1:], strict=False) if n > 1]
    assert len(after_failure) >= 2 and all(len(alive) == 3 for alive in after_failure)
    assert not any(any(alive) for alive in alive_at_retry)


def test_oom_in_the_vision_tower_halves_the_batch_too(folders: dict[str, Path]) -> None:
    engine = _engine("deepseek-ocr-2", folders, batch_size=4, vision_batch=64)
    reference = [p.raw_output for p in _engine("deepseek-ocr-2", folders).run(_pages())]
    pixels_refs: list[weakref.ref[Any]] = []
    real = engine._image_features

    def image_features(pixels: dict[str, Any]) -> Any:
        assert all(ref() is None for ref in pixels_refs)  # the failed batch's pixels are gone
        if pixels["pixel_values"].shape[0] > 1:
            pixels_refs.append(weakref.ref(pixels["pixel_values"]))
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(pixels)

    engine._image_features = image_features  # type: ignore[method-assign]
    pages = list(engine.run(_pages()))
    assert [p.raw_output for p in pages] == reference and engine._batch_limit == 1


def test_a_page_that_fails_alone_is_reported_not_dropped(folders: dict[str, Path]) -> None:
    engine = _engine("deepseek-ocr", folders, batch_size=4)

    def before(kw: dict[str, Any]) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory")

    wrap_generate(engine, before)
    pages = list(engine.run(_pages()))
    assert [p.index for p in pages] == list(range(len(SIZES)))
    assert all(p.status.value == "failed" and "OutOfMemoryError" in (p.error or "") for p in pages)
    assert engine.stats.failed_pages == len(SIZES)


# -- the memory plan -----------------------------------------------------------------------


def _cache_bytes(cache: Any) -> int:
    return sum(
        int(t.numel() * t.element_size())
        for layer in cache.layers
        for t in (layer.keys, layer.values)
    )


@pytest.mark.parametrize("name", FAMILY)
def test_kv_arithmetic_matches_the_cache_the_model_allocates(
    name: str, folders: dict[str, Path]
) -> None:
    engine = _engine(name, folders)
    shape = text_shape(engine.model.config, engine.plan.dtype)
    batch, length = 3, 37
    ids = torch.randint(10, 40, (batch, length))
    with torch.inference_mode():
        out = engine.model(
            input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, logits_to_keep=1
        )
    cache = getattr(out, "cache", None) or out.past_key_values
    assert _cache_bytes(cache) == batch * length * shape.kv_bytes_per_token
    assert out.logits.shape[-1] == shape.vocab


def _shapes() -> tuple[TextShape, VisionShape, PageShape]:
    # DeepSeek-OCR-2's real decoder and SAM, a "gundam" page, a 4096-token budget, bf16.
    text = TextShape(12, 10, 128, 1280, 7168, 129280, 2)
    return text, VisionShape(768, 12, 16, 2, folded=True), PageShape(1141, 4096, 7, 1024)


def test_plan_fits_the_budget_and_grows_with_memory() -> None:
    text, vision, page = _shapes()
    batches = []
    for gib in (4, 16, 40, 80):
        plan = plan_memory(text, vision, page, free=gib * GIB, max_batch=1024)
        batches.append(plan.batch_size)
        assert plan.planned_peak <= plan.budget
        assert plan.vision_views >= 1 and plan.vision <= plan.budget // 8 + vision.bytes_per_view(
            1024
        )
        assert plan.kv_per_page == (1141 + 4096) * text.kv_bytes_per_token
        assert "batch" in plan.describe()
    assert batches == sorted(batches) and batches[0] < batches[-1]
    assert plan_memory(text, vision, page, free=120 * GIB).batch_size == 256  # max_batch
    assert plan_memory(text, vision, page, free=GIB // 100).batch_size == 1  # never zero


def test_folded_attention_plans_far_less_vision_memory() -> None:
    text, folded, page = _shapes()
    dense = VisionShape(768, 12, 16, 2, folded=False)
    # The dense bias alone is 384 MiB per 1024 px view (12 heads x 4096^2 x 2 bytes).
    assert dense.bytes_per_view(1024) - folded.bytes_per_view(1024) == 3 * 12 * 4096**2 * 2
    assert dense.bytes_per_view(1024) > 8 * folded.bytes_per_view(1024)
    a = plan_memory(text, folded, page, free=40 * GIB)
    b = plan_memory(text, dense, page, free=40 * GIB)
    assert a.vision_views > b.vision_views


@pytest.mark.parametrize("name", FAMILY)
def test_engine_chooses_its_batch_from_the_plan(
    name: str, folders: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="deepocr_loaders.engines.hf_batched"):
        small = _engine(name, folders, memory_limit_gb=0.05)
        large = _engine(name, folders, memory_limit_gb=4.0)
    assert small.memory_plan is not None and large.memory_plan is not None
    assert small.batch_size == small.memory_plan.batch_size >= 1
    assert large.batch_size == large.memory_plan.batch_size > small.batch_size
    assert large.vision_batch == large.memory_plan.vision_views
    assert sum("memory plan" in r.getMessage() for r in caplog.records) == 2
    given = _engine(name, folders, memory_limit_gb=4.0, batch_size=3, vision_batch=2)
    assert (given.batch_size, given.vision_batch) == (3, 2)
    cpu = _engine(name, folders)  # no plan on a CPU without a limit
    assert cpu.memory_plan is None and cpu.batch_size == 4


def test_bad_memory_options_are_engine_errors(folders: dict[str, Path]) -> None:
    for options in ({"vision_batch": 0}, {"memory_limit_gb": 0}, {"max_new_tokens": 0}):
        with pytest.raises(ConfigError):
            _engine("deepseek-ocr-2", folders, **options)


def test_default_token_budget_is_page_sized(folders: dict[str, Path]) -> None:
    engine = get_engine(
        "deepseek-ocr-2", model=str(folders["deepseek-ocr-2"]), local_files_only=True, device="cpu"
    )
    assert isinstance(engine, BatchedVisionEngine)
    assert engine.guard.max_new_tokens == DEFAULT_MAX_NEW_TOKENS == 4096


# -- vision micro-batches, the first window, the stage clock --------------------------------


@pytest.mark.parametrize("name", FAMILY)
def test_vision_micro_batches_give_the_same_output(name: str, folders: dict[str, Path]) -> None:
    whole = _engine(name, folders, batch_size=4, vision_batch=64)
    split = _engine(name, folders, batch_size=4, vision_batch=3)
    whole_calls = wrap_image_features(whole)
    split_calls = wrap_image_features(split)
    generate_calls = wrap_generate(split, lambda kw: None)
    a = [p.raw_output for p in whole.run(_pages())]
    split_pages = list(split.run(_pages()))
    b = [p.raw_output for p in split_pages]
    assert a == b and len(set(a)) > 1
    assert len(whole_calls) == 1 and len(split_calls) > 1 and len(generate_calls) == 1

    def views(pixels: dict[str, Any]) -> int:
        local = pixels.get("pixel_values_local")
        return int(pixels["pixel_values"].shape[0]) + (0 if local is None else int(local.shape[0]))

    # A micro-batch holds at most 3 views unless one page alone has more.
    tiles = [p.metadata["tiles"] for p in split_pages]
    assert all(views(c) <= max(3, 1 + max(tiles)) for c in split_calls)
    assert sum(views(c) for c in split_calls) == len(SIZES) + sum(tiles)
    assert split.stats.vision_forwards == len(split_calls)


def test_first_window_starts_the_device_early(folders: dict[str, Path]) -> None:
    engine = _engine("deepseek-ocr-2", folders, batch_size=4, preprocess_workers=1)
    calls = wrap_generate(engine, lambda kw: None)
    pulled: list[int] = []

    def feed() -> Iterator[PageInput]:
        for inp in _pages(SIZES * 3):
            pulled.append(inp.index)
            yield inp

    pages = list(engine.run(feed()))
    assert [p.index for p in pages] == list(range(len(SIZES) * 3))
    # A quarter batch first, then full batches; output order stays the input order.
    assert [kw["input_ids"].shape[0] for kw in calls][:2] == [1, 4]


def test_stage_clock_and_counters(folders: dict[str, Path]) -> None:
    engine = _engine("deepseek-ocr-2", folders, batch_size=4, max_new_tokens=5)
    pages = list(engine.run(_pages()))
    s = engine.stats
    assert s.pages == len(pages) == len(SIZES)
    assert s.vision_s > 0 and s.prefill_s > 0 and s.decode_s > 0
    # 5 new tokens: one from prefill, four decode steps, in one generate call.
    assert s.generate_calls == 1 and s.decode_steps == 4
    assert s.generated_tokens == sum(p.metadata["generated_tokens"] for p in pages)
    assert s.guard_fired == sum(p.metadata["guard_fired"] for p in pages)
