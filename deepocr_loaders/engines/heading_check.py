"""Is a region the layout model calls a heading really one? Fonts and numbering decide.

PyMuPDF's layout model labels regions from how they look on a small render, so a line of a
code listing set apart from the text (``\\documentclass{mnras}``), a bold term opening a
numbered list item (``3. Separator``) or a sentence set off by white space can come out as a
``section-header``. Such a "heading" then names a section of the chunks that follow it. Before
a heading enters the document it is checked against what the PDF says about it:

* **code**: set in a monospaced font (by the font's flags or its name: Courier, Inconsolata,
  ``cmtt``, ``t1xtt``...), or a line that reads as code (a TeX command or comment, a C
  include): it becomes a code block;
* **font**: a heading is set larger than the body text, or bold (down to 85% of the body
  size: journals set section heads in small bold type), or italic or in capitals at about the
  body size; a region in the plain body font is text;
* **numbering**: a heading numbered ``a.b.c`` must continue the document's numbering (the
  next number at some depth, the first child of the last heading, or a restart at 1); one
  that breaks it (``3.`` inside section 1.2, ``11.`` after 2.1) is a numbered list item,
  unless its font is larger than the body's;
* the PDF's outline (bookmarks) overrides both: a heading it lists is kept; and where the
  outline numbers its entries to some depth, a numbered heading of that depth that it does
  not list, set no larger than the body text, is a numbered list item (``3. Separator``
  after section 2.1, where ``3`` would continue the chapters).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..document import BlockKind

__all__ = [
    "FontStats",
    "HeadingVerdict",
    "check_heading",
    "font_stats",
    "numbering_fits",
    "section_number",
]

_FLAG_ITALIC = 2
_FLAG_MONO = 8
_FLAG_BOLD = 16
_MONO_FONT_RE = re.compile(r"(?i)mono|courier|consol|menlo|typewriter|xtt|tt\d|fixed")
_BOLD_FONT_RE = re.compile(r"(?i)bold|black|heavy|demi|semib|cmbx|cmb\d|[-_]bd\b")
_ITALIC_FONT_RE = re.compile(r"(?i)italic|oblique|cmti|cmsl")
# A code line: a TeX command or comment, a C preprocessor line, a shell or REPL prompt, maybe
# after a listing's line number ("80 \def\ASYprefix{}").
_CODE_LINE_RE = re.compile(
    r"^(?:\d{1,5}\s+)?(?:\\[A-Za-z@]+|%|#(?:include|define|if|ifdef|ifndef)\b|\$ |>>> |// )"
)
_NUMBER_RE = re.compile(r"^(\d{1,3}(?:\.\d{1,3})*)\.?\)?\s+\S")

#: A heading this much larger than the body text is a heading whatever else it looks like.
LARGER = 1.08
#: Bold makes a heading at no less than this share of the body size (journal classes set
#: section heads in small bold type)...
BOLD_MIN = 0.85
#: ...italic or capitals at no less than this share...
STYLED_MIN = 0.95
#: ...and a number that continues the document's numbering at no less than this share.
NUMBERED_MIN = 0.85
_STYLE_SHARE = 0.6
_MONO_SHARE = 0.5


@dataclass(frozen=True)
class FontStats:
    """The fonts of a region's text: largest size, and the shares of its (non-space)
    characters that are bold, italic and monospaced."""

    size: float = 0.0
    chars: int = 0
    bold: float = 0.0
    italic: float = 0.0
    mono: float = 0.0


def font_stats(spans: Iterable[Mapping[str, Any]]) -> FontStats:
    """Font statistics of PyMuPDF text spans (dicts with ``text``, ``size``, ``flags``,
    ``font``).

    Args:
        spans: the spans of a region's lines.
    """
    size = 0.0
    chars = bold = italic = mono = 0
    for span in spans:
        n = len("".join(str(span.get("text", "")).split()))
        if not n:
            continue
        flags = int(span.get("flags", 0))
        font = str(span.get("font", ""))
        size = max(size, float(span.get("size", 0.0)))
        chars += n
        if flags & _FLAG_BOLD or _BOLD_FONT_RE.search(font):
            bold += n
        if flags & _FLAG_ITALIC or _ITALIC_FONT_RE.search(font):
            italic += n
        if flags & _FLAG_MONO or _MONO_FONT_RE.search(font):
            mono += n
    if not chars:
        return FontStats(size)
    return FontStats(size, chars, bold / chars, italic / chars, mono / chars)


def section_number(text: str) -> tuple[int, ...] | None:
    """The ``a.b.c`` number opening a heading's text, as integers; None if it has none."""
    m = _NUMBER_RE.match(text.strip())
    return tuple(int(p) for p in m.group(1).split(".")) if m else None


