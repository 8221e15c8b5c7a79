"""Batched, guarded generation shared by the in-process DeepSeek-OCR family engines.

How a run goes:

* Pages are read in windows of ``bucket_window`` pages. On an accelerator, worker threads
  rasterise and preprocess the next window while the model generates for the current one, so
  the GPU does not wait on the (CPU-bound, ~0.5 s/page) image processor. On a CPU device the
  model and the processor would share the same cores, so preprocessing runs inline there.
* Inside a window, pages are sorted by image-token count and cut into batches of
  ``batch_size``; each batch is one ``generate`` call with LEFT padding (right padding would
  put pad tokens between a prompt and its continuation and change the output).
* Generation is greedy with an n-gram no-repeat guard and ``max_new_tokens``. A page that
  never emits end-of-sequence is retried once with stricter settings and is then kept as
  ``truncated`` with its partial text.
* CUDA out-of-memory halves the batch and retries; later batches stay at the smaller size.
  A page that fails even alone is kept as ``failed`` with the error. No page is ever dropped.

Output is decoded with special tokens kept, since the grounding markers (``<|ref|>``,
``<|det|>``...) are added special tokens that ``skip_special_tokens=True`` would delete;
padding, BOS and EOS are removed here by id instead.

A model family plugs in by subclassing :class:`BatchedVisionEngine` and saying how to load a
folder, how to preprocess one page (:meth:`~BatchedVisionEngine._encode`) and how many tiles a
page used; everything else (batching, guard, retries, page assembly) is shared.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import LogitsProcessorList

from ..document import Page, PageStatus
from ..errors import EngineError
from .base import Engine, PageInput, Task, prompt_for
from .hf_guard import GuardSettings, NoRepeatNGramWindowProcessor, whitelist_ids
from .hf_loading import DevicePlan, folder_fingerprint, plan_device, resolve_model_dir

__all__ = ["BatchedVisionEngine", "EngineStats", "PreparedPage"]

log = logging.getLogger(__name__)


@dataclass
class PreparedPage:
    """One page after preprocessing, ready to be batched (or the reason it could not be).

    ``pixels`` holds the page's image tensors by model-input name; a batch concatenates each
    along dim 0 (a page without a key, e.g. no tiles, contributes nothing to it).
    """

    order: int
    inp: PageInput
    input_ids: torch.Tensor | None = None
    pixels: dict[str, torch.Tensor] = field(default_factory=dict)
    tiles: int = 0
    image_tokens: int = 0
    error: str | None = None


@dataclass
class _Output:
    """What generation produced for one page."""

    ids: list[int] = field(default_factory=list)
    eos: bool = False
    error: str | None = None


@dataclass
class EngineStats:
    """Counters over the engine's lifetime, for benchmarks and logs."""

    pages: int = 0
    generate_calls: int = 0
    generated_tokens: int = 0
    retried_pages: int = 0
    truncated_pages: int = 0
    failed_pages: int = 0
    oom_backoffs: int = 0
    guard_fired: int = 0


def _is_oom(exc: BaseException) -> bool:
    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom_type) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


