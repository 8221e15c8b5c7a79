"""Chunk metadata through a real embedded vector store (Qdrant local mode): it survives the
round trip, and filters by page and file work."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

qdrant = pytest.importorskip("qdrant_client")

from integration_docs import make_pdf, recorded_options  # noqa: E402
from qdrant_client import models  # noqa: E402

from llamaindex_reader import DeepOCRReader  # noqa: E402


def test_metadata_round_trip_and_page_filter(tmp_path: Path) -> None:
    reader = DeepOCRReader(engine="recorded", engine_options=recorded_options(), max_tokens=48)
    docs = reader.load_data(make_pdf(tmp_path / "a.pdf", "Alpha"))
    assert {d.metadata["page"] for d in docs} == {0, 1}
    client = qdrant.QdrantClient(path=str(tmp_path / "store"))
    client.create_collection(
        "c", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE)
    )
    client.upsert(
        "c",
        points=[
            models.PointStruct(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, d.id_)),
                vector=[1.0, float(i), 0.5, 0.25],
                payload={"text": d.text, **d.metadata},
            )
            for i, d in enumerate(docs)
        ],
    )
    stored, _ = client.scroll("c", limit=100, with_payload=True)
    by_text = {p.payload["text"]: p.payload for p in stored}
    for doc in docs:
        payload = by_text[doc.text]
        assert {k: payload[k] for k in doc.metadata} == doc.metadata
        assert json.loads(payload["boxes"])[0]["page"] == doc.metadata["page"]
    second_page = models.Filter(
        must=[models.FieldCondition(key="page", match=models.MatchValue(value=1))]
    )
    hits, _ = client.scroll("c", scroll_filter=second_page, limit=100, with_payload=True)
    assert hits and all(h.payload["page"] == 1 for h in hits)
    assert any("Sediment" in h.payload["text"] for h in hits)
    client.close()
