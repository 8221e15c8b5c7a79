"""Reading order of layout blocks by recursive XY-cut, columns first.

Layout models hand blocks over row by row, which interleaves the columns of a multi-column
page (or a grid of cards). XY-cut splits a region at the widest clean whitespace: first at
vertical gutters (columns, read left to right), then at horizontal gaps (bands, top to bottom).
Consecutive bands that share a gutter are one column run (aligned paragraph breaks in both
columns must not cut the page into rows), so they are merged before the columns are read.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from .document import BBox

__all__ = ["xy_cut_order"]

#: Narrower gaps than this (points) are word or cell spacing, not gutters.
MIN_GAP = 6.0


def _groups(
    items: list[int], boxes: Sequence[BBox], lo: str, hi: str
) -> list[tuple[list[int], float, float]]:
    """Items split at clean gaps along one axis: (members, start, end) in order."""
    spans = sorted(items, key=lambda i: getattr(boxes[i], lo))
    groups: list[tuple[list[int], float, float]] = []
    for i in spans:
        start, end = getattr(boxes[i], lo), getattr(boxes[i], hi)
        if groups and start < groups[-1][2] + MIN_GAP:
            members, g_start, g_end = groups[-1]
            groups[-1] = ([*members, i], g_start, max(g_end, end))
        else:
            groups.append(([i], start, end))
    return groups


def _gutters(items: list[int], boxes: Sequence[BBox]) -> list[tuple[float, float]]:
    cols = _groups(items, boxes, "x0", "x1")
    return [(a[2], b[1]) for a, b in itertools.pairwise(cols)]


def _share_gutter(a: list[int], b: list[int], boxes: Sequence[BBox]) -> bool:
    return any(
        min(g1[1], g2[1]) - max(g1[0], g2[0]) > 0
        for g1 in _gutters(a, boxes)
        for g2 in _gutters(b, boxes)
    )


def _order(items: list[int], boxes: Sequence[BBox], out: list[int], merge: bool) -> None:
    if len(items) <= 1:
        out.extend(items)
        return
    if not merge:
        # Rows first: bands top to bottom, and within a band its columns left to right.
        for first, second in (("y0", "y1"), ("x0", "x1")):
            groups = _groups(items, boxes, first, second)
            if len(groups) > 1:
                for members, _, _ in groups:
                    _order(members, boxes, out, merge)
                return
        out.extend(sorted(items, key=lambda i: (boxes[i].y0, boxes[i].x0)))
        return
    cols = _groups(items, boxes, "x0", "x1")
    if len(cols) > 1:
        for members, _, _ in cols:
            _order(members, boxes, out, merge)
        return
    bands = [members for members, _, _ in _groups(items, boxes, "y0", "y1")]
    if len(bands) == 1:
        out.extend(sorted(items, key=lambda i: (boxes[i].y0, boxes[i].x0)))
        return
    merged: list[list[int]] = [bands[0]]
    for band in bands[1:]:
        if _share_gutter(merged[-1], band, boxes):
            merged[-1] = merged[-1] + band
        else:
            merged.append(band)
    if len(merged) == 1:
        # The bands' gutters overlap but leave no clean gap across the whole region: there is
        # no column structure to follow, so read band by band.
        merged = bands
    for band in merged:
        _order(band, boxes, out, merge)


def xy_cut_order(boxes: Sequence[BBox], *, columns_first: bool = True) -> list[int]:
    """Indices of ``boxes`` in reading order (a permutation of ``range(len(boxes))``).

    ``columns_first=False`` is the plain rows-first cut, which reads a grid row by row.
    """
    out: list[int] = []
    _order(list(range(len(boxes))), boxes, out, columns_first)
    return out
