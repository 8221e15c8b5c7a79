"""DeepSeek-OCR v1 resolution modes and their image-token arithmetic (pure, no torch).

Facts from the reference (``DeepSeek-OCR-vllm/config.py``, ``process/image_process.py``):

* SAM patch 16 and a 4x convolutional downsample: a ``S`` px view gives ``ceil(S/16/4)`` feature
  rows and columns (1024 -> 16, 640 -> 10, 512 -> 8, 1280 -> 20).
* Every row of features is followed by one ``image_newline`` position and the whole image by one
  ``view_seperator`` position, so a single view costs ``n * (n + 1) + 1`` tokens (Tiny 73, Small
  111, Base 273, Large 421; the "64/100/256/400 tokens" of the paper count features only).
* Gundam: a 1024 px global view padded with grey plus ``w x h`` tiles of 640 px chosen by
  ``dynamic_preprocess`` (2 to 9 tiles in the HF reference's ``infer``, 2 to 6 in the vLLM
  reference's config: mode ``gundam-6``); pages no larger than 640 x 640 get no tiles.
  Tiles add ``(h * 10) * (w * 10 + 1)`` tokens.
* Tiny and Small resize the page to a square without keeping the aspect ratio; Base and Large
  pad it (aspect kept) with grey 127.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "V1_MODES",
    "V1Mode",
    "V1PagePlan",
    "choose_tile_grid",
    "get_v1_mode",
    "largest_page",
    "plan_v1_page",
    "view_side",
]

#: SAM patch size and the convolutional downsample of the DeepEncoder (fixed by the model).
PATCH_SIZE = 16
DOWNSAMPLE = 4
#: The reference skips tiling for pages with both sides <= 640 px (a literal, not image_size).
NO_CROP_MAX_SIDE = 640


@dataclass(frozen=True)
class V1Mode:
    """One named resolution mode: global view ``base_size``, tiles of ``image_size`` px."""

    name: str
    base_size: int
    image_size: int
    crop: bool
    min_tiles: int = 2
    max_tiles: int = 9

    @property
    def resize_without_padding(self) -> bool:
        """Tiny/Small: the page is squashed to a square (the reference resizes, no padding)."""
        return not self.crop and self.image_size <= NO_CROP_MAX_SIDE


V1_MODES: dict[str, V1Mode] = {
    "tiny": V1Mode("tiny", 512, 512, crop=False),
    "small": V1Mode("small", 640, 640, crop=False),
    "base": V1Mode("base", 1024, 1024, crop=False),
    "large": V1Mode("large", 1280, 1280, crop=False),
    # The HF reference's ``infer`` (``dynamic_preprocess`` defaults: 2 to 9 tiles).
    "gundam": V1Mode("gundam", 1024, 640, crop=True, min_tiles=2, max_tiles=9),
    # The vLLM reference's config (MAX_CROPS = 6, "if your GPU memory is small").
    "gundam-6": V1Mode("gundam-6", 1024, 640, crop=True, min_tiles=2, max_tiles=6),
}
_ALIASES = {"dynamic": "gundam", "no-crop": "base"}


def get_v1_mode(mode: str | V1Mode) -> V1Mode:
    """The mode called ``mode`` (case-insensitive; ``dynamic`` = gundam), or ``mode`` itself."""
    if isinstance(mode, V1Mode):
        return mode
    key = str(mode).strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return V1_MODES[key]
    except KeyError:
        known = ", ".join([*V1_MODES, *_ALIASES])
        raise ValueError(f"unknown DeepSeek-OCR v1 mode {mode!r} (known: {known})") from None


def view_side(size: int) -> int:
    """Feature rows (= columns) of a square view of ``size`` px."""
    return math.ceil((size // PATCH_SIZE) / DOWNSAMPLE)


def _candidate_grids(min_tiles: int, max_tiles: int) -> list[tuple[int, int]]:
    # Same candidate order as the reference: the set of (w, h) grids with a tile count in
    # range, sorted by tile count (ties keep set order, which decides exact-tie cases).
    grids = {
        (i, j)
        for n in range(min_tiles, max_tiles + 1)
        for i in range(1, n + 1)
        for j in range(1, n + 1)
        if min_tiles <= i * j <= max_tiles
    }
    return sorted(grids, key=lambda g: g[0] * g[1])


def choose_tile_grid(
    width: int, height: int, *, min_tiles: int = 2, max_tiles: int = 9, tile_size: int = 640
) -> tuple[int, int]:
    """``(width_tiles, height_tiles)`` whose aspect ratio is closest to the page's.

    On a tie the later (larger) grid wins when the page has more than half its pixel area.
    """
    aspect = width / height
    area = width * height
    best, best_diff = (1, 1), float("inf")
    for grid in _candidate_grids(min_tiles, max_tiles):
        diff = abs(aspect - grid[0] / grid[1])
        if diff < best_diff:
            best, best_diff = grid, diff
        elif diff == best_diff and area > 0.5 * tile_size * tile_size * grid[0] * grid[1]:
            best = grid
    return best


@dataclass(frozen=True)
class V1PagePlan:
    """What one page becomes under a mode: tile grid and image-token counts."""

    mode: V1Mode
    tile_grid: tuple[int, int]  # (width_tiles, height_tiles); (1, 1) = no tiles
    num_image_tokens: int  # positions of <image> in input_ids, newlines and separator included

    @property
    def num_tiles(self) -> int:
        w, h = self.tile_grid
        return 0 if (w, h) == (1, 1) else w * h

    @property
    def num_feature_tokens(self) -> int:
        """Vision features only (no newline / separator positions)."""
        n = view_side(self.mode.base_size)
        t = view_side(self.mode.image_size)
        return n * n + self.num_tiles * t * t


def plan_v1_page(width: int, height: int, mode: str | V1Mode) -> V1PagePlan:
    """Tile grid and image-token count of a ``width`` x ``height`` px page, as the reference."""
    if width <= 0 or height <= 0:
        raise ValueError(f"page size must be positive, got {width} x {height}")
    m = get_v1_mode(mode)
    grid = (1, 1)
    if m.crop and not (width <= NO_CROP_MAX_SIDE and height <= NO_CROP_MAX_SIDE):
        grid = choose_tile_grid(
            width, height, min_tiles=m.min_tiles, max_tiles=m.max_tiles, tile_size=m.image_size
        )
    n = view_side(m.base_size)
    tokens = n * (n + 1) + 1
    if grid != (1, 1):
        t = view_side(m.image_size)
        tokens += (grid[1] * t) * (grid[0] * t + 1)
    return V1PagePlan(m, grid, tokens)


def largest_page(mode: str | V1Mode) -> tuple[int, int]:
    """The most image tokens a page can cost in ``mode``, and the most tiles it can have."""
    m = get_v1_mode(mode)
    n = view_side(m.base_size)
    base = n * (n + 1) + 1
    if not m.crop:
        return base, 0
    t = view_side(m.image_size)
    grids = _candidate_grids(m.min_tiles, m.max_tiles)
    tokens = max(base + (rows * t) * (cols * t + 1) for cols, rows in grids)
    return tokens, max(cols * rows for cols, rows in grids)