class BatchedVisionEngine(Engine):
    """Base of the in-process model engines; see the module docstring for the strategy.

    Subclasses set ``default_model`` and implement :meth:`_load_folder`, :meth:`_get_mode`,
    :meth:`_encode` and :meth:`_count_tiles`.

    ``model``: hub id, a local folder, or an already built model instance (then ``processor``
    is required; used by benchmarks). ``attn_implementation``: ``"auto"`` (SDPA; flash-attn 2
    for the decoder on CUDA when installed) or any value transformers accepts. ``mode``:
    resolution mode name. ``batch_size``: pages per ``generate`` (default 16 on CUDA, 4
    elsewhere). ``max_new_tokens``, ``ngram_size``, ``ngram_window``: the repetition guard.
    ``min_new_tokens`` forces a length (benchmarks). ``preprocess_workers``: threads that
    preprocess the next window during generation (default up to 4 on an accelerator, 0 =
    inline on a CPU device). ``query``: what to find for ``Task.LOCATE``.
    """

    default_model: ClassVar[str] = ""
    #: Per-page inputs that stay on the CPU when a batch moves to the model's device.
    cpu_keys: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        model: str | os.PathLike[str] | Any | None = None,
        *,
        processor: Any = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        attn_implementation: str | dict[str, str] | None = "auto",
        mode: Any = None,
        batch_size: int | None = None,
        bucket_window: int | None = None,
        max_new_tokens: int = 8192,
        min_new_tokens: int | None = None,
        ngram_size: int = 30,
        ngram_window: int = 90,
        retry_truncated: bool = True,
        preprocess_workers: int | None = None,
        query: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | bool | None = None,
    ) -> None:
        self.mode = self._get_mode(mode)
        self.plan: DevicePlan = plan_device(device, dtype, attn_implementation)
        if isinstance(model, torch.nn.Module):
            if processor is None:
                raise EngineError("a model instance needs its processor: pass processor=")
            built: Any = model
            self.model: Any = built
            self.processor: Any = processor
            self.plan = DevicePlan(torch.device(built.device), built.dtype, None)
            self._model_id = f"instance:{type(built).__name__}:{id(built):x}"
        else:
            name = str(model or self.default_model)
            folder = resolve_model_dir(
                name,
                revision=revision,
                local_files_only=local_files_only,
                cache_dir=cache_dir,
                token=token,
            )
            self.model, self.processor = self._load_folder(folder, processor)
            self._model_id = f"{name}@{folder_fingerprint(folder)}"
        self.tokenizer: Any = self.processor.tokenizer
        self.guard = GuardSettings(ngram_size, ngram_window, max_new_tokens)
        if batch_size is not None and batch_size < 1:
            raise EngineError("batch_size must be at least 1")
        self.batch_size = batch_size or (16 if self.plan.device.type == "cuda" else 4)
        self.bucket_window = max(bucket_window or 2 * self.batch_size, self.batch_size)
        self.min_new_tokens = min_new_tokens
        self.retry_truncated = retry_truncated
        # A worker thread overlaps preprocessing with generation on an accelerator; on a CPU
        # device both compete for the same cores (and the GIL), so the default there is inline.
        if preprocess_workers is None:
            cores = os.cpu_count() or 2
            preprocess_workers = 0 if self.plan.device.type == "cpu" else min(4, max(1, cores // 2))
        self.preprocess_workers = max(0, preprocess_workers)
        self.query = query
        self.stats = EngineStats()
        self._batch_limit = self.batch_size  # lowered for good after an out-of-memory
        self._eos_id, self._pad_id = self._special_ids()
        self._drop_ids = {
            i for i in (self._pad_id, self.tokenizer.bos_token_id) if i is not None
        } - {self._eos_id}
        self._whitelist = whitelist_ids(self.tokenizer)

    # -- what a model family provides ------------------------------------------------------

    def _load_folder(self, folder: Path, processor: Any) -> tuple[Any, Any]:
        """The model and processor from a local checkpoint folder (``processor`` overrides)."""
        raise NotImplementedError

    def _get_mode(self, mode: Any) -> Any:
        """The resolution-mode object for a name (``None``: the family's default)."""
        raise NotImplementedError

    def _encode(self, image: Any, prompt: str) -> Mapping[str, Any]:
        """The processor's output for one page: ``input_ids`` [1, L] plus image tensors."""
        raise NotImplementedError

    def _count_tiles(self, encoded: Mapping[str, Any]) -> int:
        """How many local tiles the page was cut into (0 for the global view only)."""
        raise NotImplementedError

    @property
    def image_token_id(self) -> int:
        return int(self.processor.image_token_id)

    # -- setup helpers ---------------------------------------------------------------------

    def _special_ids(self) -> tuple[int, int]:
        eos = self.tokenizer.eos_token_id
        if eos is None:
            eos = self.model.generation_config.eos_token_id
            eos = eos[0] if isinstance(eos, list) else eos
        if eos is None:
            raise EngineError("the tokenizer has no end-of-sequence token")
        pad = self.tokenizer.pad_token_id
        return int(eos), int(eos if pad is None else pad)

    # -- the Engine interface --------------------------------------------------------------

    def cache_identity(self) -> dict[str, Any]:
        """Everything that changes this engine's output (not batch size: batching is exact)."""
        return {
            "engine": self.name,
            "model": self._model_id,
            "mode": self.mode.name,
            "dtype": str(self.plan.dtype),
            "max_new_tokens": self.guard.max_new_tokens,
            "min_new_tokens": self.min_new_tokens,
            "ngram": [self.guard.ngram_size, self.guard.window],
            "retry": self.retry_truncated,
            "query": self.query,
        }

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        """One Page per input, in order; see the module docstring for the strategy."""
        prompt = prompt_for(task, query=self.query)
        source = iter(pages)
        order = iter(range(1 << 62))

        def next_window() -> list[PageInput]:
            return list(islice(source, self.bucket_window))

        if not self.preprocess_workers:  # inline: nothing to overlap with on a CPU device
            while window := next_window():
                yield from self._run_window([self._prepare(next(order), p, prompt) for p in window])
            return
        pool = ThreadPoolExecutor(self.preprocess_workers, thread_name_prefix=f"{self.name}-prep")
        pending: deque[list[Future[PreparedPage]]] = deque()

        def submit_window() -> None:
            if window := next_window():
                pending.append([pool.submit(self._prepare, next(order), p, prompt) for p in window])

        try:
            submit_window()
            while pending:
                futures = pending.popleft()
                submit_window()  # the next window preprocesses while this one generates
                yield from self._run_window([f.result() for f in futures])
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Free the model (and GPU memory)."""
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- preprocessing (worker thread) -----------------------------------------------------

    def _prepare(self, order: int, inp: PageInput, prompt: str) -> PreparedPage:
        """Rasterise and preprocess one page; errors become the page's ``error``."""
        prep = PreparedPage(order, inp)
        try:
            enc = self._encode(inp.image, prompt)
            prep.tiles = self._count_tiles(enc)
        except Exception as exc:  # a bad page must not stop the document
            prep.error = f"preprocessing failed: {type(exc).__name__}: {exc}"
            return prep
        prep.input_ids = enc["input_ids"][0]
        for key, value in enc.items():
            if key in ("input_ids", "attention_mask") or not isinstance(value, torch.Tensor):
                continue
            prep.pixels[key] = value.to(self.plan.dtype) if value.is_floating_point() else value
        prep.image_tokens = int((prep.input_ids == self.image_token_id).sum())
        return prep

    # -- generation ------------------------------------------------------------------------

    def _run_window(self, window: list[PreparedPage]) -> Iterator[Page]:
        """Generate for one window of pages and yield their Pages in input order."""
        outputs: dict[int, _Output] = {}
        ready = [p for p in window if p.error is None]
        for batch in self._buckets(ready):
            results = self._generate_safe(batch, self.guard)
            outputs.update(zip([p.order for p in batch], results, strict=True))
        retried: set[int] = set()
        if self.retry_truncated:
            again = [
                p for p in ready if outputs[p.order].error is None and not outputs[p.order].eos
            ]
            stricter = self.guard.stricter()
            for batch in self._buckets(again):
                log.info("retrying %d page(s) without end-of-sequence", len(batch))
                results = self._generate_safe(batch, stricter)
                for prep, out in zip(batch, results, strict=True):
                    retried.add(prep.order)
                    if out.error is None:
                        outputs[prep.order] = out  # a failed retry keeps the first attempt
            self.stats.retried_pages += len(retried)
        for prep in window:
            yield self._make_page(prep, outputs.get(prep.order), prep.order in retried)

    def _buckets(self, pages: Sequence[PreparedPage]) -> list[list[PreparedPage]]:
        """Batches of pages with equal (or close) image-token counts, so padding is small."""
        ordered = sorted(
            pages, key=lambda p: (p.image_tokens, 0 if p.input_ids is None else len(p.input_ids))
        )
        size = self._batch_limit
        return [ordered[i : i + size] for i in range(0, len(ordered), size)]

    def _generate_safe(self, batch: list[PreparedPage], settings: GuardSettings) -> list[_Output]:
        """Generate for ``batch``; on OOM halve it, on another error isolate the bad page."""
        try:
            return self._generate(batch, settings)
        except Exception as exc:
            if self.plan.device.type == "cuda":
                torch.cuda.empty_cache()
            if len(batch) == 1:
                log.warning("page %s failed: %s", batch[0].inp.index + 1, exc)
                return [_Output(error=f"generation failed: {type(exc).__name__}: {exc}")]
            if _is_oom(exc):
                half = len(batch) // 2
                self._batch_limit = min(self._batch_limit, half)
                self.stats.oom_backoffs += 1
                log.warning("out of memory at batch %d; retrying as %d + %d", len(batch), half,
                            len(batch) - half)  # fmt: skip
                return self._generate_safe(batch[:half], settings) + self._generate_safe(
                    batch[half:], settings
                )
            log.warning("batch of %d failed (%s); retrying page by page", len(batch), exc)
            return [out for prep in batch for out in self._generate_safe([prep], settings)]

    def _collate(self, batch: list[PreparedPage]) -> dict[str, Any]:
        """Left-padded model inputs for ``batch`` on the model's device."""
        ids = [p.input_ids for p in batch if p.input_ids is not None]
        length = max(len(t) for t in ids)
        input_ids = torch.full((len(ids), length), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(ids), length), dtype=torch.long)
        for row, t in enumerate(ids):
            input_ids[row, length - len(t) :] = t
            attention[row, length - len(t) :] = 1
        dev = self.plan.device
        inputs: dict[str, Any] = {
            "input_ids": input_ids.to(dev),
            "attention_mask": attention.to(dev),
        }
        keys = dict.fromkeys(k for p in batch for k in p.pixels)  # first-seen order
        for key in keys:
            joined = torch.cat([p.pixels[key] for p in batch if key in p.pixels])
            inputs[key] = joined if key in self.cpu_keys else joined.to(dev)
        return inputs

    def _generate(self, batch: list[PreparedPage], settings: GuardSettings) -> list[_Output]:
        inputs = self._collate(batch)
        prompt_length = int(inputs["input_ids"].shape[1])
        guard = NoRepeatNGramWindowProcessor(
            settings.ngram_size,
            settings.window,
            prompt_length=prompt_length,
            whitelist=self._whitelist,
        )
        kwargs: dict[str, Any] = {
            "max_new_tokens": self._new_token_budget(settings.max_new_tokens, prompt_length),
            "do_sample": False,
            "num_beams": 1,
            "eos_token_id": self._eos_id,
            "pad_token_id": self._pad_id,
            "logits_processor": LogitsProcessorList([guard]),
            "use_cache": True,
        }
        if settings.repetition_penalty:
            kwargs["repetition_penalty"] = settings.repetition_penalty
        if self.min_new_tokens:
            kwargs["min_new_tokens"] = min(self.min_new_tokens, kwargs["max_new_tokens"])
        with torch.inference_mode():
            sequences = self.model.generate(**inputs, **kwargs)
        self.stats.generate_calls += 1
        self.stats.guard_fired += guard.fired
        return [self._split(row) for row in sequences[:, prompt_length:].tolist()]

    def _max_positions(self) -> int | None:
        """The decoder's trained context length, when its config states one."""
        config = self.model.config
        for name in ("text_config", "language_config", "llm_config"):
            sub = getattr(config, name, None)
            if sub is not None:
                config = sub
                break
        limit = getattr(config, "max_position_embeddings", None)
        return limit if isinstance(limit, int) else None

    def _new_token_budget(self, wanted: int, prompt_length: int) -> int:
        """``wanted``, capped so prompt + output stay within the model's trained positions
        (8192 for OCR-2; a 6-tile page already spends 1121 of them on image tokens)."""
        limit = self._max_positions()
        if limit is None:
            return wanted
        return max(1, min(wanted, limit - prompt_length))

    def _split(self, row: list[int]) -> _Output:
        """Generated ids up to (not including) EOS, padding and BOS removed."""
        eos = self._eos_id in row
        if eos:
            row = row[: row.index(self._eos_id)]
        ids = [t for t in row if t not in self._drop_ids]
        self.stats.generated_tokens += len(row) + int(eos)
        return _Output(ids=ids, eos=eos)

    # -- page assembly ---------------------------------------------------------------------

    def _make_page(self, prep: PreparedPage, out: _Output | None, retried: bool) -> Page:
        inp = prep.inp
        self.stats.pages += 1
        error = prep.error or (out.error if out is not None else "engine returned no result")
        if error is not None or out is None:
            self.stats.failed_pages += 1
            return inp.failed(error or "engine returned no result", engine=self.name)
        raw = self.tokenizer.decode(out.ids, skip_special_tokens=False)
        page = inp.parse_output(raw, engine=self.name)
        page.metadata.update(
            {
                "mode": self.mode.name,
                "image_tokens": prep.image_tokens,
                "tiles": prep.tiles,
                "generated_tokens": len(out.ids) + int(out.eos),
                "eos": out.eos,
                "retried": retried,
            }
        )
        if not out.eos:
            page.status = PageStatus.TRUNCATED
            page.error = f"no end-of-sequence within {len(out.ids)} generated tokens" + (
                " (also after a retry with a stricter repetition guard)" if retried else ""
            )
        if page.status is PageStatus.TRUNCATED:
            self.stats.truncated_pages += 1
        return page
