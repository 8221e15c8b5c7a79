"""Shared by the model-engine tests: page inputs from generated images, and ways to watch or
replace an engine's ``generate``. Imported bare by tests, not a conftest."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from deepocr_loaders.engines.base import PageInput
from deepocr_loaders.errors import RenderError
from deepocr_loaders.sources import RenderedPage


@pytest.fixture(scope="module", autouse=True)
def hub_offline() -> Iterator[None]:
    """No hub access while a test module runs (import it into the module to enable it)."""
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield
    if old is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = old


class ImageSource:
    """A stand-in Source that renders prepared images (the engine only calls ``render``)."""

    def __init__(self, images: list[Image.Image]) -> None:
        self.images = images
        self.renders = 0

    def render(self, index: int, dpi: float = 144) -> RenderedPage:
        self.renders += 1
        im = self.images[index]
        return RenderedPage(index, str(index + 1), im, im.width / 2, im.height / 2, dpi)


class BrokenSource:
    """A stand-in Source whose pages cannot be rendered (a damaged page of ``x.pdf``)."""

    def render(self, index: int, dpi: float = 144) -> RenderedPage:
        raise RenderError("x.pdf", "damaged page", page=index)


def make_pages(sizes: list[tuple[int, int]], seed: int = 0) -> list[PageInput]:
    """One PageInput per image size in pixels (page size in points: half of it, as at 144 dpi)."""
    # Flat colours plus a little noise: noise alone has the same statistics on every page,
    # which a random model averages away; colours make the pages decode differently.
    rng = np.random.default_rng(seed)
    images = []
    for i, (w, h) in enumerate(sizes):
        base = np.array([(67 * i) % 256, (151 * i + 40) % 256, (29 * i + 200) % 256])
        noise = rng.integers(0, 40, (h, w, 3))
        images.append(Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)))
    src = ImageSource(images)
    return [
        PageInput(src, i, str(i + 1), im.width / 2, im.height / 2)  # type: ignore[arg-type]
        for i, im in enumerate(images)
    ]


def wrap_generate(engine: Any, before: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    """Record every ``generate`` call (and let ``before`` change or veto it)."""
    calls: list[dict[str, Any]] = []
    real = engine.model.generate

    def generate(**kwargs: Any) -> Any:
        calls.append(kwargs)
        before(kwargs)
        return real(**kwargs)

    engine.model.generate = generate
    return calls


def save_tiny_family(factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Tiny random checkpoints of the three in-process model families, by engine name."""
    import tiny_ocr2
    import tiny_v1

    return {
        "deepseek-ocr-2": tiny_ocr2.save_tiny_model(factory.mktemp("tiny-ocr2")),
        "deepseek-ocr": tiny_v1.save_tiny_v1(factory.mktemp("tiny-v1")),
        "deepocr": tiny_v1.save_tiny_deepocr(factory.mktemp("tiny-deepocr")),
    }


def family_engine(name: str, folders: dict[str, Any], **options: Any) -> Any:
    """The engine ``name`` on its tiny checkpoint, on the CPU, without retries by default."""
    from deepocr_loaders.engines import get_engine
    from deepocr_loaders.engines.hf_batched import BatchedVisionEngine

    options.setdefault("retry_truncated", False)
    options.setdefault("device", "cpu")
    engine = get_engine(name, model=str(folders[name]), local_files_only=True, **options)
    assert isinstance(engine, BatchedVisionEngine)
    return engine


def wrap_image_features(engine: Any) -> list[dict[str, Any]]:
    """Record the pixel inputs of every vision forward the engine makes."""
    calls: list[dict[str, Any]] = []
    real = engine._image_features

    def image_features(pixels: dict[str, Any]) -> Any:
        calls.append(dict(pixels))
        return real(pixels)

    engine._image_features = image_features
    return calls


def crafted_generate(engine: Any, text: str, *, eos: bool) -> Callable[..., Any]:
    """A ``generate`` that returns ``text`` (word-level ids) after the prompt, then EOS/pad."""
    ids = engine.tokenizer.convert_tokens_to_ids(text.split(" "))
    tail = [engine._eos_id] if eos else []

    def generate(**kwargs: Any) -> Any:
        prompt = kwargs["input_ids"]
        rows = [ids + tail + [engine._pad_id] * 2 for _ in range(prompt.shape[0])]
        return torch.cat([prompt, torch.tensor(rows)], dim=1)

    return generate
