"""Split plain Markdown (Free OCR output, or text outside grounding tags) into typed segments.

The segments partition the non-blank text exactly: each is a ``(start, end)`` span of the input,
so nothing is lost and every block can point back at the characters it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .document import BlockKind

__all__ = ["MarkdownSegment", "split_markdown"]

_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+\S")
_LIST_RE = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,3}[.)]|[a-zA-Z][.)])[ \t]+\S")
_PIPE_ROW_RE = re.compile(r"^[ \t]*\|.*\|[ \t]*$")
_IMAGE_RE = re.compile(r"^!\[[^\]]*\]\([^)]*\)\s*$")


@dataclass(frozen=True)
class MarkdownSegment:
    """One block-level piece of Markdown: its kind, heading level, and span in the input."""

    kind: BlockKind
    start: int
    end: int
    level: int | None = None


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line without its newline."""
    spans = []
    pos = 0
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        spans.append((pos, pos + len(stripped)))
        pos += len(line)
    return spans


def _fence_end(lines: list[str], i: int, opener: str, closer: str) -> int:
    """Index of the line closing a multi-line construct opened on line ``i`` (last line if none)."""
    first = lines[i].strip()
    if first.endswith(closer) and len(first) > len(opener) and first != opener:
        return i
    for j in range(i + 1, len(lines)):
        if closer in lines[j]:
            return j
    return len(lines) - 1


def split_markdown(text: str) -> list[MarkdownSegment]:
    """Block-level segments of ``text``: headings, tables (HTML or pipe), display equations,
    code fences, images, lists and paragraphs (runs of non-blank lines)."""
    spans = _lines(text)
    lines = [text[s:e] for s, e in spans]
    segments: list[MarkdownSegment] = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        kind = BlockKind.TEXT
        level: int | None = None
        end = i
        low = stripped.lower()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            kind = BlockKind.CODE
            end = _fence_end(lines, i, stripped[:3], stripped[:3])
        elif stripped.startswith("\\["):
            kind = BlockKind.EQUATION
            end = _fence_end(lines, i, "\\[", "\\]")
        elif stripped.startswith("$$"):
            kind = BlockKind.EQUATION
            end = _fence_end(lines, i, "$$", "$$")
        elif low.startswith("<table"):
            kind = BlockKind.TABLE
            end = _fence_end(lines, i, "<table", "</table>")
        elif _HEADING_RE.match(stripped):
            kind = BlockKind.HEADING
            level = len(stripped) - len(stripped.lstrip("#"))
        elif _IMAGE_RE.match(stripped):
            kind = BlockKind.FIGURE
        elif _PIPE_ROW_RE.match(line):
            kind = BlockKind.TABLE
            while end + 1 < n and _PIPE_ROW_RE.match(lines[end + 1]):
                end += 1
        else:
            is_list = bool(_LIST_RE.match(line))
            kind = BlockKind.LIST_ITEM if is_list else BlockKind.TEXT
            # A paragraph runs to the next blank line or the start of another construct.
            while end + 1 < n:
                nxt = lines[end + 1].strip()
                if (
                    not nxt
                    or _HEADING_RE.match(nxt)
                    or nxt.startswith(("```", "~~~", "\\[", "$$"))
                    or nxt.lower().startswith("<table")
                    or _PIPE_ROW_RE.match(lines[end + 1])
                ):
                    break
                # Indented continuation lines belong to the list; anything else ends it.
                if (
                    kind is BlockKind.LIST_ITEM
                    and not _LIST_RE.match(lines[end + 1])
                    and not lines[end + 1][:1].isspace()
                ):
                    break
                end += 1
        start_off = spans[i][0] + (len(line) - len(line.lstrip()))
        end_line = lines[end]
        end_off = spans[end][0] + len(end_line.rstrip())
        segments.append(MarkdownSegment(kind, start_off, max(end_off, start_off), level))
        i = end + 1
    return segments
