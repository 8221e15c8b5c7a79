"""``ChunkerSettings``: the chunker's options as one value, passed through every adapter.

The CLI, the LlamaIndex reader and node parser and the LangChain splitter all take one of these
(or the same names as keyword arguments), so an option added here reaches all of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

__all__ = ["TABLE_EMBEDDINGS", "ChunkerSettings", "settings_from"]

TABLE_EMBEDDINGS = ("rows", "keys", "auto")


@dataclass(frozen=True)
class ChunkerSettings:
    """Options of :class:`chunking.LayoutChunker`; checked when made.

    Args:
        max_tokens: budget per chunk.
        min_tokens: a chunk below it merges with its neighbour (default 120, or 30% of a
            smaller budget).
        overlap_tokens: tokens of whole sentences repeated between neighbouring prose chunks.
        tokenizer: a ``str -> int`` callable, a Hugging Face tokenizer or a tiktoken encoding
            (default: a fast approximation that needs no download).
        include_furniture: keep page headers, footers and page numbers in chunk text.
        table_max_tokens: budget of a table's row groups (default ``max_tokens``).
        table_embedding: what a table chunk's ``contextualized_text`` holds: ``"rows"``,
            ``"keys"`` or ``"auto"``.
    """

    max_tokens: int = 400
    min_tokens: int | None = None
    overlap_tokens: int = 0
    tokenizer: Any = None
    include_furniture: bool = False
    table_max_tokens: int | None = None
    table_embedding: Literal["rows", "keys", "auto"] = "auto"

    def __post_init__(self) -> None:
        if self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive, got {self.max_tokens}")
        if self.min_tokens is not None and not 0 <= self.min_tokens <= self.max_tokens:
            raise ValueError(f"min_tokens must be in [0, max_tokens], got {self.min_tokens}")
        if not 0 <= self.overlap_tokens < self.max_tokens:
            raise ValueError(
                f"overlap_tokens must be in [0, max_tokens), got {self.overlap_tokens}"
            )
        if self.table_max_tokens is not None and self.table_max_tokens <= 0:
            raise ValueError(f"table_max_tokens must be positive, got {self.table_max_tokens}")
        if self.table_embedding not in TABLE_EMBEDDINGS:
            raise ValueError(
                f"table_embedding must be one of {TABLE_EMBEDDINGS}, got {self.table_embedding!r}"
            )

    @property
    def effective_min_tokens(self) -> int:
        return (
            self.min_tokens if self.min_tokens is not None else min(120, self.max_tokens * 3 // 10)
        )

    def describe(self) -> dict[str, Any]:
        """The settings as JSON-safe values (the tokenizer by its name): a cache key part."""
        out = asdict(self)
        out["tokenizer"] = _tokenizer_name(self.tokenizer)
        return out


def _tokenizer_name(tokenizer: Any) -> str | None:
    if tokenizer is None:
        return None
    for attr in ("name_or_path", "name", "__qualname__"):
        value = getattr(tokenizer, attr, None)
        if isinstance(value, str) and value:
            return f"{type(tokenizer).__name__}:{value}"
    return type(tokenizer).__name__


_NAMES = frozenset(f.name for f in fields(ChunkerSettings))


def settings_from(settings: ChunkerSettings | None = None, **options: Any) -> ChunkerSettings:
    """``settings`` (or the defaults) with ``options`` applied; unknown names raise TypeError.

    Args:
        settings: a starting point, or None for the defaults.
        **options: any :class:`ChunkerSettings` field.
    """
    unknown = sorted(set(options) - _NAMES)
    if unknown:
        raise TypeError(f"unknown chunker option(s): {', '.join(unknown)}")
    base = settings if settings is not None else ChunkerSettings()
    return replace(base, **options) if options else base
