"""``engine="recorded"``: replays saved model output (from an earlier run, a vLLM batch job or a
test fixture) through the same parser and page assembly as a live model."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..document import Page
from . import register_engine
from .base import Engine, PageInput, Task

__all__ = ["RecordedEngine"]


@register_engine("recorded")
class RecordedEngine(Engine):
    """Pages from recorded raw outputs, keyed by 0-based page index (a sequence is 0, 1, 2...).

    ``expect_eos``: the outputs were decoded with special tokens kept, so a missing
    end-of-sequence token marks the page ``truncated``.
    """

    def __init__(
        self, outputs: Mapping[int, str] | Sequence[str], *, expect_eos: bool = False
    ) -> None:
        self.outputs: dict[int, str] = (
            dict(outputs) if isinstance(outputs, Mapping) else dict(enumerate(outputs))
        )
        self.expect_eos = expect_eos

    def cache_identity(self) -> dict[str, Any]:
        digest = hashlib.sha256(json.dumps(sorted(self.outputs.items())).encode()).hexdigest()
        return {"engine": self.name, "outputs": digest, "expect_eos": self.expect_eos}

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        for inp in pages:
            raw = self.outputs.get(inp.index)
            if raw is None:
                yield inp.failed(f"no recorded output for page {inp.index + 1}", engine=self.name)
                continue
            yield inp.parse_output(raw, engine=self.name, expect_eos=self.expect_eos)
