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
    started in ``input_ids`` (the same for every row with left padding)."""

    def __init__(
        self,
        ngram_size: int,
        window: int,
        *,
        prompt_length: int,
        whitelist: Iterable[int] = (),
    ) -> None:
        if ngram_size < 2 or window < ngram_size:
            raise EngineError("repetition guard needs 2 <= ngram_size <= window")
        self.ngram_size = ngram_size
        self.window = window
        self.prompt_length = prompt_length
        self.whitelist = sorted(set(whitelist))
        self.fired = 0
        """How many (row, step) pairs had at least one token banned: for metrics and tests."""

    def banned_mask(self, input_ids: torch.LongTensor, vocab_size: int) -> torch.Tensor:
        """Boolean ``(batch, vocab)`` mask of the tokens to ban at this step."""
        n = self.ngram_size
        generated = input_ids[:, self.prompt_length :]
        recent = generated[:, -self.window :]
        mask = torch.zeros(
            input_ids.shape[0], vocab_size, dtype=torch.bool, device=input_ids.device
        )
        if recent.shape[1] < n:
            return mask
        # Every n-gram in the window whose first n-1 tokens equal the current suffix would be
        # completed again by its last token: ban that token.
        grams = recent.unfold(1, n, 1)  # (batch, grams, n)
        suffix = recent[:, -(n - 1) :].unsqueeze(1)
        hits = (grams[:, :, : n - 1] == suffix).all(dim=-1)  # (batch, grams)
        rows, cols = hits.nonzero(as_tuple=True)
        mask[rows, grams[rows, cols, n - 1]] = True
        if self.whitelist:
            mask[:, self.whitelist] = False
        return mask

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = self.banned_mask(input_ids, scores.shape[-1])
        self.fired += int(mask.any(dim=-1).sum())
        return scores.masked_fill(mask, float("-inf"))  # type: ignore[return-value]
