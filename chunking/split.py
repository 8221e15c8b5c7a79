"""Splitting one oversized paragraph, list or code block at the best boundaries it has."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["split_text", "tail_sentences", "tail_start"]

# A sentence starts where the gap after a stop ends (only match ends are used). Matching the
# stop rather than looking behind for it lets the regex engine skip to candidate stops, ~2x
# faster, with the same ends: after its stop a match holds only closing quotes and whitespace,
# so it never swallows the stop of the next gap.
_SENTENCE_GAP_RE = re.compile(r"[.!?;][\"')\]”’]*\s+")


def _sentence_starts(text: str) -> list[int]:
    """Offsets where the sentences of ``text`` start (the first is 0)."""
    return [0, *(m.end() for m in _SENTENCE_GAP_RE.finditer(text) if m.end() < len(text))]


def _segments(text: str, by_line: bool) -> list[str]:
    if by_line:
        return [ln for ln in text.split("\n") if ln.strip()]
    starts = _sentence_starts(text)
    out = [text[a:b].strip() for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    return [s for s in out if s]


def _words(segment: str, max_tokens: int, count: Callable[[str], int]) -> list[str]:
    """A segment over the budget cut between words (a single huge word stays whole)."""
    out: list[str] = []
    group: list[str] = []
    used = 0
    for word in segment.split():
        cost = count(word) + 1
        if group and used + cost > max_tokens:
            out.append(" ".join(group))
            group, used = [], 0
        group.append(word)
        used += cost
    if group:
        out.append(" ".join(group))
    return out


def split_text(
    text: str,
    max_tokens: int,
    count: Callable[[str], int],
    *,
    by_line: bool = False,
    total: int | None = None,
) -> list[tuple[str, int]]:
    """Pieces of at most ``max_tokens`` (where a segment allows), cut between sentences (or
    lines for lists and code), of balanced size so that the last piece is not a scrap; each
    with its token count (the sum of its segments')."""
    if total is None and len(text) <= 5 * max_tokens:
        # Likely to fit (prose runs about 4.5 characters a token): one count settles it.
        # Longer text is counted by sentence below, which for an additive counter sums to
        # the same total, so text that does not fit is not counted twice.
        total = count(text)
    if total is not None and total <= max_tokens:
        return [(text, total)]
    segments: list[tuple[str, int]] = []
    for seg in _segments(text, by_line):
        cost = count(seg)
        if cost > max_tokens:
            segments.extend((w, count(w)) for w in _words(seg, max_tokens, count))
        else:
            segments.append((seg, cost))
    whole = sum(c for _, c in segments)
    if whole <= max_tokens:
        return [(text, whole)]
    target = whole / max(-(-whole // max_tokens), 1)
    joiner = "\n" if by_line else " "
    pieces: list[tuple[str, int]] = []
    group: list[str] = []
    used = 0
    for seg, cost in segments:
        # Cut when the budget is full, or once past the balanced target.
        if group and (used + cost > max_tokens or used + cost / 2 > target):
            pieces.append((joiner.join(group), used))
            group, used = [], 0
        group.append(seg)
        used += cost
    if group:
        pieces.append((joiner.join(group), used))
    return pieces


def tail_start(text: str, budget: int, count: Callable[[str], int], *, at_least_one: bool) -> int:
    """Offset in ``text`` where its last whole sentences fitting ``budget`` tokens begin
    (``len(text)`` when none fits, unless ``at_least_one`` takes the last sentence anyway)."""
    starts = _sentence_starts(text)
    cut = len(text)
    for start in reversed(starts):
        if count(text[start:]) > budget:
            if at_least_one and cut == len(text):
                return start
            break
        cut = start
    return cut


def tail_sentences(text: str, budget: int, count: Callable[[str], int]) -> str:
    """The last whole sentences of ``text`` that fit ``budget`` tokens (for overlap)."""
    return text[tail_start(text, budget, count, at_least_one=False) :].strip()
