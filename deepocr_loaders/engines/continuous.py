"""Continuous batching for the in-process model engines: a fixed number of decode slots stays
full, and a slot whose page ended is refilled with the next page's prefill.

Static batching (one ``generate`` per batch) runs every batch until its longest page ends, and
real pages range from ~100 to ~4,000 tokens, so most rows idle after their end-of-sequence.
Here each page owns a *slot*: one row of a :class:`SlotCache`, whose cells ``[0, filled)`` hold
the page's keys and values. Keys are cached after the rotary embedding, so a page's cells need
no particular place in the row: a new page's prompt KV (from an ordinary batched prefill with
left padding) is copied to the front of a free row, and its decode steps append behind it. One
decode step feeds every slot its last token at its own position, with a 4-D boolean mask that
lets each row see its own cells only (transformers passes a 4-D mask through unchanged).

Token for token this is what ``generate`` gives for one page alone (greedy, the same n-gram
guard on the page's own generated tokens, the same token budget): the tests check it on all
three model families. The host reads the slots' state every ``sync_every`` steps, not at every
step; a slot that ended in between stays masked out of the output until then.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache

from .hf_guard import NoRepeatNGramWindowProcessor

log = logging.getLogger(__name__)

__all__ = [
    "ContinuousBatcher",
    "DecodeStep",
    "SlotCache",
    "SlotRequest",
    "SlotResult",
    "SlotWorkspace",
    "force_lengths",
]


def force_lengths(
    scores: torch.Tensor, generated: torch.Tensor, targets: torch.Tensor, eos_id: int
) -> torch.Tensor:
    """Scores that make each row end exactly at its target length (benchmarks with realistic
    output lengths on random weights): end-of-sequence is banned before the row's last token
    and forced at it. ``generated``: tokens each row has so far; ``targets``: the length each
    row must reach, end-of-sequence included (0: no target).

    Args:
        scores: ``[rows, vocab]`` float scores of this step.
        generated: ``[rows]`` tokens generated so far per row.
        targets: ``[rows]`` target lengths (0 = leave the row alone).
        eos_id: end-of-sequence id.
    """
    has = targets > 0
    early = has & (generated < targets - 1)
    at_end = has & (generated >= targets - 1)
    scores = scores.clone()
    scores[:, eos_id] = torch.where(early, float("-inf"), scores[:, eos_id])
    only_eos = torch.full_like(scores, float("-inf"))
    only_eos[:, eos_id] = 0.0
    return torch.where(at_end[:, None], only_eos, scores)


class SlotCache:
    """A KV cache of ``slots`` rows x ``cells`` positions per layer, written at a per-row cell.

    It speaks the part of transformers' ``Cache`` interface that the decoder layers use
    (``update``): :meth:`set_write_cells` says, before each forward, at which cell every row's
    new token goes.
    """

    is_compileable = False

    def __init__(self, layers: int, slots: int, cells: int, like: torch.Tensor) -> None:
        self.layers = layers
        self.slots = slots
        self.cells = cells
        self._like = like
        self.keys: list[torch.Tensor | None] = [None] * layers
        self.values: list[torch.Tensor | None] = [None] * layers
        self._rows = torch.arange(slots, device=like.device)
        self._write = torch.zeros(slots, dtype=torch.long, device=like.device)

    def set_write_cells(self, cells: torch.Tensor) -> None:
        """The cell each row's (single) new token is written to at the next forward (copied
        into a fixed buffer: a captured CUDA graph reads it from there)."""
        self._write.copy_(cells)

    def _ensure(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> None:
        if self.keys[layer] is None:
            # Zeros, not empty: masked cells still meet the values in a matmul (0 * NaN = NaN).
            shape_k = (self.slots, key.shape[1], self.cells, key.shape[3])
            shape_v = (self.slots, value.shape[1], self.cells, value.shape[3])
            self.keys[layer] = torch.zeros(shape_k, dtype=key.dtype, device=key.device)
            self.values[layer] = torch.zeros(shape_v, dtype=value.dtype, device=value.device)

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Write one token per row at its cell; return the layer's whole cache."""
        self._ensure(layer_idx, key_states, value_states)
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        assert keys is not None and values is not None
        keys[self._rows, :, self._write] = key_states[:, :, 0].to(keys.dtype)
        values[self._rows, :, self._write] = value_states[:, :, 0].to(values.dtype)
        return keys, values

    def load_prompt(self, slot: int, layer: int, key: torch.Tensor, value: torch.Tensor) -> None:
        """Put a prompt's keys/values ``[heads, length, dim]`` in the front cells of ``slot``."""
        self._ensure(layer, key[None], value[None])
        keys, values = self.keys[layer], self.values[layer]
        assert keys is not None and values is not None
        length = key.shape[1]
        keys[slot, :, :length] = key
        values[slot, :, :length] = value

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.cells

    def get_max_cache_shape(self, layer_idx: int = 0) -> int:
        return self.cells


