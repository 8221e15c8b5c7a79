"""A LlamaIndex embedding for wiring tests: equal texts get equal vectors, anything else a
near-orthogonal one (it tests plumbing and ids, not retrieval quality)."""

from __future__ import annotations

import hashlib

import numpy as np
from llama_index.core.embeddings import BaseEmbedding


class HashEmbedding(BaseEmbedding):
    """64 dimensions seeded from the text's SHA-256."""

    def _vector(self, text: str) -> list[float]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
        return list(np.random.default_rng(seed).standard_normal(64))

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)
