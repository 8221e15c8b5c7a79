"""Batched, guarded generation shared by the in-process DeepSeek-OCR family engines.

How a run goes:

* A memory plan (:mod:`.memory_plan`) sizes the batch from the model's shapes, the mode's
  largest page, the token budget and the free device memory, unless ``batch_size`` is given.
* Pages are read in windows of ``bucket_window`` pages. On an accelerator, worker threads
  rasterise and preprocess the next window while the model generates for the current one, so
  the GPU does not wait on the (CPU-bound, ~0.2-0.3 s/page) image processor; the first window
  is a quarter batch, so the GPU starts early and the pipeline fills behind it. On a CPU device
  the model and the processor would share the same cores, so preprocessing runs inline there.
* Inside a window, pages are sorted by image-token count and cut into batches; for each batch
  the vision tower encodes the pages' views in micro-batches of at most ``vision_batch`` views,
  the features are scattered into the prompt embeddings, and one ``generate`` call runs on
  those embeddings with LEFT padding (right padding would put pad tokens between a prompt and
  its continuation and change the output).
* Generation is greedy with an n-gram no-repeat guard and ``max_new_tokens``. A page that
  never emits end-of-sequence is retried once with stricter settings and is then kept as
  ``truncated`` with its partial text.
* Out-of-memory halves the batch and retries, after the failed attempt's tensors are released
  (the retry runs outside the ``except`` block, so no traceback pins them); later batches stay
  at the smaller size. A page that fails even alone is kept as ``failed`` with the error. No
  page is ever dropped.

Output is decoded with special tokens kept, since the grounding markers (``<|ref|>``,
``<|det|>``...) are added special tokens that ``skip_special_tokens=True`` would delete;
padding, BOS and EOS are removed here by id instead.

A model family plugs in by subclassing :class:`BatchedVisionEngine` and saying how to load a
folder, how to preprocess one page (:meth:`~BatchedVisionEngine._encode`), how many tiles a
page used and how large the mode's largest page is; everything else (memory plan, batching,
vision micro-batches, guard, retries, page assembly) is shared.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from ..document import Page, PageStatus
from ..errors import EngineError, EngineOptionError
from ..models.sam_attention import fold_sam_attention, is_folded
from .base import Engine, PageInput, Task, prompt_for
from .continuous import (
    ContinuousBatcher,
    SlotRequest,
    SlotResult,
    SlotWorkspace,
    force_lengths,
)
from .hf_guard import GuardSettings, NoRepeatNGramWindowProcessor, whitelist_ids
from .hf_loading import DevicePlan, folder_fingerprint, plan_device, resolve_model_dir
from .memory_plan import GIB, MemoryPlan, PageShape, plan_memory, text_shape, vision_shape

__all__ = ["DEFAULT_MAX_NEW_TOKENS", "BatchedVisionEngine", "EngineStats", "PreparedPage"]

#: A page's default token budget: real DeepSeek-OCR pages run from ~100 to ~4,000 tokens (a
#: dense table page); the KV cache is planned for it. Pages that need more come back
#: ``truncated`` (after one retry), never silently cut.
DEFAULT_MAX_NEW_TOKENS = 4096
#: Without a memory plan (a CPU device and no ``memory_limit_gb``).
_CPU_BATCH = 4
_CPU_VISION_VIEWS = 16
#: Continuous batching prefills new pages in groups of at most this many: enough prompt tokens
#: (~36k for OCR-2) to keep the GPU's matrix units busy, while the slots' cache stays allocated.
PREFILL_GROUP = 32

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
    guard_fired: int = 0
    """Decode steps at which the repetition guard banned a token for this page."""
    seconds: float = 0.0
    """The page's share of its batch's device time (vision, prefill and decode)."""


@dataclass
class EngineStats:
    """Counters over the engine's lifetime, for benchmarks and logs.

    Stage times are wall seconds on the calling thread (the device is synchronised at stage
    ends, once per batch, so they are real): ``wait_s`` is time spent waiting for preprocessed
    pages (the device idles then), ``preprocess_s`` the workers' summed processor time.
    """

    pages: int = 0
    generate_calls: int = 0
    generated_tokens: int = 0
    retried_pages: int = 0
    truncated_pages: int = 0
    failed_pages: int = 0
    oom_backoffs: int = 0
    guard_fired: int = 0
    vision_forwards: int = 0
    decode_steps: int = 0
    slot_refills: int = 0
    """Continuous batching: pages that took a slot another page had left."""
    slot_steps: int = 0
    """Continuous batching: slot-steps run (decode steps x slots)."""
    slot_steps_busy: int = 0
    """Continuous batching: slot-steps that held a page (occupancy = busy / slot_steps)."""
    graph_replays: int = 0
    """Continuous batching: decode steps replayed from a captured CUDA graph."""
    preprocess_s: float = 0.0
    wait_s: float = 0.0
    vision_s: float = 0.0
    prefill_s: float = 0.0
    decode_s: float = 0.0


@dataclass(frozen=True)
class _Failure:
    """What is kept of a failed attempt: never the exception (its traceback pins the attempt's
    frames, and with them its inputs, KV cache and activations)."""

    oom: bool
    message: str


class _StepClock(LogitsProcessor):
    """Marks the end of prefill (the first logits processor call) and counts decode steps."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.first: float | None = None
        self.steps = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.first is None:
            _sync(self.device)  # once per batch: makes the prefill time real
            self.first = time.perf_counter()
        self.steps += 1
        return scores


