"""The repetition guard against its first (host-syncing) version, and without host syncs.

``reference_banned_mask`` is the guard as it was before it moved onto the device: it finds
the hits with ``nonzero`` and counted firings with ``int(...)`` every step. The device version
must ban the same tokens at every step and count the same firings, without either sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from deepocr_loaders.engines.hf_guard import NoRepeatNGramWindowProcessor


def reference_banned_mask(
    input_ids: torch.Tensor,
    vocab_size: int,
    *,
    ngram_size: int,
    window: int,
    prompt_length: int,
    whitelist: list[int],
) -> torch.Tensor:
    """The guard's mask as first written: boolean indexing through ``nonzero``."""
    n = ngram_size
    recent = input_ids[:, prompt_length:][:, -window:]
    mask = torch.zeros(input_ids.shape[0], vocab_size, dtype=torch.bool, device=input_ids.device)
    if recent.shape[1] < n:
        return mask
    grams = recent.unfold(1, n, 1)
    suffix = recent[:, -(n - 1) :].unsqueeze(1)
    hits = (grams[:, :, : n - 1] == suffix).all(dim=-1)
    rows, cols = hits.nonzero(as_tuple=True)
    mask[rows, grams[rows, cols, n - 1]] = True
    if whitelist:
        mask[:, whitelist] = False
    return mask


class ReferenceGuard:
    """The first guard's ``__call__``: one ``int(...)`` host read per step."""

    def __init__(self, ngram_size: int, window: int, *, prompt_length: int, whitelist=()) -> None:
        self.kw: dict[str, Any] = {
            "ngram_size": ngram_size,
            "window": window,
            "prompt_length": prompt_length,
            "whitelist": sorted(set(whitelist)),
        }
        self.fired = 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        mask = reference_banned_mask(input_ids, scores.shape[-1], **self.kw)
        self.fired += int(mask.any(dim=-1).sum())
        return scores.masked_fill(mask, float("-inf"))


# -- same bans, same counts ----------------------------------------------------------------


@st.composite
def guard_cases(draw: st.DrawFn) -> dict[str, Any]:
    vocab = draw(st.integers(5, 8))  # a small vocabulary, so n-grams do repeat
    n = draw(st.integers(2, 4))
    window = draw(st.integers(n, 12))
    batch = draw(st.integers(1, 4))
    prompt_length = draw(st.integers(0, 6))
    generated = draw(st.integers(0, 30))
    token = st.integers(0, vocab - 1)
    # Rows drawn from a couple of short loops and free tokens: plenty of repeats and misses.
    rows = draw(
        st.lists(
            st.lists(token, min_size=prompt_length + generated, max_size=prompt_length + generated),
            min_size=batch,
            max_size=batch,
        )
    )
    loops = draw(st.lists(st.booleans(), min_size=batch, max_size=batch))
    for row, loop in zip(rows, loops, strict=True):
        if loop and generated:
            period = draw(st.integers(1, 5))
            for i in range(prompt_length + period, len(row)):
                row[i] = row[i - period]
    whitelist = draw(st.lists(token, max_size=3))
    return {
        "ids": torch.tensor(rows, dtype=torch.long).reshape(batch, -1),
        "vocab": vocab,
        "n": n,
        "window": window,
        "prompt_length": prompt_length,
        "whitelist": whitelist,
    }


@settings(max_examples=300, deadline=None)
@given(guard_cases())
def test_device_guard_bans_and_counts_as_the_reference(case: dict[str, Any]) -> None:
    ids, vocab, n, window = case["ids"], case["vocab"], case["n"], case["window"]
    prompt_length, whitelist = case["prompt_length"], case["whitelist"]
    kw: dict[str, Any] = {"prompt_length": prompt_length, "whitelist": whitelist}
    guard = NoRepeatNGramWindowProcessor(n, window, **kw)
    reference = ReferenceGuard(n, window, **kw)
    per_row = [0] * ids.shape[0]
    scores = torch.randn(ids.shape[0], vocab)
    # Replay generation: each step sees the prompt plus one more generated token.
    for end in range(prompt_length, ids.shape[1] + 1):
        step = ids[:, :end]
        expected = reference_banned_mask(step, vocab, ngram_size=n, window=window, **kw)
        got = guard.banned_mask(step, vocab)  # type: ignore[arg-type]
        assert got.dtype == torch.bool and got.shape == (ids.shape[0], vocab)
        assert torch.equal(got, expected), (end, got, expected)
        out = guard(step, scores)  # type: ignore[arg-type]
        assert torch.equal(out, reference(step, scores))
        per_row = [c + int(b) for c, b in zip(per_row, expected.any(dim=-1).tolist(), strict=True)]
    assert guard.fired == reference.fired == sum(per_row)
    assert guard.fired_per_row() == per_row