@dataclass
class SlotRequest:
    """One page to generate: its prompt embeddings are made when it gets a slot."""

    key: int
    prompt_length: int
    budget: int
    """New tokens allowed (end-of-sequence included), as ``generate``'s ``max_new_tokens``."""
    exact: int = 0
    """Benchmarks: end exactly after this many tokens (0: wherever the model ends)."""
    page: Any = None
    """The caller's own record of the page (the engine's preprocessed page)."""


@dataclass
class SlotResult:
    """What one page produced: its generated ids (end-of-sequence included, if reached)."""

    ids: list[int]
    guard_fired: int
    steps: int
    seconds: float = 0.0
    """The page's share of the device: its time in a slot divided by the slots."""


class DecodeStep:
    """The decode forward of all slots on fixed input buffers, so that on CUDA it can run as
    one captured CUDA graph (a decode step is ~1,000 small kernels whose launches, not the GPU,
    set its time). Elsewhere, or when capture fails, the same buffers feed an eager forward.

    Args:
        model: the engine's model.
        cache: the slots' KV cache (its tensors must exist before capture: a prefill makes them).
        cache_kw: the forward's name for the cache (``cache`` or ``past_key_values``).
        use_graph: capture and replay a CUDA graph (only on a CUDA device).
    """

    def __init__(self, model: Any, cache: SlotCache, cache_kw: str, *, use_graph: bool) -> None:
        device = cache._like.device
        self.model = model
        self.cache = cache
        self.cache_kw = cache_kw
        self.use_graph = use_graph and device.type == "cuda"
        self.tokens = torch.zeros(cache.slots, 1, dtype=torch.long, device=device)
        self.positions = torch.zeros(cache.slots, 1, dtype=torch.long, device=device)
        self.mask = torch.zeros(cache.slots, 1, 1, cache.cells, dtype=torch.bool, device=device)
        self.graph: Any = None
        self.logits: torch.Tensor | None = None
        self.captured = False

    def _forward(self) -> torch.Tensor:
        out = self.model(
            input_ids=self.tokens,
            attention_mask=self.mask,
            position_ids=self.positions,
            use_cache=True,
            logits_to_keep=1,
            **{self.cache_kw: self.cache},
        )
        return out.logits[:, -1]

    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> Any:
        """Last-position logits ``[slots, vocab]`` for this step's inputs."""
        self.tokens.copy_(tokens[:, None])
        self.positions.copy_(positions[:, None])
        self.mask.copy_(mask[:, None, None, :])
        if not self.use_graph:
            return self._forward()
        if self.graph is None:
            self._capture()
        if self.graph is None:  # capture failed: eager from now on
            return self._forward()
        self.graph.replay()
        return self.logits

    def _capture(self) -> None:
        """Warm up on a side stream, then capture; a failure leaves the eager path in place.
        Repeating the step is harmless: it rewrites the same cells with the same keys."""
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self._forward()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.logits = self._forward()
            self.graph = graph
            self.captured = True
        except Exception as exc:  # an op the graph cannot hold: keep going eagerly
            log.warning("decode step not captured as a CUDA graph (%s); running it eagerly", exc)
            self.use_graph = False
            self.graph = None


