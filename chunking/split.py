"""Splitting one oversized paragraph, list or code block at the best boundaries it has."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["split_spans", "split_text", "tail_sentences", "tail_start"]

# A sentence starts where the gap after a stop ends (only match ends are used). Matching the
# stop rather than looking behind for it lets the regex engine skip to candidate stops, ~2x
# faster, with the same ends: after its stop a match holds only closing quotes and whitespace,
# so it never swallows the stop of the next gap. Latin stops need whitespace after them
# ("3.5", "e.g.x" go on); the stops of scripts written without spaces between sentences (CJK
# 。！？, the danda, the Arabic question mark...) end a sentence with or without it.
_SENTENCE_GAP_RE = re.compile(
    r"[.!?;][\"')\]”’]*\s+|[。．｡！？；।॥؟۔։።။][\"')\]”’」』）】〕〉》〗〙〛］｝]*\s*"
)
_WORD_RE = re.compile(r"\S+")

Span = tuple[str, int, int, int]
"""A piece: its text, its token count, and where it starts and ends in the split text."""


def _sentence_starts(text: str) -> list[int]:
    """Offsets where the sentences of ``text`` start (the first is 0)."""
    return [0, *(m.end() for m in _SENTENCE_GAP_RE.finditer(text) if m.end() < len(text))]


def _segments(text: str, by_line: bool) -> list[tuple[int, int]]:
    """Where the sentences (stripped) or non-blank lines (as they are) of ``text`` lie."""
    out: list[tuple[int, int]] = []
    if by_line:
        pos = 0
        for line in text.split("\n"):
            if line.strip():
                out.append((pos, pos + len(line)))
            pos += len(line) + 1
        return out
    starts = _sentence_starts(text)
    for a, b in zip(starts, [*starts[1:], len(text)], strict=True):
        seg = text[a:b]
        right = len(seg.rstrip())
        if right:
            out.append((a + right - len(seg[:right].lstrip()), a + right))
    return out


def _hard_cut(
    text: str, start: int, end: int, max_tokens: int, count: Callable[[str], int]
) -> list[Span]:
    """``text[start:end]``, which has no sentence or word boundary, cut into the longest runs
    of at most ``max_tokens`` (at least one character each: a character that alone is over the
    budget is one indivisible token). The longest run that fits ends where a token ends."""
    out: list[Span] = []
    pos = start
    guess = max(4 * max_tokens, 1)  # how many characters fit: then, what fitted last time

    def fits(n: int) -> bool:
        return count(text[pos : pos + n]) <= max_tokens

    while pos < end:
        rest = end - pos
        # lo: a length that fits (or 1, the least a cut takes); hi: one that does not (or 0
        # when all the rest fits). Gallop from the guess in growing steps, then bisect.
        step = max(guess // 32, 1)
        lo, hi = 0, min(guess, rest)
        if fits(hi):
            lo, hi = hi, 0
            while lo < rest:
                n = min(lo + step, rest)
                if not fits(n):
                    hi = n
                    break
                lo, step = n, step * 2
        else:
            while hi > 1:
                n = max(hi - step, 1)
                if fits(n):
                    lo = n
                    break
                hi, step = n, step * 2
            lo = max(lo, 1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid
        piece = text[pos : pos + lo]
        out.append((piece, count(piece), pos, pos + lo))
        pos += lo
        guess = lo
    return out


def _words(
    text: str, start: int, end: int, max_tokens: int, count: Callable[[str], int]
) -> list[Span]:
    """A segment over the budget cut between words, and a word over the budget at the last
    token boundary that fits."""
    out: list[Span] = []
    group: list[str] = []
    first = last = used = 0
    for m in _WORD_RE.finditer(text, start, end):
        word = m.group()
        cost = count(word) + 1
        if group and used + cost > max_tokens:
            joined = " ".join(group)
            out.append((joined, count(joined), first, last))
            group, used = [], 0
        if cost - 1 > max_tokens:
            out.extend(_hard_cut(text, m.start(), m.end(), max_tokens, count))
            continue
        if not group:
            first = m.start()
        group.append(word)
        last = m.end()
        used += cost
    if group:
        joined = " ".join(group)
        out.append((joined, count(joined), first, last))
    return out


def split_spans(
    text: str,
    max_tokens: int,
    count: Callable[[str], int],
    *,
    by_line: bool = False,
    total: int | None = None,
) -> list[Span]:
    """Pieces of at most ``max_tokens``, cut between sentences (or lines for lists and code),
    else between words, else at token boundaries; of balanced size so that the last piece is
    not a scrap; each with its token count (the sum of its segments') and where it lies in
    ``text`` (from its first character to its last: what lies between its segments may be
    rewritten, a run of spaces as one)."""
    if total is None and len(text) <= 5 * max_tokens:
        # Likely to fit (prose runs about 4.5 characters a token): one count settles it.
        # Longer text is counted by sentence below, which for an additive counter sums to
        # the same total, so text that does not fit is not counted twice.
        total = count(text)
    if total is not None and total <= max_tokens:
        return [(text, total, 0, len(text))]
    segments: list[Span] = []
    for a, b in _segments(text, by_line):
        seg = text[a:b]
        cost = count(seg)
        if cost > max_tokens:
            segments.extend(_words(text, a, b, max_tokens, count))
        else:
            segments.append((seg, cost, a, b))
    whole = sum(c for _, c, _, _ in segments)
    if whole <= max_tokens:
        return [(text, whole, 0, len(text))]
    target = whole / max(-(-whole // max_tokens), 1)
    joiner = "\n" if by_line else " "
    pieces: list[Span] = []
    group: list[str] = []
    used = first = last = 0
    for seg, cost, a, b in segments:
        # Cut when the budget is full, or once past the balanced target.
        if group and (used + cost > max_tokens or used + cost / 2 > target):
            pieces.append(("".join(group), used, first, last))
            group, used = [], 0
        if not group:
            first = a
        elif a > last:  # the source had a gap here (a hard cut has none)
            group.append(joiner)
        group.append(seg)
        last = b
        used += cost
    if group:
        pieces.append(("".join(group), used, first, last))
    return pieces


def split_text(
    text: str,
    max_tokens: int,
    count: Callable[[str], int],
    *,
    by_line: bool = False,
    total: int | None = None,
) -> list[tuple[str, int]]:
    """:func:`split_spans` without the offsets."""
    return [
        (t, n) for t, n, _, _ in split_spans(text, max_tokens, count, by_line=by_line, total=total)
    ]


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