def test_fired_counts_per_row_and_starts_empty() -> None:
    guard = NoRepeatNGramWindowProcessor(2, 8, prompt_length=1)
    assert guard.fired == 0 and guard.fired_per_row() == []
    ids = torch.tensor([[9, 1, 2, 1, 2], [9, 3, 4, 5, 6], [9, 1, 1, 1, 1]])
    for end in range(1, ids.shape[1] + 1):
        guard(ids[:, :end], torch.zeros(3, 10))  # type: ignore[arg-type]
    # Row 0: after "1 2 1" ("1 2" seen) bans 2; after "1 2 1 2" ("2 1" seen) bans 1.
    # Row 1 never repeats. Row 2 bans 1 after "1 1", "1 1 1" and "1 1 1 1".
    assert guard.fired_per_row() == [2, 0, 3]
    assert guard.fired == 5


def test_stop_token_ids_stop_the_count_not_the_ban() -> None:
    """Rows padded after end-of-sequence repeat the padding: with stop ids they stop counting
    once they emitted one; the banned tokens stay exactly the reference's."""
    eos, pad = 7, 0
    ids = torch.tensor([[5, 1, 2, 3, eos, pad, pad, pad, pad, pad], [5, *([1, 2] * 4), 3]])
    counting = NoRepeatNGramWindowProcessor(2, 9, prompt_length=1, stop_token_ids=[eos])
    plain = NoRepeatNGramWindowProcessor(2, 9, prompt_length=1)
    for end in range(1, ids.shape[1] + 1):
        step = ids[:, :end]
        scores = torch.zeros(2, 8)
        assert torch.equal(counting(step, scores), plain(step, scores))  # type: ignore[arg-type]
    assert plain.fired_per_row()[0] > 0  # the padding run fired the guard
    assert counting.fired_per_row() == [0, plain.fired_per_row()[1]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_scores_keep_their_dtype(dtype: torch.dtype) -> None:
    ids = torch.tensor([[1, 2, 1, 2, 1]])
    scores = torch.randn(1, 6).to(dtype)
    out = NoRepeatNGramWindowProcessor(2, 8, prompt_length=0)(ids, scores)  # type: ignore[arg-type]
    assert out.dtype == dtype
    assert torch.equal(out, ReferenceGuard(2, 8, prompt_length=0)(ids, scores))
    assert out[0, 2] == float("-inf") and torch.isfinite(out[0, [0, 1, 3, 4, 5]]).all()


def test_a_new_batch_shape_keeps_the_total() -> None:
    guard = NoRepeatNGramWindowProcessor(2, 8, prompt_length=0)
    guard(torch.tensor([[1, 1]]), torch.zeros(1, 4))  # type: ignore[arg-type]
    guard(torch.tensor([[1, 1], [2, 2]]), torch.zeros(2, 4))  # type: ignore[arg-type]
    assert guard.fired == 3 and guard.fired_per_row() == [1, 1]


def test_counts_made_under_inference_mode_keep_counting_outside() -> None:
    guard = NoRepeatNGramWindowProcessor(2, 8, prompt_length=0)
    with torch.inference_mode():
        guard(torch.tensor([[1, 1]]), torch.zeros(1, 4))  # type: ignore[arg-type]
    guard(torch.tensor([[1, 1]]), torch.zeros(1, 4))  # type: ignore[arg-type]
    assert guard.fired == 2


# -- no host sync --------------------------------------------------------------------------

#: aten ops that make the host wait for the device (or only exist for data-dependent shapes).
SYNCING_OPS = {
    "aten::nonzero",
    "aten::nonzero_static",
    "aten::_local_scalar_dense",  # .item(), int(t), bool(t), if t: ...
    "aten::item",
    "aten::is_nonzero",
    "aten::masked_select",
    "aten::masked_scatter",
    "aten::equal",
    "aten::unique",
    "aten::_unique2",
}


class _RecordOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []
        self.bool_indexing = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        name = func._schema.name
        self.seen.append(name)
        if name in {"aten::index", "aten::index_put", "aten::index_put_", "aten::_index_put_impl_"}:
            indices = args[1] if len(args) > 1 else (kwargs or {}).get("indices", ())
            if any(
                isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
                for i in indices
            ):
                self.bool_indexing = True
        return func(*args, **(kwargs or {}))

    def syncs(self) -> set[str]:
        found = set(self.seen) & SYNCING_OPS
        return found | ({"boolean indexing"} if self.bool_indexing else set())


@contextmanager
def recording() -> Iterator[_RecordOps]:
    with _RecordOps() as mode:
        yield mode


def _looping_batch() -> tuple[torch.Tensor, torch.Tensor]:
    prompt = [3] * 6
    ids = torch.tensor([prompt + [1, 2, 3] * 10, prompt + list(range(10, 40))])
    return ids, torch.randn(2, 50)


def test_guard_step_does_no_host_sync() -> None:
    ids, scores = _looping_batch()
    guard = NoRepeatNGramWindowProcessor(3, 20, prompt_length=6, whitelist=[2, 11])
    stopping = NoRepeatNGramWindowProcessor(3, 20, prompt_length=6, stop_token_ids=[1, 12])
    guard(ids, scores)  # type: ignore[arg-type]  # first step: builds the cached id tensors
    stopping(ids, scores)  # type: ignore[arg-type]
    with recording() as ops:
        for g in (guard, stopping):
            out = g(ids, scores)  # type: ignore[arg-type]
            g.banned_mask(ids[:, :7], 50)  # type: ignore[arg-type]  # window shorter than n
    assert ops.seen, "the recorder saw nothing: the test would be vacuous"
    assert not ops.syncs(), ops.syncs()
    assert "aten::scatter_" in ops.seen
    assert "aten::tensor" not in ops.seen and "aten::lift_fresh" not in ops.seen  # cached ids
    assert (out == float("-inf")).any()  # and it did ban something
    assert guard.fired == 2 and guard.fired_per_row() == [2, 0]


def test_the_recorder_catches_the_reference_syncs() -> None:
    """The same check flags the first version: ``nonzero``, boolean indexing, ``int(...)``."""
    ids, scores = _looping_batch()
    reference = ReferenceGuard(3, 20, prompt_length=6, whitelist=[2, 11])
    with recording() as ops:
        reference(ids, scores)
    assert {"aten::nonzero", "aten::_local_scalar_dense"} <= ops.syncs()
    # ... and reading the count on demand is the one place the device version syncs.
    guard = NoRepeatNGramWindowProcessor(3, 20, prompt_length=6)
    guard(ids, scores)  # type: ignore[arg-type]
    with recording() as ops:
        assert guard.fired > 0
    assert ops.syncs()


def test_guard_runs_on_meta_tensors_where_a_sync_cannot() -> None:
    """Meta tensors have no data: any op that needs values on the host fails on them."""
    ids, scores = _looping_batch()
    meta_ids, meta_scores = ids.to("meta"), scores.to("meta")
    guard = NoRepeatNGramWindowProcessor(3, 20, prompt_length=6, whitelist=[2], stop_token_ids=[1])
    out = guard(meta_ids, meta_scores)  # type: ignore[arg-type]
    assert out.device.type == "meta" and out.shape == scores.shape
    assert guard._counts is not None and guard._counts.device.type == "meta"
    with pytest.raises((RuntimeError, NotImplementedError)):
        ReferenceGuard(3, 20, prompt_length=6, whitelist=[2])(meta_ids, meta_scores)