@dataclass
class SlotWorkspace:
    """A slots' cache and its decode step, kept by the engine between runs of the same shape
    (a captured graph is only worth its capture if it is replayed many times)."""

    cache: SlotCache
    step: DecodeStep


#: ``prefill(requests) -> (input_ids, attention_mask, inputs_embeds)`` on the device, left padded.
PrefillInputs = Callable[[list[SlotRequest]], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class ContinuousBatcher:
    """Runs :class:`SlotRequest` s through ``slots`` decode slots until all have ended.

    Args:
        model: the engine's model (DeepSeek-OCR-2, or our v1 / DeepOCR models).
        prefill_inputs: makes the left-padded prompt inputs of a group of requests.
        slots: decode slots (pages in flight).
        eos_id: end-of-sequence id.
        pad_id: the token fed to empty slots.
        ngram_size: the repetition guard's n-gram.
        window: the repetition guard's window.
        whitelist: token ids the guard never bans.
        min_new_tokens: end-of-sequence is banned before this many new tokens (benchmarks).
        sync_every: decode steps between the host's reads of the slots' state.
        on_step: called after every decode step (tests watch refills with it).
        cells: KV cells per slot (default: the longest request's prompt + budget).
        cuda_graphs: run the decode step as a captured CUDA graph on a CUDA device.
        workspace: a workspace of an earlier run to reuse when its shape fits.
        max_prefill: the most pages one prefill forward takes (free slots fill in groups).
        min_refill: while pages are in flight, free slots wait until at least this many are
            free before they refill: the vision tower costs about twice as much per page for
            one page as for a full micro-batch (H200, OCR-2: 81 vs 38 ms), and a refill stalls
            every slot's decoding while it runs.
    """

    def __init__(
        self,
        model: Any,
        prefill_inputs: PrefillInputs,
        *,
        slots: int,
        eos_id: int,
        pad_id: int,
        ngram_size: int,
        window: int,
        whitelist: Sequence[int] = (),
        min_new_tokens: int | None = None,
        sync_every: int = 8,
        on_step: Callable[[ContinuousBatcher], None] | None = None,
        cells: int | None = None,
        cuda_graphs: bool = True,
        workspace: SlotWorkspace | None = None,
        max_prefill: int = 32,
        min_refill: int = 1,
    ) -> None:
        self.model = model
        self.prefill_inputs = prefill_inputs
        self.slots = slots
        self.eos_id = eos_id
        self.pad_id = pad_id
        self.guard = NoRepeatNGramWindowProcessor(
            ngram_size, window, prompt_length=0, whitelist=whitelist
        )
        self.window = window
        self.min_new_tokens = min_new_tokens or 0
        self.sync_every = max(1, sync_every)
        self.on_step = on_step
        self.cells = cells
        self.cuda_graphs = cuda_graphs
        self.workspace = workspace
        self.max_prefill = max(1, max_prefill)
        self.min_refill = max(1, min(min_refill, slots))
        self._owner: list[SlotRequest | None] = []
        self._rejected: SlotRequest | None = None
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.refills = 0
        """Pages that took a slot another page had left during the run."""
        self.decode_steps = 0
        self.graph_replays = 0
        self.prefill_s = 0.0
        """Wall seconds in prefills (the prompt inputs, vision included, and the forward)."""
        self.vision_s = 0.0
        """The part of ``prefill_s`` spent making the prompt inputs (the vision tower)."""
        self.active_history: list[int] = []
        """Slots holding an unfinished page at each decode step (occupancy)."""

    # -- state ---------------------------------------------------------------------------------

    def _text_layers(self) -> int:
        config = self.model.config
        text = getattr(config, "text_config", None) or config
        return int(text.num_hidden_layers)

    def in_flight(self) -> list[SlotRequest]:
        """The requests holding a slot and not yet handed out (after a failure: to redo)."""
        held = [req for req in self._owner if req is not None]
        return held if self._rejected is None else [*held, self._rejected]

    def _workspace_for(self, cells: int) -> SlotWorkspace:
        ws = self.workspace
        if ws is None or ws.cache.slots != self.slots or ws.cache.cells < cells:
            like = torch.empty(0, device=self.model.device)
            cache = SlotCache(self._text_layers(), self.slots, cells, like)
            step = DecodeStep(self.model, cache, self._cache_kw, use_graph=self.cuda_graphs)
            ws = SlotWorkspace(cache, step)
            self.workspace = ws
        return ws

    def stream(
        self, feed: Iterator[SlotRequest], *, cells: int = 0
    ) -> Iterator[tuple[int, SlotResult]]:
        """Pull requests from ``feed`` as slots free up and hand out ``(key, result)`` as pages
        end (not in feed order). ``cells``: at least this many KV cells per slot (the engine
        gives the mode's largest page; a request that needs more is an error here)."""
        device = self.model.device
        ws = self._workspace_for(max(cells, self.cells or 0))
        cache, cells = ws.cache, ws.cache.cells
        slots = self.slots
        fill = -(torch.arange(self.window, device=device) + 1)  # distinct: never an n-gram
        state = _Slots(slots, cells, self.window, device, fill)
        owner: list[SlotRequest | None] = [None] * slots
        self._owner = owner
        started: set[int] = set()
        since = [0.0] * slots
        exhausted = False
        with torch.inference_mode():
            while True:
                free = [s for s in range(slots) if owner[s] is None]
                if len(free) < self.min_refill:
                    free = []  # too few to refill yet: the pages in flight decode on
                while free and not exhausted:
                    group: list[SlotRequest] = []
                    while len(group) < min(len(free), self.max_prefill):
                        req = next(feed, None)
                        if req is None:
                            exhausted = True
                            break
                        if req.prompt_length + req.budget > cells:
                            self._rejected = req  # in_flight() reports it: not lost
                            raise ValueError(
                                f"request {req.key} needs {req.prompt_length + req.budget} KV "
                                f"cells, the slots have {cells}"
                            )
                        group.append(req)
                    if not group:
                        break
                    slots_now, free = free[: len(group)], free[len(group) :]
                    now = time.perf_counter()
                    for slot, req in zip(slots_now, group, strict=True):
                        self.refills += slot in started
                        started.add(slot)
                        owner[slot] = req
                        since[slot] = now
                    self._prefill(group, slots_now, cache, state)
                if all(o is None for o in owner):
                    break
                for _ in range(self.sync_every):
                    self.active_history.append(sum(o is not None for o in owner))
                    self._step(ws.step, state)
                # The host's one read per sync_every steps: which slots have ended.
                done = state.done.tolist()
                for slot, held in enumerate(owner):
                    if held is not None and done[slot]:
                        result = state.take(slot)
                        result.seconds = (time.perf_counter() - since[slot]) / slots
                        owner[slot] = None
                        yield held.key, result

    def _prefill(
        self, group: list[SlotRequest], slots: list[int], cache: SlotCache, state: _Slots
    ) -> None:
        """Prefill ``group`` together (left padded), copy each prompt's KV into its slot and
        pick its first token from the prefill's logits."""
        started = time.perf_counter()
        input_ids, attention, embeds = self.prefill_inputs(group)
        self.vision_s += time.perf_counter() - started
        positions = (attention.long().cumsum(-1) - 1).clamp(min=0)
        past = DynamicCache()
        out = self.model(
            input_ids=None,
            inputs_embeds=embeds,
            attention_mask=attention,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_kw: past},
        )
        del embeds
        length = input_ids.shape[1]
        layers: list[Any] = list(past.layers)
        for layer, cached in enumerate(layers):
            for row, (slot, req) in enumerate(zip(slots, group, strict=True)):
                start = length - req.prompt_length
                cache.load_prompt(
                    slot, layer, cached.keys[row, :, start:], cached.values[row, :, start:]
                )
        for slot, req in zip(slots, group, strict=True):
            state.reset(slot, req)
        logits = out.logits[:, -1].float()
        del out, past
        self._choose(logits, torch.tensor(slots, device=logits.device), state)
        if logits.device.type == "cuda":
            torch.cuda.synchronize(logits.device)  # once per prefill: makes its time real
        self.prefill_s += time.perf_counter() - started

    def _choose(self, logits: torch.Tensor, rows: torch.Tensor, state: _Slots) -> None:
        """Guard, greedy pick and bookkeeping for the slots ``rows`` (logits in that order)."""
        recent = state.recent[rows]
        banned, fired = self.guard._banned(recent, logits.shape[-1])  # type: ignore[arg-type]
        logits = logits.masked_fill(banned, float("-inf"))
        if self.min_new_tokens:
            early = state.generated[rows] < self.min_new_tokens
            eos = logits[:, self.eos_id]
            logits[:, self.eos_id] = torch.where(early, float("-inf"), eos)
        if state.any_exact:
            logits = force_lengths(logits, state.generated[rows], state.exact[rows], self.eos_id)
        token = logits.argmax(dim=-1)
        state.push(rows, token, fired, self.eos_id)

    def _step(self, step: DecodeStep, state: _Slots) -> None:
        """One decode step for every slot: each feeds its last token at its own position."""
        live = ~state.done
        cell = state.filled  # the new token's cell = its position
        step.cache.set_write_cells(cell)
        visible = state.cell_index[None, :] <= cell[:, None]  # [slots, cells]
        logits = step(torch.where(live, state.last, self.pad_id), cell, visible)
        self.graph_replays += step.graph is not None
        state.filled = torch.where(live, cell + 1, cell)
        self._choose(logits.float(), state.all_rows, state)
        self.decode_steps += 1
        if self.on_step is not None:
            self.on_step(self)


