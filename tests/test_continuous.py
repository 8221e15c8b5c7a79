"""Continuous batching (``scheduler="continuous"``) on tiny random-weight models of all three
families: pages refilled into slots mid-run give token for token what one page alone gives
through ``generate`` (guard included), output order stays the input order, and out-of-memory
keeps every page."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from engine_pages import (  # noqa: E402
    BrokenSource,
    family_engine,
    hub_offline,  # noqa: F401 (autouse fixture)
    make_pages,
    save_tiny_family,
    wrap_generate,
)

from deepocr_loaders.engines.base import PageInput  # noqa: E402
from deepocr_loaders.engines.continuous import SlotCache  # noqa: E402
from deepocr_loaders.engines.hf_batched import BatchedVisionEngine  # noqa: E402
from deepocr_loaders.errors import ConfigError  # noqa: E402

FAMILY = ["deepseek-ocr-2", "deepseek-ocr", "deepocr"]
SIZES = [(1000, 500), (600, 400), (500, 1000), (700, 700), (800, 300), (900, 900), (640, 480)]
BUDGET = 24


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_tiny_family(tmp_path_factory)


def _engine(name: str, folders: dict[str, Path], **options: Any) -> BatchedVisionEngine:
    options.setdefault("max_new_tokens", BUDGET)
    engine: BatchedVisionEngine = family_engine(name, folders, **options)
    return engine


def _pages() -> list[PageInput]:
    return make_pages(SIZES, 0)


def end_after(engine: BatchedVisionEngine, trigger: int) -> None:
    """Make the model end a page right after it emits ``trigger``: a hook on the embeddings
    notes each row's last input token, a hook on the LM head then makes EOS that row's best
    logit. Part of the model, so one-page and continuous runs see the same model."""
    last: dict[str, torch.Tensor] = {}

    def note(_module: Any, args: tuple[Any, ...]) -> None:
        last["ids"] = args[0][:, -1]

    def end(_module: Any, _args: Any, logits: torch.Tensor) -> torch.Tensor:
        ids = last["ids"]
        if ids.shape[0] != logits.shape[0]:
            return logits
        hit = (ids == trigger).to(logits.dtype)
        logits = logits.clone()
        logits[:, -1, engine._eos_id] += hit * 1e4
        return logits

    engine.model.get_input_embeddings().register_forward_pre_hook(note)
    engine.model.get_output_embeddings().register_forward_hook(end)


def _trigger(outputs: list[list[int]], eos: int) -> int:
    """A token that first appears at varied places in the pages' free-running outputs: pages
    then end at very different lengths (and some run to the budget)."""
    best, spread = -1, -1
    firsts: dict[int, list[int]] = {}
    for ids in outputs:
        seen: dict[int, int] = {}
        for at, tok in enumerate(ids):
            seen.setdefault(tok, at)
        for tok, at in seen.items():
            firsts.setdefault(tok, []).append(at)
    for tok, ats in firsts.items():
        if tok == eos or len(ats) == len(outputs):
            continue  # a token on every page would not leave any page at the budget
        score = len(set(ats)) * 10 + max(ats) - min(ats)
        if len(ats) >= 2 and score > spread:
            best, spread = tok, score
    assert best >= 0
    return best


def _ids(engine: BatchedVisionEngine, pages: list[Any]) -> list[list[int]]:
    return [engine.tokenizer.convert_tokens_to_ids(p.raw_output.split()) for p in pages]


@pytest.mark.parametrize("name", FAMILY)
def test_refilled_slots_equal_one_page_at_a_time(name: str, folders: dict[str, Path]) -> None:
    free = _engine(name, folders, batch_size=1)
    trigger = _trigger(_ids(free, list(free.run(_pages()))), free._eos_id)

    single = _engine(name, folders, batch_size=1)
    end_after(single, trigger)
    one = list(single.run(_pages()))

    cont = _engine(
        name, folders, batch_size=3, scheduler="continuous", sync_every=2, bucket_window=16
    )
    end_after(cont, trigger)
    many = list(cont.run(_pages()))

    assert [p.index for p in many] == list(range(len(SIZES)))
    assert [p.raw_output for p in many] == [p.raw_output for p in one]
    for key in ("generated_tokens", "eos", "guard_fired", "image_tokens"):
        assert [p.metadata[key] for p in many] == [p.metadata[key] for p in one], key
    lengths = [p.metadata["generated_tokens"] for p in many]
    # Pages of very different lengths shared the slots, and ended pages' slots were refilled.
    assert max(lengths) >= 3 * min(lengths) and any(p.metadata["eos"] for p in many)
    stats = cont.stats
    assert stats.slot_refills >= len(SIZES) - 3
    assert stats.slot_steps == 3 * stats.decode_steps and stats.slot_steps_busy > 0
    assert stats.slot_steps_busy <= stats.slot_steps and stats.graph_replays == 0  # CPU: eager
    assert stats.decode_steps < sum(lengths)  # slots decoded side by side


@pytest.mark.parametrize("name", ["deepseek-ocr"])
def test_guard_fires_alike_in_slots(name: str, folders: dict[str, Path]) -> None:
    # Free running (never EOS), the tiny v1 model loops: the guard has work to do.
    one = list(_engine(name, folders, batch_size=1, max_new_tokens=48).run(_pages()))
    cont = _engine(
        name, folders, batch_size=2, max_new_tokens=48, scheduler="continuous", sync_every=5
    )
    many = list(cont.run(_pages()))
    assert [p.raw_output for p in many] == [p.raw_output for p in one]
    fired = [p.metadata["guard_fired"] for p in many]
    assert fired == [p.metadata["guard_fired"] for p in one] and sum(fired) > 0


def test_oom_in_a_decode_step_keeps_every_page(folders: dict[str, Path]) -> None:
    reference = [p.raw_output for p in _engine("deepseek-ocr-2", folders).run(_pages())]
    engine = _engine("deepseek-ocr-2", folders, batch_size=4, scheduler="continuous")
    real = engine.model.forward
    calls: Counter[int] = Counter()

    def forward(*args: Any, **kwargs: Any) -> Any:
        rows = (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else
                kwargs["inputs_embeds"]).shape[0]  # fmt: skip
        calls[rows] += 1
        if rows > 2 and kwargs.get("input_ids") is not None:  # decode steps of > 2 slots
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(*args, **kwargs)

    engine.model.forward = forward
    pages = list(engine.run(_pages()))
    assert [p.raw_output for p in pages] == reference
    assert engine.stats.oom_backoffs >= 1 and engine._batch_limit == 2
    assert engine.stats.failed_pages == 0


def test_slot_cache_writes_each_row_at_its_own_cell() -> None:
    cache = SlotCache(layers=1, slots=3, cells=5, like=torch.empty(0))
    key = torch.arange(3 * 2 * 4, dtype=torch.float32).view(3, 2, 1, 4)
    cache.set_write_cells(torch.tensor([0, 3, 4]))
    keys, values = cache.update(key, -key, 0)
    assert keys.shape == (3, 2, 5, 4)
    for row, cell in enumerate([0, 3, 4]):
        assert torch.equal(keys[row, :, cell], key[row, :, 0])
        assert torch.equal(values[row, :, cell], -key[row, :, 0])
        others = [c for c in range(5) if c != cell]
        assert not keys[row, :, others].any()
    cache.load_prompt(1, 0, torch.ones(2, 2, 4), torch.ones(2, 2, 4))
    assert keys[1, :, :2].eq(1).all() and torch.equal(keys[1, :, 3], key[1, :, 0])


def test_bad_scheduler_options_are_engine_errors(folders: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="scheduler"):
        _engine("deepseek-ocr-2", folders, scheduler="dynamic")
    with pytest.raises(ConfigError, match="sync_every"):
        _engine("deepseek-ocr-2", folders, scheduler="continuous", sync_every=0)
    engine = _engine("deepseek-ocr-2", folders)
    assert engine._decoder_attention() == "sdpa"
    engine.model.config.text_config._attn_implementation = "flash_attention_2"
    with pytest.raises(ConfigError, match="flash"):
        type(engine)(engine.model, processor=engine.processor, scheduler="continuous", batch_size=2)


@pytest.mark.parametrize("name", ["deepseek-ocr-2", "deepocr"])
def test_exact_lengths_hold_in_both_schedulers(name: str, folders: dict[str, Path]) -> None:
    targets = {0: 3, 1: 17, 2: 9, 3: 1, 4: 22, 5: 5, 6: 12}
    static = _engine(name, folders, batch_size=4, exact_lengths=targets)
    cont = _engine(
        name,
        folders,
        batch_size=3,
        scheduler="continuous",
        sync_every=4,
        exact_lengths=targets,
    )
    a, b = list(static.run(_pages())), list(cont.run(_pages()))
    for pages in (a, b):
        assert [p.metadata["generated_tokens"] for p in pages] == [targets[i] for i in range(7)]
        assert all(p.metadata["eos"] for p in pages), [(p.status, p.error) for p in pages]
    assert [p.raw_output for p in a] == [p.raw_output for p in b]
    assert cont.stats.slot_refills > 0


def test_slot_workspace_is_kept_between_windows(folders: dict[str, Path]) -> None:
    engine = _engine(
        "deepseek-ocr-2", folders, batch_size=2, scheduler="continuous", bucket_window=3
    )
    first = list(engine.run(_pages()[:3]))
    workspace = engine._workspace
    assert workspace is not None and workspace.cache.slots == 2
    # The cache holds the mode's largest page and the token budget, whatever the window held.
    assert workspace.cache.cells >= engine._page_shape().prompt_tokens + BUDGET - 1
    second = list(engine.run(_pages()[3:]))  # two more windows, the same cache
    assert engine._workspace is workspace
    assert len(first) + len(second) == len(SIZES)


def test_prefill_groups_of_one_give_the_same_pages(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import deepocr_loaders.engines.hf_batched as hf_batched

    reference = [p.raw_output for p in _engine("deepseek-ocr-2", folders).run(_pages())]
    monkeypatch.setattr(hf_batched, "PREFILL_GROUP", 1)
    engine = _engine("deepseek-ocr-2", folders, batch_size=3, scheduler="continuous")
    calls = wrap_generate(engine, lambda kw: None)  # continuous runs no generate at all
    prefills: list[int] = []
    real = engine.model.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("inputs_embeds") is not None:
            prefills.append(int(kwargs["inputs_embeds"].shape[0]))
        return real(*args, **kwargs)

    engine.model.forward = forward
    assert [p.raw_output for p in engine.run(_pages())] == reference
    assert prefills == [1] * len(SIZES) and calls == []


def test_continuous_plan_counts_the_whole_slot_cache_and_one_prefill_group() -> None:
    from deepocr_loaders.engines.memory_plan import (
        GIB,
        PageShape,
        TextShape,
        VisionShape,
        plan_memory,
    )

    text = TextShape(12, 10, 128, 1280, 7168, 129280, 2)
    vision = VisionShape(768, 12, 16, 2, folded=True)
    page = PageShape(1141, 4096, 7, 1024)
    static = plan_memory(text, vision, page, free=60 * GIB)
    cont = plan_memory(text, vision, page, free=60 * GIB, prefill_pages=32)
    assert cont.per_page == cont.kv_per_page + 3 * text.vocab * 4  # cache + a step's logits
    assert cont.prefill > 0 and static.prefill == 0
    assert cont.planned_peak <= cont.budget and static.planned_peak <= static.budget


def test_slots_refill_across_the_whole_stream(folders: dict[str, Path]) -> None:
    # A lookahead of 2 pages used to be a window of 2: the slots drained at every window end.
    engine = _engine(
        "deepseek-ocr-2", folders, batch_size=2, scheduler="continuous", bucket_window=2
    )
    inputs = make_pages(SIZES * 2, 0)
    pages = list(engine.run(inputs))
    assert [p.index for p in pages] == list(range(len(inputs)))
    assert engine.stats.generate_calls == 1  # one continuous run over the stream
    assert engine.stats.slot_refills == len(inputs) - 2


def test_failed_retried_and_unreadable_pages_keep_their_places(
    folders: dict[str, Path],
) -> None:
    engine = _engine(
        "deepseek-ocr-2",
        folders,
        batch_size=3,
        scheduler="continuous",
        retry_truncated=True,
        max_new_tokens=6,
    )
    inputs = _pages()
    inputs[2].source = BrokenSource()  # type: ignore[assignment]
    retries = wrap_generate(engine, lambda kw: None)  # only the stricter retries use generate
    pages = list(engine.run(inputs))
    assert [p.index for p in pages] == list(range(len(SIZES)))
    assert pages[2].status.value == "failed" and "damaged page" in (pages[2].error or "")
    # The tiny model never ends a page: every readable page was retried once, then truncated.
    readable = [p for i, p in enumerate(pages) if i != 2]
    assert all(p.metadata["retried"] and p.status.value == "truncated" for p in readable)
    assert retries and sum(kw["input_ids"].shape[0] for kw in retries) == len(readable)
    assert engine.stats.retried_pages == len(readable)


def test_a_request_too_large_for_the_slots_is_reported_not_lost(
    folders: dict[str, Path],
) -> None:
    from deepocr_loaders.engines.continuous import SlotRequest

    engine = _engine("deepseek-ocr-2", folders, batch_size=2, scheduler="continuous")
    batcher = engine._batcher(2, engine._page_cells(engine.guard))
    big = SlotRequest(7, prompt_length=10, budget=10**6)
    with pytest.raises(ValueError, match="KV cells"):
        list(batcher.stream(iter([big]), cells=64))
    assert batcher.in_flight() == [big]


@pytest.mark.parametrize("min_refill", [1, 3])
def test_free_slots_wait_for_a_full_refill_group(folders: dict[str, Path], min_refill: int) -> None:
    targets = {i: 2 + (5 * i) % 13 for i in range(2 * len(SIZES))}  # pages end one by one
    inputs = make_pages(SIZES * 2, 0)
    engine = _engine("deepseek-ocr-2", folders, batch_size=4, scheduler="continuous", sync_every=1)
    engine._min_refill = lambda slots: min_refill  # type: ignore[method-assign]
    engine.exact_lengths = targets
    reference_engine = _engine("deepseek-ocr-2", folders, exact_lengths=targets)
    reference = [p.raw_output for p in reference_engine.run(inputs)]
    groups: list[int] = []
    real = engine.model.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("inputs_embeds") is not None:
            groups.append(int(kwargs["inputs_embeds"].shape[0]))
        return real(*args, **kwargs)

    engine.model.forward = forward
    assert [p.raw_output for p in engine.run(inputs)] == reference
    assert groups[0] == 4 and sum(groups) == len(inputs)
    if min_refill == 1:
        assert min(groups) == 1  # pages ending one by one refill one by one
    else:
        assert min(groups[:-1]) >= 3, groups  # only the stream's last pages come fewer
        assert len(groups) < 1 + len(inputs) - 4


def test_auto_scheduler_is_continuous_on_cuda_only() -> None:
    from deepocr_loaders.engines.hf_batched import resolve_scheduler

    assert resolve_scheduler("auto", "cuda", flash=False) == "continuous"
    assert resolve_scheduler("auto", "cuda", flash=True) == "static"  # slots need SDPA/eager
    assert resolve_scheduler("auto", "cpu", flash=False) == "static"
    assert resolve_scheduler("static", "cuda", flash=False) == "static"
    assert resolve_scheduler("continuous", "cpu", flash=False) == "continuous"