class _ExactLengths(LogitsProcessor):
    """Ends each row of a ``generate`` call at its target length (see
    :func:`.continuous.force_lengths`)."""

    def __init__(self, targets: torch.Tensor, prompt_length: int, eos_id: int) -> None:
        self.targets = targets
        self.prompt_length = prompt_length
        self.eos_id = eos_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = torch.full_like(self.targets, input_ids.shape[1] - self.prompt_length)
        return force_lengths(scores, generated, self.targets, self.eos_id)  # type: ignore[return-value]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _is_oom(exc: BaseException) -> bool:
    oom_type = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    return isinstance(exc, oom_type) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def resolve_scheduler(requested: str, device_type: str, *, flash: bool) -> str:
    """The scheduler an engine runs: ``requested``, where ``"auto"`` means continuous batching
    on CUDA with an SDPA or eager decoder and static batching elsewhere.

    Args:
        requested: ``"auto"``, ``"static"`` or ``"continuous"``.
        device_type: the model's device type (``"cuda"``, ``"cpu"``, ...).
        flash: whether the decoder runs flash-attention (the slots cannot).
    """
    if requested != "auto":
        return requested
    # Static ``generate`` is bound by the host on a GPU (H200, OCR-2, batch 64: 66 ms per decode
    # step against 8.8 ms for the slots' graph-replayed step); on a CPU the arithmetic
    # dominates, and the static path needs no KV cache of its own.
    return "continuous" if device_type == "cuda" and not flash else "static"


