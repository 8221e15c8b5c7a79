"""Page-cache keys change exactly when an engine's output could change."""

from __future__ import annotations

import json

from deepocr_loaders import get_engine


def _key(name: str, **options: object) -> str:
    engine = get_engine(name, **options)
    try:
        return json.dumps(engine.cache_identity(), sort_keys=True, default=str)
    finally:
        engine.close()


def test_text_layer_identity_follows_options() -> None:
    assert _key("text-layer") == _key("text-layer", batch_size=3)
    assert _key("text-layer") != _key("text-layer", html_tables=False)
    assert _key("text-layer") != _key("text-layer", furniture=False)


def test_auto_identity_covers_ocr_choice_but_not_secrets() -> None:
    base = _key("auto")
    assert base != _key("auto", ocr_engine="recorded")
    assert base != _key("auto", ocr_tables=True)
    assert base != _key("auto", model="some/other-model")
    with_key = _key("auto", ocr_options={"api_key": "sk-secret-123"})
    assert "sk-secret-123" not in with_key
    assert with_key == base
