"""Heading levels normalised into a real hierarchy, and the heading path of every block.

Engines disagree on heading levels: DeepSeek-OCR labels every heading ``sub_title`` (``##``), a
text layer guesses from font sizes, docling reports every PDF heading at level 1. We combine
what there is: the block kind (a title is level 1), section numbering (``2.3.1`` is three deep,
and beats Markdown ``#`` depth when both exist) and ``#`` depth, then rank the distinct values
so levels have no gaps. A heading that directly follows another heading of the same or a higher
level (no body in between) nests under it instead of replacing it, unless numbering says the
two are siblings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from deepocr_loaders.document import Block, BlockKind

from .markup import strip_markup

__all__ = ["contextualize", "heading_levels", "numbering_depth", "without_named_headings"]

_NUMBERING = (
    re.compile(r"^(?:(?:section|chapter|part)\s+)?(\d{1,2}(?:\.\d{1,2})*)\.?\)?\s+\S", re.I),
    re.compile(r"^((?:appendix\s+)?[A-Z](?:\.\d{1,2})+)\.?\s+\S"),
    re.compile(r"^((?:appendix\s+)?[A-Z])[.)]\s+\S"),
    re.compile(r"^([IVX]{1,5})\.\s+\S"),
)

HEADING_KINDS = (BlockKind.TITLE, BlockKind.HEADING)
_MAX_NESTED_RUN = 6


def numbering_depth(text: str) -> int:
    """How deep a section number says a heading is (``3`` -> 1, ``3.2.1`` -> 3), 0 if none."""
    text = text.strip()
    for pattern in _NUMBERING:
        m = pattern.match(text)
        if m:
            return m.group(1).count(".") + 1
    return 0


def _hash_depth(block: Block) -> int:
    if block.level:
        return block.level
    text = block.text.strip()
    hashes = len(text) - len(text.lstrip("#"))
    return hashes or 2


def heading_levels(blocks: Sequence[Block]) -> dict[int, int]:
    """Normalised level (1 = title) of every heading in ``blocks`` (body blocks in reading
    order), keyed by position in ``blocks``."""
    positions = [i for i, b in enumerate(blocks) if b.kind in HEADING_KINDS]
    if not positions:
        return {}
    titles = {i for i in positions if blocks[i].kind is BlockKind.TITLE}
    top = [i for i in positions if i not in titles and _hash_depth(blocks[i]) == 1]
    if not titles and len(top) == 1 and top[0] == positions[0]:
        # A lone "#" heading opening the document is its title (text layers say "heading").
        titles = {top[0]}
    has_title = bool(titles)
    raw: dict[int, int] = {}
    numbered: set[int] = set()
    for i in positions:
        block = blocks[i]
        if i in titles:
            continue
        depth = numbering_depth(block.plain_text)
        if depth:
            numbered.add(i)
            raw[i] = depth
        else:
            # "##" is the top section level under a title; "#" as a heading means the same.
            raw[i] = max(_hash_depth(block) - 1, 1)
    ranks = {value: rank for rank, value in enumerate(sorted(set(raw.values())), start=1)}
    offset = 1 if has_title else 0
    # Runs of headings with nothing between them; the positions of those too long to nest.
    flat: set[int] = set()
    run: list[int] = []
    for i in [*positions, -2]:
        if run and i != run[-1] + 1:
            if len(run) > _MAX_NESTED_RUN:
                flat.update(run)
            run = []
        run.append(i)
    levels: dict[int, int] = {}
    for i in positions:
        if i in titles:
            levels[i] = 1
            continue
        level = ranks[raw[i]] + offset
        prev = i - 1
        if (
            prev in levels
            and prev not in titles
            and level <= levels[prev]
            and not (i in numbered and prev in numbered)
            and i not in flat
        ):
            level = levels[prev] + 1
        levels[i] = level
    return levels


def without_named_headings(path: Sequence[str], text: str) -> str:
    """``text`` without the heading lines that open it and that ``path`` already names.

    Args:
        path: the chunk's heading path, outermost first.
        text: the chunk's text.
    """
    named = {h.strip() for h in path}
    paras = text.split("\n\n")
    start = 0
    while start < len(paras):
        para = paras[start].strip()
        if not para.startswith("#") or para.lstrip("#").strip() not in named:
            break
        start += 1
    return "\n\n".join(paras[start:])


def contextualize(path: Sequence[str], text: str, *, plain: bool = False) -> str:
    """What to embed for a chunk: its heading path, then its text without the heading lines
    that open it and that the path already names, so each heading is embedded once
    (``10 TABLES\n\nbody``, not ``10 TABLES\n\n# 10 TABLES\n\nbody``).

    Args:
        path: the chunk's heading path, outermost first.
        text: the chunk's text (or what stands for it in the embedding, e.g. a table's keys).
        plain: also take the Markdown markup out of the text
            (:func:`chunking.markup.strip_markup`), as the chunker's ``contextualized_text``
            does.
    """
    rest = without_named_headings(path, text) if path else text
    if plain:
        rest = strip_markup(rest)
    if not path:
        return rest
    head = " > ".join(path)
    return f"{head}\n\n{rest}" if rest.strip() else head