class BatchedVisionEngine(Engine):
    """Base of the in-process model engines; see the module docstring for the strategy.

    Subclasses set ``default_model`` and implement :meth:`_load_folder`, :meth:`_get_mode`,
    :meth:`_encode`, :meth:`_count_tiles` and :meth:`_largest_page`.

    Args:
        model: hub id, a local folder, or an already built model instance (then ``processor``
            is required; used by benchmarks).
        processor: the processor to use instead of the one saved with the model.
        device: ``"cuda"``, ``"cpu"``, ... (default: CUDA when present).
        dtype: default bf16 on CUDA, float32 on CPU.
        attn_implementation: ``"auto"`` (SDPA; flash-attn 2 for the decoder on CUDA when
            installed) or any value transformers accepts.
        mode: resolution mode name.
        batch_size: pages per ``generate``; default: what the memory plan fits on an
            accelerator (or within ``memory_limit_gb``), 4 on a CPU.
        bucket_window: pages sorted by image-token count together (default 2 batches); with
            ``scheduler="continuous"``, how many pages are preprocessed ahead (default 4
            batches).
        max_new_tokens: a page's token budget (default 4096, capped by the model's context).
        min_new_tokens: forces a length (benchmarks).
        ngram_size: the repetition guard's n-gram.
        ngram_window: the repetition guard's window.
        retry_truncated: retry a page without end-of-sequence once, with a stricter guard.
        preprocess_workers: threads that preprocess the next window during generation
            (default up to 8 on an accelerator, 0 = inline on a CPU device).
        vision_batch: views per vision-tower forward (default: from the memory plan; 16 on a
            CPU).
        memory_limit_gb: device memory the engine may plan for beyond the weights (default:
            what the device reports free).
        scheduler: ``"static"`` (one ``generate`` per batch), ``"continuous"``
            (:mod:`.continuous`: ``batch_size`` decode slots, refilled as pages end; needs an
            SDPA or eager decoder, not flash-attention) or ``"auto"`` (default: continuous on
            CUDA with such a decoder, where it ran several times faster on an H200; static
            elsewhere).
        sync_every: with ``"continuous"``, decode steps between the host's reads of the slots.
        cuda_graphs: with ``"continuous"`` on CUDA, replay the decode step as a captured CUDA
            graph (falls back to eager, with a warning, where capture fails).
        exact_lengths: benchmarks only: page index -> the exact number of tokens the page
            generates (end-of-sequence included), for realistic lengths on random weights.
        query: what to find for ``Task.LOCATE``.
        revision: hub revision.
        local_files_only: never reach the hub.
        cache_dir: hub cache folder.
        token: hub token.
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
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        min_new_tokens: int | None = None,
        ngram_size: int = 30,
        ngram_window: int = 90,
        retry_truncated: bool = True,
        preprocess_workers: int | None = None,
        vision_batch: int | None = None,
        memory_limit_gb: float | None = None,
        scheduler: str = "auto",
        sync_every: int = 8,
        cuda_graphs: bool = True,
        exact_lengths: Mapping[int, int] | None = None,
        query: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | bool | None = None,
    ) -> None:
        self.mode = self._get_mode(mode)
        if batch_size is not None and batch_size < 1:
            raise EngineOptionError("batch_size must be at least 1", option="batch_size")
        if vision_batch is not None and vision_batch < 1:
            raise EngineOptionError("vision_batch must be at least 1", option="vision_batch")
        if memory_limit_gb is not None and not memory_limit_gb > 0:
            raise EngineOptionError("memory_limit_gb must be positive", option="memory_limit_gb")
        if max_new_tokens < 1:
            raise EngineOptionError("max_new_tokens must be at least 1", option="max_new_tokens")
        if scheduler not in ("auto", "static", "continuous"):
            raise EngineOptionError(
                f"scheduler must be 'auto', 'static' or 'continuous', not {scheduler!r}",
                option="scheduler",
            )
        if sync_every < 1:
            raise EngineOptionError("sync_every must be at least 1", option="sync_every")
        self.sync_every = sync_every
        self.cuda_graphs = cuda_graphs
        self._workspace: SlotWorkspace | None = None  # the slots' cache (and graph) across runs
        self.exact_lengths = dict(exact_lengths or {})
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
        self.vision_folded = self._fold_vision_attention()
        self.tokenizer: Any = self.processor.tokenizer
        self.guard = GuardSettings(ngram_size, ngram_window, max_new_tokens)
        self.min_new_tokens = min_new_tokens
        self.retry_truncated = retry_truncated
        self.query = query
        self.stats = EngineStats()
        self._eos_id, self._pad_id = self._special_ids()
        self._drop_ids = {
            i for i in (self._pad_id, self.tokenizer.bos_token_id) if i is not None
        } - {self._eos_id}
        self._whitelist = whitelist_ids(self.tokenizer)
        flash = "flash" in self._decoder_attention()
        scheduler = resolve_scheduler(scheduler, self.plan.device.type, flash=flash)
        self.scheduler = scheduler
        if scheduler == "continuous" and flash:
            raise EngineOptionError(
                "scheduler='continuous' needs an SDPA or eager decoder (its slots use a 4-D "
                "attention mask that flash-attention does not take): pass "
                "attn_implementation='sdpa'",
                option="scheduler",
            )
        self.memory_plan: MemoryPlan | None = self._plan_memory(memory_limit_gb)
        planned = self.memory_plan
        self.batch_size = batch_size or (planned.batch_size if planned else _CPU_BATCH)
        self.vision_batch = vision_batch or (planned.vision_views if planned else _CPU_VISION_VIEWS)
        if planned is not None:
            log.debug(
                "%s; batch %d%s, %d views per vision forward",
                planned.describe(),
                self.batch_size,
                " (given)" if batch_size else "",
                self.vision_batch,
            )
        # Continuous batching refills slots from pages preprocessed ahead: a longer lookahead
        # rides out slow pages (preprocessed pages wait in host memory).
        windows = 4 if scheduler == "continuous" else 2
        self.bucket_window = max(bucket_window or windows * self.batch_size, self.batch_size)
        # A worker thread overlaps preprocessing with generation on an accelerator; on a CPU
        # device both compete for the same cores (and the GIL), so the default there is inline.
        if preprocess_workers is None:
            cores = os.cpu_count() or 2
            preprocess_workers = 0 if self.plan.device.type == "cpu" else min(8, max(1, cores // 2))
        self.preprocess_workers = max(0, preprocess_workers)
        self._batch_limit = self.batch_size  # lowered for good after an out-of-memory

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

    def _largest_page(self) -> tuple[int, int, int]:
        """The mode's largest page: (image tokens, views, side of its largest view in px)."""
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

    def _fold_vision_attention(self) -> bool:
        """Run SAM's attention with its relative positions folded into q/k (exact; no
        ``[heads, L, L]`` bias per view); True when every SAM attention layer runs folded."""
        fold_sam_attention(self.model)
        return is_folded(self.model)

    def _decoder_attention(self) -> str:
        """The attention implementation the text decoder runs with."""
        config = self.model.config
        text = getattr(config, "text_config", None) or getattr(config, "llm_config", None)
        for cfg in (text, config):
            value = getattr(cfg, "_attn_implementation", None)
            if isinstance(value, str):
                return value
        return "sdpa"

    def _free_device_memory(self, limit_gb: float | None) -> int | None:
        """Bytes the plan may use: ``limit_gb`` when given, else what CUDA reports free (plus
        what our own allocator holds unused); None on a device that reports nothing."""
        if limit_gb is not None:
            return int(limit_gb * GIB)
        dev = self.plan.device
        if dev.type != "cuda":
            return None
        free, _total = torch.cuda.mem_get_info(dev)
        return int(free + torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev))

    def _page_shape(self) -> PageShape:
        """The largest page of the mode with its prompt text and token budget."""
        image_tokens, views, side = self._largest_page()
        text = len(self.tokenizer(prompt_for(Task.MARKDOWN), add_special_tokens=True).input_ids)
        prompt = image_tokens + text + 1  # +1: a task prompt a few tokens longer than Markdown's
        new = self._new_token_budget(self.guard.max_new_tokens, prompt)
        return PageShape(prompt, new, views, side)

    def _plan_memory(self, limit_gb: float | None) -> MemoryPlan | None:
        free = self._free_device_memory(limit_gb)
        if free is None:
            return None
        return plan_memory(
            text_shape(self.model.config, self.plan.dtype),
            vision_shape(self.model.config, self.plan.dtype, folded=self.vision_folded),
            self._page_shape(),
            free=free,
            prefill_pages=PREFILL_GROUP if self.scheduler == "continuous" else None,
        )

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
            "exact_lengths": sorted(self.exact_lengths.items()),
        }

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        """One Page per input, in order; see the module docstring for the strategy."""
        prompt = prompt_for(task, query=self.query)
        prepared = self._prepared(pages, prompt)
        if self.scheduler == "continuous":
            yield from self._run_continuous(prepared)
            return
        # With workers, the first window is a quarter batch: the device starts after a few
        # pages, and the full windows preprocess behind it (``_prepared`` keeps a window of
        # pages in the workers while one generates). Inline there is nothing to overlap.
        size = self.bucket_window
        if self.preprocess_workers:
            size = max(1, min(self.bucket_window, self.batch_size) // 4)
        while window := list(islice(prepared, size)):
            yield from self._run_window(window)
            size = self.bucket_window

    def close(self) -> None:
        """Free the model (and GPU memory)."""
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- preprocessing (worker thread) -----------------------------------------------------

    def _prepare(self, order: int, inp: PageInput, prompt: str) -> PreparedPage:
        """Rasterise and preprocess one page; errors become the page's ``error``."""
        started = time.perf_counter()
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
        self.stats.preprocess_s += time.perf_counter() - started  # a float add: GIL-atomic
        return prep

    # -- generation ------------------------------------------------------------------------

    def _run_window(self, window: list[PreparedPage]) -> Iterator[Page]:
        """Generate for one window of pages and yield their Pages in input order."""
        outputs: dict[int, _Output] = {}
        ready = [p for p in window if p.error is None]
        for batch in self._buckets(ready):
            outputs.update(self._generate_safe(batch, self.guard))
        retried: set[int] = set()
        if self.retry_truncated:
            again = [
                p for p in ready if outputs[p.order].error is None and not outputs[p.order].eos
            ]
            better, retried = self._retry(again)
            outputs.update(better)
        for prep in window:
            yield self._make_page(prep, outputs.get(prep.order), prep.order in retried)

    def _retry(self, again: list[PreparedPage]) -> tuple[dict[int, _Output], set[int]]:
        """One stricter attempt for pages without end-of-sequence: the outputs that replace
        the first attempts (a failed retry keeps the first), and the pages retried."""
        better: dict[int, _Output] = {}
        retried: set[int] = set()
        stricter = self.guard.stricter()
        for batch in self._buckets(again):
            log.info("retrying %d page(s) without end-of-sequence", len(batch))
            for order, out in self._generate_safe(batch, stricter).items():
                retried.add(order)
                if out.error is None:
                    better[order] = out
        self.stats.retried_pages += len(retried)
        return better, retried

    def _buckets(self, pages: Sequence[PreparedPage]) -> list[list[PreparedPage]]:
        """Batches of pages with equal (or close) image-token counts, so padding is small."""
        ordered = sorted(
            pages, key=lambda p: (p.image_tokens, 0 if p.input_ids is None else len(p.input_ids))
        )
        size = self._batch_limit
        return [ordered[i : i + size] for i in range(0, len(ordered), size)]

    def _generate_safe(
        self, batch: list[PreparedPage], settings: GuardSettings
    ) -> dict[int, _Output]:
        """Outputs by page order for ``batch``; on OOM halve it, on another error isolate the
        bad page. Every retry starts after the failed attempt's tensors are released."""
        results: dict[int, _Output] = {}
        queue: deque[list[PreparedPage]] = deque([batch])
        while queue:
            part = queue.popleft()
            failure = self._attempt(part, settings, results)
            if failure is None:
                continue
            self._release_memory()
            if len(part) == 1:
                log.warning("page %s failed: %s", part[0].inp.index + 1, failure.message)
                results[part[0].order] = _Output(error=f"generation failed: {failure.message}")
            elif failure.oom:
                half = len(part) // 2
                self._batch_limit = min(self._batch_limit, half)
                self.stats.oom_backoffs += 1
                log.warning("out of memory at batch %d; retrying as %d + %d", len(part), half,
                            len(part) - half)  # fmt: skip
                queue.extendleft([part[half:], part[:half]])
            else:
                log.warning(
                    "batch of %d failed (%s); retrying page by page", len(part), failure.message
                )
                queue.extendleft([[prep] for prep in reversed(part)])
        return results

    def _attempt(
        self, part: list[PreparedPage], settings: GuardSettings, results: dict[int, _Output]
    ) -> _Failure | None:
        """One ``generate`` for ``part``, its outputs into ``results``; a failure comes back as
        a :class:`_Failure`, and the exception dies with this frame."""
        try:
            outputs = self._generate(part, settings)
        except Exception as exc:
            return _Failure(_is_oom(exc), f"{type(exc).__name__}: {exc}")
        results.update(zip([p.order for p in part], outputs, strict=True))
        return None

    def _release_memory(self) -> None:
        """Collect what a failed attempt left (reference cycles included) and hand cached
        blocks back to the device, so the retry starts from a clean allocator."""
        gc.collect()
        if self.plan.device.type == "cuda":
            torch.cuda.empty_cache()

    def _collate_ids(self, batch: list[PreparedPage]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ``input_ids`` and ``attention_mask`` for ``batch`` on the device."""
        ids = [p.input_ids for p in batch if p.input_ids is not None]
        length = max(len(t) for t in ids)
        input_ids = torch.full((len(ids), length), self._pad_id, dtype=torch.long)
        attention = torch.zeros((len(ids), length), dtype=torch.long)
        for row, t in enumerate(ids):
            input_ids[row, length - len(t) :] = t
            attention[row, length - len(t) :] = 1
        dev = self.plan.device
        return input_ids.to(dev), attention.to(dev)

    def _collate_pixels(self, batch: list[PreparedPage]) -> dict[str, Any]:
        """The pages' image tensors joined along dim 0 (on the device, but ``cpu_keys``)."""
        inputs: dict[str, Any] = {}
        keys = dict.fromkeys(k for p in batch for k in p.pixels)  # first-seen order
        for key in keys:
            joined = torch.cat([p.pixels[key] for p in batch if key in p.pixels])
            inputs[key] = joined if key in self.cpu_keys else joined.to(self.plan.device)
        return inputs

    def _view_groups(self, batch: list[PreparedPage]) -> list[list[PreparedPage]]:
        """Consecutive pages whose views (global + tiles) fit one vision forward of
        ``vision_batch`` views; a page with more views than that goes alone."""
        groups: list[list[PreparedPage]] = []
        views = 0
        for prep in batch:
            need = 1 + prep.tiles
            if groups and views + need <= self.vision_batch:
                groups[-1].append(prep)
                views += need
            else:
                groups.append([prep])
                views = need
        return groups

    def _image_features(self, pixels: dict[str, Any]) -> list[torch.Tensor]:
        """Per page, the feature rows that replace its image tokens (the model's own
        ``get_image_features``: OCR-2's returns them as ``pooler_output``)."""
        out = self.model.get_image_features(**pixels)
        return list(getattr(out, "pooler_output", out))

    def _prompt_embeddings(
        self, batch: list[PreparedPage], input_ids: torch.Tensor
    ) -> torch.Tensor:
        """Token embeddings with each page's image features in place of its image tokens; the
        views go through the vision tower in micro-batches, and each micro-batch's pixels and
        activations are released before the next."""
        features: list[torch.Tensor] = []
        for group in self._view_groups(batch):
            pixels = self._collate_pixels(group)
            features.extend(self._image_features(pixels))
            self.stats.vision_forwards += 1
            del pixels
        rows = [f.shape[0] for f in features]
        wanted = [p.image_tokens for p in batch]
        if rows != wanted:
            raise EngineError(f"image features per page {rows} do not match image tokens {wanted}")
        embeds = self.model.get_input_embeddings()(input_ids)
        flat = torch.cat(features).to(embeds.dtype)
        del features
        mask = (input_ids == self.image_token_id).unsqueeze(-1)
        return embeds.masked_scatter(mask, flat)

    def _generate(self, batch: list[PreparedPage], settings: GuardSettings) -> list[_Output]:
        dev = self.plan.device
        started = time.perf_counter()
        input_ids, attention = self._collate_ids(batch)
        with torch.inference_mode():
            embeds = self._prompt_embeddings(batch, input_ids)
        _sync(dev)
        vision_done = time.perf_counter()
        self.stats.vision_s += vision_done - started
        prompt_length = int(input_ids.shape[1])
        guard = NoRepeatNGramWindowProcessor(
            settings.ngram_size,
            settings.window,
            prompt_length=prompt_length,
            whitelist=self._whitelist,
            stop_token_ids=[self._eos_id],  # rows padded after their end do not count
        )
        clock = _StepClock(dev)
        kwargs: dict[str, Any] = {
            "max_new_tokens": self._new_token_budget(settings.max_new_tokens, prompt_length),
            "do_sample": False,
            "num_beams": 1,
            "eos_token_id": self._eos_id,
            "pad_token_id": self._pad_id,
            "logits_processor": LogitsProcessorList([guard, clock]),
            "use_cache": True,
        }
        if settings.repetition_penalty:
            kwargs["repetition_penalty"] = settings.repetition_penalty
        if self.min_new_tokens:
            kwargs["min_new_tokens"] = min(self.min_new_tokens, kwargs["max_new_tokens"])
        targets = [self.exact_lengths.get(p.inp.index, 0) for p in batch]
        if any(targets):
            exact = _ExactLengths(torch.tensor(targets, device=dev), prompt_length, self._eos_id)
            kwargs["logits_processor"].append(exact)
        with torch.inference_mode():
            sequences = self.model.generate(
                input_ids=input_ids, attention_mask=attention, inputs_embeds=embeds, **kwargs
            )
        del embeds
        new_ids = sequences[:, prompt_length:].tolist()  # the host copy syncs the device
        done = time.perf_counter()
        prefill_end = clock.first if clock.first is not None else done
        self.stats.prefill_s += prefill_end - vision_done
        self.stats.decode_s += done - prefill_end
        self.stats.decode_steps += max(0, clock.steps - 1)
        self.stats.generate_calls += 1
        fired = guard.fired_per_row() or [0] * len(new_ids)  # read once, after the run
        self.stats.guard_fired += sum(fired)
        outputs = [self._split(row) for row in new_ids]
        share = (done - started) / len(outputs)
        for out, count in zip(outputs, fired, strict=True):
            out.guard_fired = count
            out.seconds = share
        return outputs

    # -- continuous batching -----------------------------------------------------------------

    def _prepared(self, pages: Iterable[PageInput], prompt: str) -> Iterator[PreparedPage]:
        """Pages in input order, preprocessed up to ``bucket_window`` pages ahead by the
        worker threads (inline without workers); both schedulers read pages from here."""
        source = iter(pages)
        order = iter(range(1 << 62))
        if not self.preprocess_workers:
            for inp in source:
                yield self._prepare(next(order), inp, prompt)
            return
        pool = ThreadPoolExecutor(self.preprocess_workers, thread_name_prefix=f"{self.name}-prep")
        ahead: deque[Future[PreparedPage]] = deque(
            pool.submit(self._prepare, next(order), inp, prompt)
            for inp in islice(source, self.bucket_window)
        )
        try:
            while ahead:
                waited = time.perf_counter()
                prep = ahead.popleft().result()
                self.stats.wait_s += time.perf_counter() - waited
                for inp in islice(source, 1):
                    ahead.append(pool.submit(self._prepare, next(order), inp, prompt))
                yield prep
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_continuous(self, prepared: Iterator[PreparedPage]) -> Iterator[Page]:
        """Continuous batching over the whole stream of pages: slots refill from the next
        preprocessed page as pages end, with no drain between windows. Pages come out in input
        order; a page without end-of-sequence waits for its stricter retry (through
        ``generate``, in batches) while the pages behind it wait with it."""
        cells = self._page_cells(self.guard)
        preps: dict[int, PreparedPage] = {}
        outputs: dict[int, _Output | None] = {}
        waiting: list[PreparedPage] = []  # ended without end-of-sequence: to retry
        retried: set[int] = set()
        next_order = 0

        def feed() -> Iterator[SlotRequest]:
            for prep in prepared:
                preps[prep.order] = prep
                if prep.error is not None:
                    outputs[prep.order] = None  # _make_page reports the preprocessing error
                    continue
                req = self._request(prep, self.guard)
                if req.prompt_length + req.budget > cells:  # a prompt longer than planned
                    outputs.update(self._generate_safe([prep], self.guard))
                    continue
                yield req

        def record(order: int, out: _Output) -> None:
            outputs[order] = out
            if self.retry_truncated and out.error is None and not out.eos:
                waiting.append(preps[order])

        def flush(final: bool) -> Iterator[Page]:
            nonlocal next_order
            blocked = sum(1 for o in outputs if o > next_order)
            if waiting and (final or len(waiting) >= self.batch_size
                            or blocked >= self.bucket_window):  # fmt: skip
                # The retries' generate runs beside the slots' cache; where memory runs out,
                # a retry fails and the page keeps its first attempt.
                better, done = self._retry(waiting)
                waiting.clear()
                retried.update(done)
                outputs.update(better)
            pending = {p.order for p in waiting}
            while next_order in outputs and next_order not in pending:
                prep = preps.pop(next_order)
                yield self._make_page(prep, outputs.pop(next_order), prep.order in retried)
                next_order += 1

        source = feed()
        redo: list[SlotRequest] = []
        slots = self._batch_limit
        while True:
            batcher = self._batcher(slots, cells)
            started = time.perf_counter()
            failure: _Failure | None = None
            try:
                for order, result in batcher.stream(chain(redo, source), cells=cells):
                    record(order, self._slot_output(result))
                    yield from flush(final=False)
            except Exception as exc:  # the stream's frames (and cache) die with it
                failure = _Failure(_is_oom(exc), f"{type(exc).__name__}: {exc}")
            self._account(batcher, slots, time.perf_counter() - started)
            redo = batcher.in_flight()
            if failure is None:
                self._workspace = batcher.workspace
                break
            batcher.workspace = self._workspace = None
            del batcher
            self._release_memory()
            if slots == 1:  # the page in flight fails alone: keep it as failed, go on
                for req in redo:
                    page = preps[req.key].inp.index + 1
                    log.warning("page %s failed: %s", page, failure.message)
                    outputs[req.key] = _Output(error=f"generation failed: {failure.message}")
                redo = []
            elif failure.oom:
                slots = max(1, slots // 2)
                self._batch_limit = min(self._batch_limit, slots)
                self.stats.oom_backoffs += 1
                log.warning("out of memory with %d slots; going on with %d", slots * 2, slots)
            else:
                log.warning("continuous batch failed (%s); going on one slot at a time",
                            failure.message)  # fmt: skip
                slots = 1
            yield from flush(final=False)
        yield from flush(final=True)

    def _request(self, prep: PreparedPage, settings: GuardSettings) -> SlotRequest:
        length = 0 if prep.input_ids is None else len(prep.input_ids)
        budget = self._new_token_budget(settings.max_new_tokens, length)
        exact = min(self.exact_lengths.get(prep.inp.index, 0), budget)
        return SlotRequest(prep.order, length, budget, exact, prep)

    def _batcher(self, slots: int, cells: int) -> ContinuousBatcher:
        dev = self.plan.device

        def prefill_inputs(group: list[SlotRequest]) -> tuple[Any, Any, Any]:
            batch = [r.page for r in group]
            input_ids, attention = self._collate_ids(batch)
            embeds = self._prompt_embeddings(batch, input_ids)
            _sync(dev)  # so the batcher's clock gives the vision stage its real time
            return input_ids, attention, embeds

        return ContinuousBatcher(
            self.model,
            prefill_inputs,
            slots=slots,
            eos_id=self._eos_id,
            pad_id=self._pad_id,
            ngram_size=self.guard.ngram_size,
            window=self.guard.window,
            whitelist=sorted(self._whitelist),
            min_new_tokens=self.min_new_tokens,
            sync_every=self.sync_every,
            cells=cells,
            cuda_graphs=self.cuda_graphs,
            workspace=self._workspace,
            max_prefill=PREFILL_GROUP,
            min_refill=self._min_refill(slots),
        )

    def _min_refill(self, slots: int) -> int:
        """Free slots that wait for each other before a refill: the pages of one full vision
        forward (a lone page's vision costs about twice as much per page), at most a quarter
        of the slots so that few sit idle."""
        views = max(1, self._largest_page()[1])
        return max(1, min(self.vision_batch // views, slots // 4))

    def _slot_output(self, result: SlotResult) -> _Output:
        out = self._split(result.ids)
        out.guard_fired = result.guard_fired
        out.seconds = result.seconds
        self.stats.guard_fired += result.guard_fired
        return out

    def _account(self, batcher: ContinuousBatcher, slots: int, elapsed: float) -> None:
        """A continuous run's times and counters into the stats."""
        self.stats.vision_s += batcher.vision_s
        self.stats.prefill_s += batcher.prefill_s - batcher.vision_s
        self.stats.decode_s += elapsed - batcher.prefill_s
        self.stats.decode_steps += batcher.decode_steps
        self.stats.slot_refills += batcher.refills
        self.stats.slot_steps += batcher.decode_steps * slots
        self.stats.slot_steps_busy += sum(batcher.active_history)
        self.stats.graph_replays += batcher.graph_replays
        self.stats.generate_calls += 1

    def _page_cells(self, settings: GuardSettings) -> int:
        """KV cells a slot needs for the mode's largest page and its token budget."""
        page = self._page_shape()
        return page.prompt_tokens + self._new_token_budget(
            settings.max_new_tokens, page.prompt_tokens
        )

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
                "guard_fired": out.guard_fired,
                "seconds": round(out.seconds, 4),
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