class _Slots:
    """Per-slot device state: cells filled, last token, generated ids, guard window, done."""

    def __init__(
        self, slots: int, cells: int, window: int, device: torch.device, fill: torch.Tensor
    ) -> None:
        self.device = device
        self.fill = fill
        self.all_rows = torch.arange(slots, device=device)
        self.cell_index = torch.arange(cells, device=device)
        self.filled = torch.zeros(slots, dtype=torch.long, device=device)
        self.last = torch.zeros(slots, dtype=torch.long, device=device)
        self.budget = torch.zeros(slots, dtype=torch.long, device=device)
        self.exact = torch.zeros(slots, dtype=torch.long, device=device)
        self.any_exact = False
        self.generated = torch.zeros(slots, dtype=torch.long, device=device)
        self.fired = torch.zeros(slots, dtype=torch.long, device=device)
        self.done = torch.ones(slots, dtype=torch.bool, device=device)
        self.recent = fill.expand(slots, window).clone()
        self.out = torch.zeros(slots, max(1, cells), dtype=torch.long, device=device)

    def reset(self, slot: int, req: SlotRequest) -> None:
        self.filled[slot] = req.prompt_length
        self.budget[slot] = req.budget
        self.exact[slot] = req.exact
        self.any_exact = self.any_exact or req.exact > 0
        self.generated[slot] = 0
        self.fired[slot] = 0
        self.done[slot] = False
        self.recent[slot] = self.fill

    def push(
        self, rows: torch.Tensor, token: torch.Tensor, fired: torch.Tensor | None, eos: int
    ) -> None:
        """Record the tokens chosen for ``rows``; rows already done keep their state."""
        live = ~self.done[rows]
        count = self.generated[rows]
        self.out[rows, count.clamp(max=self.out.shape[1] - 1)] = torch.where(
            live, token, self.out[rows, count.clamp(max=self.out.shape[1] - 1)]
        )
        self.last[rows] = torch.where(live, token, self.last[rows])
        if fired is not None:
            self.fired[rows] += (fired & live).long()
        shifted = torch.cat([self.recent[rows, 1:], token[:, None]], dim=1)
        self.recent[rows] = torch.where(live[:, None], shifted, self.recent[rows])
        count = count + live.long()
        self.generated[rows] = count
        ended = (token == eos) | (count >= self.budget[rows])
        self.done[rows] = self.done[rows] | (live & ended)

    def take(self, slot: int) -> SlotResult:
        n = int(self.generated[slot])
        ids = self.out[slot, :n].tolist()
        return SlotResult(ids, int(self.fired[slot]), n)
