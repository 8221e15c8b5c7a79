"""DeepSeek-OCR-2 resolution modes by name, with their image-token budgets.

OCR-2 sees a page as one global view plus, optionally, 768 px tiles. Each view goes through
SAM (16 px patches) and two stride-2 convolutions, so a view of ``s`` pixels costs
``ceil(s / 64) ** 2`` tokens: 256 for 1024 px, 144 for 768 px; one separator token follows.

``crop_to_patches=False`` alone is broken in transformers 5.23: the processor counts a
1024 px global view (257 tokens) while the image processor renders it at ``tile_size``
(768 px, 145 features), and the forward pass fails. The no-crop modes here therefore set the
view size on both sides consistently (``tile_size=1024`` or ``size=768``).

Pure Python: no torch or transformers import, so the budgets can be shown without them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import EngineError

__all__ = [
    "DEFAULT_MODE",
    "MODES",
    "ResolutionMode",
    "get_mode",
    "tile_grid",
]

#: SAM patch size times the two stride-2 downsampling convolutions.
PIXELS_PER_TOKEN = 16 * 4
GLOBAL_SIZE = 1024
TILE_SIZE = 768


def view_tokens(size: int) -> int:
    """Image tokens of one square view of ``size`` pixels."""
    side = math.ceil(size / PIXELS_PER_TOKEN)
    return side * side


def _grids(min_tiles: int, max_tiles: int) -> list[tuple[int, int]]:
    """All (columns, rows) with a tile count in range, fewest tiles first."""
    grids = [
        (cols, rows)
        for cols in range(1, max_tiles + 1)
        for rows in range(1, max_tiles + 1)
        if min_tiles <= cols * rows <= max_tiles
    ]
    return sorted(grids, key=lambda g: g[0] * g[1])  # stable: keeps column-major order on ties


def tile_grid(
    width: int, height: int, *, min_tiles: int, max_tiles: int, tile_size: int = TILE_SIZE
) -> tuple[int, int]:
    """The (columns, rows) tiling the processor picks: the grid closest to the page's aspect
    ratio; on a tie the larger grid wins while the page area exceeds half the grid's area."""
    aspect = width / height
    area = width * height
    best, best_diff = (1, 1), math.inf
    for cols, rows in _grids(min_tiles, max_tiles):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and area > 0.5 * tile_size * tile_size * cols * rows:
            best = (cols, rows)
    return best


@dataclass(frozen=True)
class ResolutionMode:
    """One way of turning a page image into vision tokens."""

    name: str
    global_size: int
    """Side of the square global view, pixels (the page is fitted and padded to it)."""
    crop: bool
    """Add 768 px tiles of the page (pages no larger than a tile get none)."""
    min_tiles: int = 2
    max_tiles: int = 6
    tile_size: int = TILE_SIZE
    description: str = ""

    def processor_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``DeepseekOcr2Processor.__call__`` that select this mode."""
        if self.crop:
            return {
                "crop_to_patches": True,
                "min_patches": self.min_tiles,
                "max_patches": self.max_tiles,
                "tile_size": self.tile_size,
                "size": {"height": self.global_size, "width": self.global_size},
            }
        # Without crops the image processor renders the global view at ``tile_size`` while the
        # processor counts tokens from ``size``: both must name the same side (see module doc).
        return {
            "crop_to_patches": False,
            "tile_size": self.global_size,
            "size": {"height": self.global_size, "width": self.global_size},
        }

    def tiles(self, width: int, height: int) -> int:
        """How many local tiles a ``width`` x ``height`` pixel image gets."""
        if not self.crop or max(width, height) <= self.tile_size:
            return 0
        cols, rows = tile_grid(
            width,
            height,
            min_tiles=self.min_tiles,
            max_tiles=self.max_tiles,
            tile_size=self.tile_size,
        )
        return cols * rows

    def image_tokens(self, width: int, height: int) -> int:
        """``<image>`` tokens (= vision features) for a ``width`` x ``height`` pixel image."""
        local = self.tiles(width, height) * view_tokens(self.tile_size)
        return view_tokens(self.global_size) + local + 1

    @property
    def token_range(self) -> tuple[int, int]:
        """Fewest and most image tokens a page can cost in this mode."""
        low = view_tokens(self.global_size) + 1
        if not self.crop:
            return (low, low)
        return (low, low + self.max_tiles * view_tokens(self.tile_size))


MODES: dict[str, ResolutionMode] = {
    m.name: m
    for m in (
        ResolutionMode(
            "gundam",
            GLOBAL_SIZE,
            crop=True,
            description="1024 px global view + 2-6 tiles of 768 px: 257-1121 tokens (default)",
        ),
        ResolutionMode(
            "gundam-lite",
            GLOBAL_SIZE,
            crop=True,
            max_tiles=4,
            description="1024 px global view + 2-4 tiles of 768 px: 257-833 tokens",
        ),
        ResolutionMode(
            "base",
            GLOBAL_SIZE,
            crop=False,
            description="one 1024 px view, no tiles: 257 tokens",
        ),
        ResolutionMode(
            "small",
            TILE_SIZE,
            crop=False,
            description="one 768 px view, no tiles: 145 tokens",
        ),
    )
}
_ALIASES = {"dynamic": "gundam", "default": "gundam", "no-crop": "base"}
DEFAULT_MODE = "gundam"


def get_mode(mode: str | ResolutionMode) -> ResolutionMode:
    """A mode by name (``gundam``/``dynamic``, ``gundam-lite``, ``base``/``no-crop``,
    ``small``), or ``mode`` itself."""
    if isinstance(mode, ResolutionMode):
        return mode
    key = _ALIASES.get(mode, mode)
    try:
        return MODES[key]
    except KeyError:
        known = ", ".join([*MODES, *_ALIASES])
        raise EngineError(f"unknown resolution mode {mode!r} (known: {known})") from None