def numbering_fits(number: Sequence[int], last: Sequence[int] | None) -> bool:
    """Whether a heading numbered ``number`` may follow the last numbered heading ``last``:
    the same number, its first child (``2.1`` or ``2.1.1`` after ``2``), the next number at
    some depth with its lower levels restarted (``2.2``, ``3`` or ``3.1`` after ``2.1``), or a
    numbering restarted at 1 (appendices, a new part).

    Args:
        number: the new heading's number, e.g. ``(3, 1)`` for ``3.1``.
        last: the number of the last heading accepted, or None before the first one.
    """
    new, old = tuple(number), tuple(last or ())
    if not new:
        return True
    if not old or new == old or all(n == 1 for n in new):
        return True
    if len(new) > len(old) and new[: len(old)] == old and all(n == 1 for n in new[len(old) :]):
        return True
    for depth in range(min(len(new), len(old))):
        if (
            new[:depth] == old[:depth]
            and new[depth] == old[depth] + 1
            and all(n == 1 for n in new[depth + 1 :])
        ):
            return True
    return False


@dataclass(frozen=True)
class HeadingVerdict:
    """What a region labelled title or section header becomes, and why."""

    kind: BlockKind
    """``TITLE`` or ``HEADING`` when kept, ``CODE`` or ``TEXT`` when not."""
    reason: str
    """``title``, ``outline``, ``larger``, ``styled``, ``numbered`` (kept); ``code``,
    ``numbering``, ``not_in_outline``, ``body_font`` (not kept)."""
    number: tuple[int, ...] | None = None
    """The section number of a kept heading, to continue the document's numbering from."""

    @property
    def kept(self) -> bool:
        return self.kind in (BlockKind.TITLE, BlockKind.HEADING)


def _capitals(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 3 and all(c.isupper() for c in letters)


def check_heading(
    text: str,
    fonts: FontStats,
    *,
    body_size: float,
    last_number: Sequence[int] | None,
    title: bool = False,
    in_outline: bool = False,
    outline_depths: Collection[int] = (),
) -> HeadingVerdict:
    """The verdict on one region the layout model labels a title or section header.

    Args:
        text: the region's plain text.
        fonts: its font statistics (:func:`font_stats`).
        body_size: the document's body font size (0 if unknown: fonts then decide nothing).
        last_number: the number of the document's last kept numbered heading.
        title: the layout model called it a title (kept unless it is code).
        in_outline: the PDF's outline lists it.
        outline_depths: the depths of the section numbers the PDF's outline lists (``{1, 2}``
            when it has ``3`` and ``3.1``); empty without an outline.
    """
    if fonts.mono >= _MONO_SHARE or _CODE_LINE_RE.match(text.strip()):
        return HeadingVerdict(BlockKind.CODE, "code")
    number = section_number(text)
    kind = BlockKind.TITLE if title else BlockKind.HEADING
    if title:
        return HeadingVerdict(kind, "title", number)
    if in_outline:
        return HeadingVerdict(kind, "outline", number)
    if body_size <= 0 or fonts.size >= body_size * LARGER:
        return HeadingVerdict(kind, "larger", number)
    if number is not None and len(number) in outline_depths:
        return HeadingVerdict(BlockKind.TEXT, "not_in_outline")
    fits = None if number is None else numbering_fits(number, last_number)
    if fits is False:
        return HeadingVerdict(BlockKind.TEXT, "numbering")
    bold = fonts.bold >= _STYLE_SHARE and fonts.size >= body_size * BOLD_MIN
    styled = (
        fonts.italic >= _STYLE_SHARE or _capitals(text)
    ) and fonts.size >= body_size * STYLED_MIN
    if bold or styled:
        return HeadingVerdict(kind, "styled", number)
    if fits and fonts.size >= body_size * NUMBERED_MIN:
        return HeadingVerdict(kind, "numbered", number)
    return HeadingVerdict(BlockKind.TEXT, "body_font")
