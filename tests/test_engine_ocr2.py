"""DeepSeek-OCR-2 engine on a tiny random-weight model built here: loading, batching, token
budgets, repetition guard, truncation, OOM back-off, decoding of grounding tokens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import pymupdf  # noqa: E402
import tiny_ocr2  # noqa: E402
from engine_pages import (  # noqa: E402
    BrokenSource,
    crafted_generate,
    hub_offline,  # noqa: F401 (autouse fixture)
    make_pages,
    wrap_generate,
)
from PIL import Image  # noqa: E402

import deepocr_loaders as dl  # noqa: E402
from deepocr_loaders import PageStatus  # noqa: E402
from deepocr_loaders.engines import get_engine  # noqa: E402
from deepocr_loaders.engines.base import PageInput, Task  # noqa: E402
from deepocr_loaders.engines.deepseek_ocr2 import DeepseekOcr2Engine  # noqa: E402
from deepocr_loaders.engines.hf_guard import (  # noqa: E402
    GuardSettings,
    NoRepeatNGramWindowProcessor,
    whitelist_ids,
)
from deepocr_loaders.engines.hf_loading import resolve_model_dir  # noqa: E402
from deepocr_loaders.engines.ocr2_modes import MODES, get_mode, tile_grid  # noqa: E402
from deepocr_loaders.errors import ConfigError, DeepOCRError, EngineError, ModelLoadError  # noqa: E402

# Page images of different aspect ratios: 2 tiles wide, small landscape (no tiles), 2 tiles
# tall, square (no tiles): 545, 257, 545 and 257 image tokens in "gundam" mode.
SIZES = [(1000, 500), (600, 400), (500, 1000), (700, 700)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_ocr2.save_tiny_model(tmp_path_factory.mktemp("tiny-ocr2"))


def _pages(sizes: list[tuple[int, int]] = SIZES, seed: int = 0) -> list[PageInput]:
    return make_pages(sizes, seed)


def _engine(model_dir: Path, **options: Any) -> DeepseekOcr2Engine:
    options.setdefault("max_new_tokens", 8)
    options.setdefault("retry_truncated", False)
    options.setdefault("device", "cpu")  # float32 on CPU, whatever the machine has
    return DeepseekOcr2Engine(str(model_dir), local_files_only=True, **options)


# -- loading -----------------------------------------------------------------------------


def test_loads_from_folder_and_registry(model_dir: Path) -> None:
    engine = get_engine("deepseek-ocr-2", model=str(model_dir), local_files_only=True, device="cpu")
    assert isinstance(engine, DeepseekOcr2Engine) and engine.name == "deepseek-ocr-2"
    assert engine.plan.device.type == "cpu" and engine.plan.dtype is torch.float32
    assert not engine.model.training
    assert engine.model.config.model_type == "deepseek_ocr2"


def test_refuses_pickle_only_checkpoint(model_dir: Path, tmp_path: Path) -> None:
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for name in os.listdir(model_dir):
        if not name.endswith(".safetensors"):
            (pickled / name).write_bytes((model_dir / name).read_bytes())
    torch.save({"w": torch.zeros(1)}, pickled / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickle"):
        DeepseekOcr2Engine(str(pickled), local_files_only=True, device="cpu")
    (pickled / "pytorch_model.bin").unlink()
    with pytest.raises(ModelLoadError, match="no model weights"):
        resolve_model_dir(pickled)


def test_load_errors_are_model_load_errors(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="hub"):
        resolve_model_dir("nobody/no-such-model", local_files_only=True)
    with pytest.raises(ModelLoadError, match="not a hub id"):
        resolve_model_dir(str(tmp_path / "missing" / "deeper" / "folder"))
    other = tmp_path / "other"
    other.mkdir()
    for name in os.listdir(model_dir):
        (other / name).write_bytes((model_dir / name).read_bytes())
    config = (other / "config.json").read_text().replace('"deepseek_ocr2"', '"deepseek_vl_v2"', 1)
    (other / "config.json").write_text(config)
    with pytest.raises(ModelLoadError, match="model_type"):
        DeepseekOcr2Engine(str(other), local_files_only=True, device="cpu")


def test_bad_options_raise_package_errors(model_dir: Path) -> None:
    with pytest.raises(EngineError, match="resolution mode"):
        _engine(model_dir, mode="huge")
    with pytest.raises(ConfigError, match="batch_size"):
        _engine(model_dir, batch_size=0)
    with pytest.raises(DeepOCRError):
        NoRepeatNGramWindowProcessor(10, 5, prompt_length=0)


# -- resolution modes --------------------------------------------------------------------


@pytest.mark.parametrize("mode", sorted(MODES))
def test_image_tokens_match_processor_and_model(model_dir: Path, mode: str) -> None:
    engine = _engine(model_dir, mode=mode)
    m = get_mode(mode)
    sizes = [(600, 400), (1000, 500), (500, 1000), (1500, 400), (800, 2400)]
    for w, h in sizes:
        image = Image.new("RGB", (w, h), "white")
        enc = engine.processor(
            images=[image], text=["<image>\nFree OCR ."], return_tensors="pt",
            **m.processor_kwargs(),
        )  # fmt: skip
        tokens = int((enc["input_ids"] == engine.processor.image_token_id).sum())
        assert tokens == m.image_tokens(w, h), (mode, w, h)
        assert int(enc["num_local_patches"][0]) == m.tiles(w, h)
        low, high = m.token_range
        assert low <= tokens <= high
        if (w, h) not in sizes[:2]:
            continue  # the model check below is the slow part: two sizes (0 and 2 tiles) do
        # The model must produce exactly one feature per placeholder token.
        with torch.no_grad():
            feats = engine.model.get_image_features(
                pixel_values=enc["pixel_values"],
                pixel_values_local=enc.get("pixel_values_local"),
                num_local_patches=enc["num_local_patches"],
            ).pooler_output
        assert feats[0].shape[0] == tokens


def test_mode_budgets_follow_the_formula() -> None:
    # Global 1024 px view: (1024 / 64)^2 = 256 tokens; each 768 px tile 144; one separator.
    gundam = get_mode("gundam")
    assert gundam.token_range == (257, 257 + 6 * 144)
    assert gundam.image_tokens(700, 500) == 257  # no larger than a tile: no crops
    assert gundam.image_tokens(1000, 500) == 257 + 2 * 144
    assert tile_grid(1000, 500, min_tiles=2, max_tiles=6) == (2, 1)
    assert tile_grid(500, 1000, min_tiles=2, max_tiles=6) == (1, 2)
    assert get_mode("base").token_range == (257, 257)
    assert get_mode("no-crop") is get_mode("base")
    assert get_mode("small").token_range == (145, 145)
    assert get_mode("dynamic") is gundam
    # The no-crop kwargs name the view size on both sides (the transformers 5.23 bug).
    assert get_mode("base").processor_kwargs()["tile_size"] == 1024
    assert get_mode("small").processor_kwargs()["size"] == {"height": 768, "width": 768}


# -- batching ----------------------------------------------------------------------------


def test_batched_equals_one_at_a_time(model_dir: Path) -> None:
    batched = _engine(model_dir, batch_size=4, mode="gundam")
    calls = wrap_generate(batched, lambda kw: None)
    single = _engine(model_dir, batch_size=1, mode="gundam")
    many = list(batched.run(_pages()))
    one = list(single.run(_pages()))
    assert [p.index for p in many] == list(range(len(SIZES)))
    assert [p.raw_output for p in many] == [p.raw_output for p in one]
    assert all(p.raw_output for p in many)
    # The pages really differ (the comparison is not vacuous) ...
    assert len({p.raw_output for p in many}) > 1
    # ... and a batch mixed prompt lengths, so left padding was exercised.
    widths = [kw["attention_mask"].sum(dim=1) for kw in calls]
    assert any(len(set(w.tolist())) > 1 for w in widths)
    pad = batched.tokenizer.pad_token_id
    for kw in calls:  # left padding: pads only at the start of a row
        ids, mask = kw["input_ids"], kw["attention_mask"]
        assert bool((mask[:, -1] == 1).all())
        assert bool((ids[mask == 0] == pad).all())
    assert batched.stats.generate_calls == 1 and single.stats.generate_calls == len(SIZES)
    assert [p.metadata["image_tokens"] for p in many] == [
        get_mode("gundam").image_tokens(w, h) for w, h in SIZES
    ]


def test_buckets_group_pages_by_token_count(model_dir: Path) -> None:
    engine = _engine(model_dir, batch_size=2, mode="gundam", bucket_window=8)
    calls = wrap_generate(engine, lambda kw: None)
    pages = list(engine.run(_pages()))
    assert [p.index for p in pages] == list(range(len(SIZES)))
    per_call = [
        sorted(set((kw["input_ids"] == engine.processor.image_token_id).sum(dim=1).tolist()))
        for kw in calls
    ]
    # Input order 545, 257, 545, 257 -> batches (257, 257), (545, 545), not input order.
    assert per_call == [[257], [545]]


def test_preprocessing_overlaps_generation(model_dir: Path) -> None:
    """While window k generates, window k+1 has already been handed to the worker."""
    engine = _engine(model_dir, batch_size=1, bucket_window=1, mode="small", preprocess_workers=1)
    inputs = _pages()
    src = inputs[0].source
    seen: list[int] = []
    pulled: list[int] = []

    def feed() -> Iterator[PageInput]:
        for inp in inputs:
            pulled.append(inp.index)
            yield inp

    def before(kw: dict[str, Any]) -> None:
        seen.append(len(pulled))

    wrap_generate(engine, before)
    pages = list(engine.run(feed()))
    assert len(pages) == len(inputs) and src.renders == len(inputs)  # type: ignore[attr-defined]
    # At the first generate call the second page was already pulled for preprocessing.
    assert seen[0] >= 2


def test_convert_a_pdf_end_to_end(model_dir: Path) -> None:
    pdf = pymupdf.open()
    for i in range(3):
        page = pdf.new_page(width=300 + 100 * i, height=400)
        page.insert_text((40, 60), f"Page {i + 1}")
    doc = dl.convert(
        pdf.tobytes(),
        engine="deepseek-ocr-2",
        model=str(model_dir),
        local_files_only=True,
        device="cpu",
        mode="small",
        batch_size=2,
        max_new_tokens=6,
        retry_truncated=False,
        dpi=36,
    )
    assert [p.index for p in doc.pages] == [0, 1, 2]
    assert all(p.engine == "deepseek-ocr-2" and p.raw_output for p in doc.pages)
    # The tiny model never says end-of-sequence: every page is kept, marked truncated.
    assert all(p.status is PageStatus.TRUNCATED for p in doc.pages)
    assert "truncated" in doc.to_markdown()


# -- decoding, EOS and truncation ---------------------------------------------------------


def test_grounding_tokens_survive_decoding(model_dir: Path) -> None:
    engine = _engine(model_dir, mode="small")
    text = "<|ref|> title <|/ref|> <|det|> [[ 1 , 20 , 900 , 100 ]] <|/det|> # A b"
    engine.model.generate = crafted_generate(engine, text, eos=True)
    (page,) = engine.run(_pages([(600, 400)]))
    assert page.status is PageStatus.OK and page.metadata["eos"] is True
    assert "<|ref|>" in (page.raw_output or "")
    assert "<｜end▁of▁sentence｜>" not in (page.raw_output or "")
    assert "<｜▁pad▁｜>" not in (page.raw_output or "")
    (block,) = page.blocks
    assert block.label == "title" and block.bbox is not None
    assert block.norm_boxes == [(1, 20, 900, 100)]
    assert block.text.strip().startswith("#")


def test_page_without_eos_is_retried_then_truncated(model_dir: Path) -> None:
    engine = _engine(model_dir, mode="small", max_new_tokens=8, retry_truncated=True)
    calls = wrap_generate(engine, lambda kw: None)
    (page,) = engine.run(_pages([(600, 400)]))
    assert len(calls) == 2  # the first attempt, then one stricter retry
    first, retry = (c["logits_processor"][0] for c in calls)
    assert (first.ngram_size, first.window) == (30, 90)
    assert retry.ngram_size < first.ngram_size and retry.window > first.window
    assert calls[1]["repetition_penalty"] > 1.0
    assert page.status is PageStatus.TRUNCATED and "retry" in (page.error or "")
    assert page.metadata["retried"] is True and page.metadata["eos"] is False
    assert page.raw_output and page.blocks  # the partial text is kept
    assert page.metadata["generated_tokens"] == 8
    assert engine.stats.retried_pages == 1 and engine.stats.truncated_pages == 1


def test_retry_that_reaches_eos_gives_an_ok_page(model_dir: Path) -> None:
    engine = _engine(model_dir, mode="small", max_new_tokens=8, retry_truncated=True)
    crafted_short = crafted_generate(engine, "# A b c", eos=False)
    crafted_done = crafted_generate(engine, "# A b c d", eos=True)
    attempts: list[int] = []

    def generate(**kwargs: Any) -> Any:
        attempts.append(1)
        return (crafted_short if len(attempts) == 1 else crafted_done)(**kwargs)

    engine.model.generate = generate
    (page,) = engine.run(_pages([(600, 400)]))
    assert len(attempts) == 2
    assert page.status is PageStatus.OK and page.metadata["retried"] is True
    assert page.markdown.strip() == "# A b c d"


# -- repetition guard --------------------------------------------------------------------


def test_guard_bans_the_token_that_would_repeat_an_ngram() -> None:
    prompt = [7] * 10  # repeated image tokens in the prompt must not ban anything
    cycle = [1, 2, 3, 4, 5]
    stream = cycle * 3  # ... 4 5 | next would be 1, completing "4 5 1" again
    ids = torch.tensor([prompt + stream, prompt + list(range(20, 35))])
    guard = NoRepeatNGramWindowProcessor(3, 12, prompt_length=len(prompt), whitelist=[9])
    scores = guard(ids, torch.zeros(2, 40))
    assert scores[0, 1] == float("-inf")
    assert torch.isfinite(scores[0, [0, 2, 3, 4, 5, 7]]).all()
    assert torch.isfinite(scores[1]).all()  # no repeats in row 2: nothing banned
    assert guard.fired == 1
    # A whitelisted token (``<td>``) may repeat.
    guard_td = NoRepeatNGramWindowProcessor(3, 12, prompt_length=len(prompt), whitelist=[1])
    assert torch.isfinite(guard_td(ids, torch.zeros(2, 40))).all()
    # An n-gram that left the window no longer counts.
    old = torch.tensor([[*prompt, 4, 5, 1, *range(20, 32), 4, 5]])
    assert torch.isfinite(
        NoRepeatNGramWindowProcessor(3, 12, prompt_length=10)(old, torch.zeros(1, 40))
    ).all()


def test_guard_breaks_a_crafted_repeating_logits_stream() -> None:
    """A 'model' that always wants to continue a 4-token loop: the guard forces it out."""
    loop = [11, 12, 13, 14]
    guard = NoRepeatNGramWindowProcessor(3, 30, prompt_length=0)
    ids = torch.tensor([loop[:2]])
    for _ in range(40):
        last = int(ids[0, -1])
        want = loop[(loop.index(last) + 1) % 4] if last in loop else loop[0]
        logits = torch.full((1, 32), -5.0)
        logits[0, want] = 10.0
        logits[0, 20 + len(ids[0]) % 10] = 1.0  # a weaker way out, changing over time
        nxt = int(guard(ids, logits).argmax(-1))
        ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    seq = ids[0].tolist()
    grams = [tuple(seq[i : i + 3]) for i in range(len(seq) - 2)]
    for i, gram in enumerate(grams):  # no trigram repeats within the 30-token window
        assert gram not in grams[max(0, i - 27) : i]
    assert guard.fired > 0


def test_guard_runs_inside_generate_and_whitelists_td(model_dir: Path) -> None:
    engine = _engine(model_dir, mode="small", max_new_tokens=40, ngram_size=3, ngram_window=40)
    real = engine.model.generate
    generated: list[list[int]] = []

    def generate(**kwargs: Any) -> Any:
        out = real(**kwargs)
        generated.extend(out[:, kwargs["input_ids"].shape[1] :].tolist())
        return out

    engine.model.generate = generate
    (page,) = engine.run(_pages([(600, 400)]))
    (ids,) = generated
    assert len(ids) == 40 and page.raw_output
    grams = [tuple(ids[i : i + 3]) for i in range(len(ids) - 2)]
    td = whitelist_ids(engine.tokenizer)
    assert td == set(engine.tokenizer.convert_tokens_to_ids(["<td>", "</td>"]))
    repeated = [g for i, g in enumerate(grams) if g in grams[:i]]
    assert all(g[-1] in td for g in repeated)  # only a whitelisted token may repeat a trigram
    assert engine.stats.guard_fired > 0
    # Without the guard the same page does repeat trigrams: the guard changed the output.
    free = _engine(model_dir, mode="small", max_new_tokens=40, ngram_size=39, ngram_window=40)
    real_free = free.model.generate
    unguarded: list[list[int]] = []

    def generate_free(**kwargs: Any) -> Any:
        out = real_free(**kwargs)
        unguarded.extend(out[:, kwargs["input_ids"].shape[1] :].tolist())
        return out

    free.model.generate = generate_free
    list(free.run(_pages([(600, 400)])))
    free_grams = [tuple(unguarded[0][i : i + 3]) for i in range(38)]
    assert len(set(free_grams)) < len(free_grams)
    assert GuardSettings().stricter().ngram_size < GuardSettings().ngram_size


# -- out of memory -----------------------------------------------------------------------


def test_oom_halves_the_batch_and_keeps_every_page(model_dir: Path) -> None:
    reference = [p.raw_output for p in _engine(model_dir, batch_size=1, mode="small").run(_pages())]
    engine = _engine(model_dir, batch_size=4, mode="small")

    def before(kw: dict[str, Any]) -> None:
        if kw["input_ids"].shape[0] > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    calls = wrap_generate(engine, before)
    pages = list(engine.run(_pages()))
    assert [p.index for p in pages] == list(range(len(SIZES)))
    assert [p.raw_output for p in pages] == reference
    assert engine.stats.oom_backoffs >= 2 and engine._batch_limit == 1
    assert [kw["input_ids"].shape[0] for kw in calls][:3] == [4, 2, 1]


def test_page_that_fails_alone_is_kept_as_failed(model_dir: Path) -> None:
    engine = _engine(model_dir, batch_size=4, mode="gundam")
    big = get_mode("gundam").image_tokens(1000, 500)

    def before(kw: dict[str, Any]) -> None:
        counts = (kw["input_ids"] == engine.processor.image_token_id).sum(dim=1)
        if bool((counts == big).any()):
            raise torch.OutOfMemoryError("CUDA out of memory")

    wrap_generate(engine, before)
    pages = list(engine.run(_pages([(600, 400), (1000, 500), (700, 700)])))
    assert [p.index for p in pages] == [0, 1, 2]
    assert [p.status for p in pages] == [
        PageStatus.TRUNCATED,
        PageStatus.FAILED,
        PageStatus.TRUNCATED,
    ]
    assert "OutOfMemoryError" in (pages[1].error or "")


def test_unreadable_page_is_failed_not_dropped(model_dir: Path) -> None:
    engine = _engine(model_dir, mode="small")
    inputs = _pages([(600, 400), (600, 400)])

    inputs[1].source = BrokenSource()  # type: ignore[assignment]
    pages = list(engine.run(inputs))
    assert [p.status for p in pages] == [PageStatus.TRUNCATED, PageStatus.FAILED]
    assert "damaged page" in (pages[1].error or "")


def test_locate_task_uses_the_query(model_dir: Path) -> None:
    engine = _engine(model_dir, mode="small", query="the total")
    calls = wrap_generate(engine, lambda kw: None)
    (page,) = engine.run(_pages([(600, 400)]), Task.LOCATE)
    text = engine.tokenizer.decode(calls[0]["input_ids"][0], skip_special_tokens=False)
    assert "<|ref|>" in text and "Locate" in text
    assert page.index == 0


def test_device_plan_defaults() -> None:
    from deepocr_loaders.engines.hf_loading import plan_device

    cpu = plan_device("cpu")
    assert (cpu.device.type, cpu.dtype, cpu.attn_implementation) == ("cpu", torch.float32, "sdpa")
    assert plan_device("cpu", "bf16").dtype is torch.bfloat16
    with pytest.raises(ModelLoadError, match="dtype"):
        plan_device("cpu", "float8")
    auto = plan_device()
    if torch.cuda.is_available():
        assert auto.device.type == "cuda" and auto.dtype in (torch.bfloat16, torch.float16)
    elif auto.device.type == "cpu":
        assert auto.dtype is torch.float32


def test_cache_identity_names_what_changes_the_output(model_dir: Path) -> None:
    a = _engine(model_dir, mode="small").cache_identity()
    b = _engine(model_dir, mode="small", batch_size=7).cache_identity()
    c = _engine(model_dir, mode="base").cache_identity()
    d = _engine(model_dir, mode="small", max_new_tokens=99).cache_identity()
    assert a == b  # batching is exact: batch size is not part of the key
    assert a != c and a != d
    assert a["engine"] == "deepseek-ocr-2" and str(model_dir) in a["model"]


def test_new_tokens_stay_within_the_trained_positions(model_dir: Path) -> None:
    engine = _engine(model_dir, mode="small", max_new_tokens=100_000)
    requested: list[int] = []

    def before(kw: dict[str, Any]) -> None:
        requested.append(kw["max_new_tokens"])
        kw["max_new_tokens"] = 2  # what was asked is recorded; keep the run short

    calls = wrap_generate(engine, before)
    list(engine.run(_pages([(600, 400)])))
    limit = engine.model.config.text_config.max_position_embeddings
    assert requested == [limit - calls[0]["input_ids"].shape[1]]


def test_attention_per_sub_model_and_fallback(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from deepocr_loaders.engines import hf_loading

    mixed = {"": "sdpa", "vision_config": "sdpa", "text_config": "eager"}
    engine = _engine(model_dir, mode="small", attn_implementation=mixed)
    assert engine.model.model.language_model.config._attn_implementation == "eager"
    assert engine.model.model.vision_tower.config._attn_implementation == "sdpa"
    sdpa = _engine(model_dir, mode="small")
    assert [p.raw_output for p in engine.run(_pages([(600, 400)]))] == [
        p.raw_output for p in sdpa.run(_pages([(600, 400)]))
    ]
    # flash-attn is not installed here: loading falls back to SDPA instead of failing.
    with caplog.at_level("WARNING"):
        fallback = _engine(model_dir, mode="small", attn_implementation="flash_attention_2")
    assert fallback.model.model.language_model.config._attn_implementation == "sdpa"
    assert "using sdpa" in caplog.text
    # "auto" asks for flash-attn on the decoder only where CUDA and flash_attn exist.
    cuda = torch.device("cuda")
    assert hf_loading.resolve_attention("auto", torch.device("cpu")) == "sdpa"
    monkeypatch.setattr(hf_loading.importlib.util, "find_spec", lambda name: object())
    assert hf_loading.resolve_attention("auto", cuda) == {
        "": "sdpa",
        "vision_config": "sdpa",
        "text_config": "flash_attention_2",
    }
    assert hf_loading.resolve_attention("eager", cuda) == "eager"
