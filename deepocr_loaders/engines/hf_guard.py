"""Repetition guard for the DeepSeek-OCR family on transformers' ``generate``.

The reference vLLM setup bans, at each step, every token that would complete an n-gram
(n = 30) already present in the last 90 generated tokens, except the table-cell tags
``<td>``/``</td>`` that legitimately repeat in long tables. Only generated tokens count: the
prompt holds hundreds of identical ``<image>`` tokens (and left padding) that must not ban
anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import torch
from transformers import LogitsProcessor

from ..errors import EngineError

__all__ = ["GuardSettings", "NoRepeatNGramWindowProcessor", "whitelist_ids"]

#: Tokens that legitimately repeat (table cells); their ids are exempt from the ban.
WHITELIST_TOKENS = ("<td>", "</td>")


@dataclass(frozen=True)
class GuardSettings:
    """Generation limits for one attempt at a page."""

    ngram_size: int = 30
    window: int = 90
    max_new_tokens: int = 8192
    repetition_penalty: float | None = None

    def stricter(self) -> GuardSettings:
        """Settings for the one retry of a page that never reached end-of-sequence: a shorter
        n-gram over a longer window, plus a mild repetition penalty."""
        return replace(
            self,
            ngram_size=max(4, self.ngram_size * 2 // 3),
            window=self.window * 2,
            repetition_penalty=max(self.repetition_penalty or 1.0, 1.05),
        )


def whitelist_ids(tokenizer: object, tokens: Iterable[str] = WHITELIST_TOKENS) -> set[int]:
    """Ids of ``tokens`` in ``tokenizer``, skipping any it does not have as a single token."""
    ids: set[int] = set()
    unk = getattr(tokenizer, "unk_token_id", None)
    for tok in tokens:
        tid = tokenizer.convert_tokens_to_ids(tok)  # type: ignore[attr-defined]
        if isinstance(tid, int) and tid != unk:
            ids.add(tid)
    return ids


class NoRepeatNGramWindowProcessor(LogitsProcessor):
    """Bans tokens that would repeat an ``ngram_size``-gram seen in the last ``window``
    generated tokens, except ``whitelist`` ids. ``prompt_length`` marks where generation
    started in ``input_ids`` (the same for every row with left padding).

    A step never waits for the device: the mask is built with tensor ops only and the count
    of steps that banned something stays a device tensor, one entry per batch row, until
    :attr:`fired` or :meth:`fired_per_row` reads it.

    ``stop_token_ids`` (optional) only affects the counting: a row stops counting once one of
    these ids is among its generated tokens. ``generate`` keeps calling the processor for
    finished rows (their logits are discarded, the row is padded), and a run of padding soon
    repeats an n-gram; without stop ids those steps count too, as they always did."""

    def __init__(
        self,
        ngram_size: int,
        window: int,
        *,
        prompt_length: int,
        whitelist: Iterable[int] = (),
        stop_token_ids: Iterable[int] = (),
    ) -> None:
        if ngram_size < 2 or window < ngram_size:
            raise EngineError("repetition guard needs 2 <= ngram_size <= window")
        self.ngram_size = ngram_size
        self.window = window
        self.prompt_length = prompt_length
        self.whitelist = sorted(set(whitelist))
        self.stop_token_ids = sorted(set(stop_token_ids))
        self._id_tensors: dict[tuple[str, torch.device], torch.Tensor] = {}
        self._counts: torch.Tensor | None = None
        """Per row of the current batch: steps with at least one token banned (device)."""
        self._flushed = 0
        """Steps counted for earlier batch shapes (only when one processor sees several)."""

    def _ids_on(self, name: str, ids: list[int], device: torch.device) -> torch.Tensor:
        """``ids`` as a long tensor on ``device``, built once per device."""
        key = (name, device)
        cached = self._id_tensors.get(key)
        if cached is None:
            cached = torch.tensor(ids, dtype=torch.long, device=device)
            self._id_tensors[key] = cached
        return cached

    def banned_mask(self, input_ids: torch.LongTensor, vocab_size: int) -> torch.Tensor:
        """Boolean ``(batch, vocab)`` mask of the tokens to ban at this step."""
        return self._banned(input_ids, vocab_size)[0]

    def _banned(
        self, input_ids: torch.LongTensor, vocab_size: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The mask, and per row whether it bans anything (``None``: nothing can be banned).
        Only tensor ops on the device: no ``nonzero``, no boolean indexing, no host reads."""
        n = self.ngram_size
        generated = input_ids[:, self.prompt_length :]
        recent = generated[:, -self.window :]
        batch, device = input_ids.shape[0], input_ids.device
        if recent.shape[1] < n:  # shapes are known on the host: no sync
            return torch.zeros(batch, vocab_size, dtype=torch.bool, device=device), None
        # Every n-gram in the window whose first n-1 tokens equal the current suffix would be
        # completed again by its last token: ban that token, unless it is whitelisted.
        grams = recent.unfold(1, n, 1)  # (batch, grams, n)
        suffix = recent[:, -(n - 1) :].unsqueeze(1)
        hits = (grams[:, :, : n - 1] == suffix).all(dim=-1)  # (batch, grams)
        last = grams[:, :, n - 1].long()
        if self.whitelist:
            allowed = self._ids_on("whitelist", self.whitelist, device)
            hits = hits & ~(last.unsqueeze(-1) == allowed).any(dim=-1)
        # Hits mark their last token, misses a spare column past the vocabulary that is then
        # dropped. Every write stores the same True, so duplicate indices are harmless (unlike
        # scatter_ of differing values, whose winner is unspecified).
        spare = torch.zeros(batch, vocab_size + 1, dtype=torch.bool, device=device)
        spare.scatter_(1, torch.where(hits, last, vocab_size), True)
        return spare[:, :vocab_size], hits.any(dim=-1)

    def _count(self, input_ids: torch.Tensor, fired_rows: torch.Tensor | None) -> None:
        """Add this step's banned-anything flags to the per-row counts, on the device."""
        if fired_rows is None:
            step = torch.zeros(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
        else:
            step = fired_rows.to(torch.long)
        if self.stop_token_ids:
            generated = input_ids[:, self.prompt_length :]
            stops = self._ids_on("stop", self.stop_token_ids, input_ids.device)
            finished = (generated.unsqueeze(-1) == stops).any(dim=-1).any(dim=-1)
            step = step * (~finished).to(torch.long)
        counts = self._counts
        if counts is None or counts.shape != step.shape or counts.device != step.device:
            if counts is not None:  # another batch shape: keep the total, restart the rows
                self._flushed += int(counts.sum())
            self._counts = step
        else:  # out of place: also fine for a tensor made under torch.inference_mode
            self._counts = counts + step

    @property
    def fired(self) -> int:
        """How many (row, step) pairs had at least one token banned: for metrics and tests.
        Reading it waits for the device; read it once, after ``generate``."""
        counts = self._counts
        return self._flushed + (0 if counts is None else int(counts.sum()))

    def fired_per_row(self) -> list[int]:
        """:attr:`fired` for each row of the (latest) batch, in batch order; ``[]`` before the
        first step. Waits for the device, like :attr:`fired`."""
        counts = self._counts
        return [] if counts is None else [int(c) for c in counts.tolist()]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask, fired_rows = self._banned(input_ids, scores.shape[-1])
        self._count(input_ids, fired_rows)
        # One pass, same values as masked_fill (which copies, then fills); keeps the dtype.
        return torch.where(mask, float("-inf"), scores)  # type: ignore[return-value]
