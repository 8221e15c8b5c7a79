"""The chunker's settings as one pydantic field of the reader and the node parser."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from chunking import ChunkerSettings, settings_from

__all__ = ["CHUNKER_OPTIONS", "fold_chunker_options"]

#: ``ChunkerSettings`` fields, also taken one by one (``LayoutNodeParser(max_tokens=400)``).
CHUNKER_OPTIONS = frozenset(f.name for f in fields(ChunkerSettings))


def fold_chunker_options(data: Any) -> Any:
    """Constructor data with chunker options given one by one moved into ``chunking``."""
    if not isinstance(data, dict) or not CHUNKER_OPTIONS & set(data):
        return data
    data = dict(data)
    given = {k: data.pop(k) for k in CHUNKER_OPTIONS if k in data}
    base = data.get("chunking")
    data["chunking"] = settings_from(base if isinstance(base, ChunkerSettings) else None, **given)
    return data
