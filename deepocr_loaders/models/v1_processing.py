"""Preprocessing for DeepEncoder models (DeepSeek-OCR v1, DeepOCR): one page -> model inputs.

Pixels follow the reference ``process/image_process.py``: a global view (Tiny/Small: squashed to a
square; otherwise padded to ``base_size`` with grey 127, aspect kept), 640 px tiles cut from the
page resized to the tile grid, each normalised with mean = std = 0.5. The prompt's ``<image>`` is
expanded to one image token per feature position, newline and view-separator positions included,
so the model's image mask is just ``input_ids == image_token_id``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from transformers import BatchFeature

from .v1_modes import V1Mode, V1PagePlan, get_v1_mode, plan_v1_page

__all__ = ["DEEPOCR_PROMPT", "V1_PROMPT", "DeepEncoderProcessor"]

IMAGE_TOKEN = "<image>"
#: Default prompts: the v1 document prompt, and DeepOCR's training prompt.
V1_PROMPT = "<image>\n<|grounding|>Convert the document to markdown."
DEEPOCR_PROMPT = "<image>\nFree OCR."
_GREY = (127, 127, 127)  # int(0.5 * 255): the reference pads with the normalisation mean
# VILA's chat_templates/qwen2.jinja (no full stop), used when the tokenizer carries no template.
_QWEN2_SYSTEM = "You are a helpful assistant"
TEMPLATES = ("plain", "qwen2")
#: Text VILA's image encoder appends after every image's features (``end_tokens``), per template.
_IMAGE_END = {"plain": "", "qwen2": "\n"}
#: The reference's default mode per template: v1's HF ``infer`` (2-9 tiles), DeepOCR's config.py
#: (MAX_CROPS = 6).
_DEFAULT_MODE = {"plain": "gundam", "qwen2": "gundam-6"}


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """``ToTensor`` + ``Normalize(0.5, 0.5)``: [3, H, W] float32 in [-1, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    return (torch.from_numpy(array).permute(2, 0, 1) - 0.5) / 0.5


def _tiles(image: Image.Image, grid: tuple[int, int], tile: int) -> list[Image.Image]:
    cols, rows = grid
    resized = image.resize((cols * tile, rows * tile))  # PIL default filter, as the reference
    return [
        resized.crop((c * tile, r * tile, (c + 1) * tile, (r + 1) * tile))
        for r in range(rows)
        for c in range(cols)
    ]


class DeepEncoderProcessor:
    """Tokenizer + image preprocessing for one page.

    ``template``: ``"plain"`` (v1: BOS + prompt, as the reference's plain format) or ``"qwen2"``
    (DeepOCR: the tokenizer's chat template, else VILA's Qwen2 one, around the prompt, no BOS,
    and a newline token after the image features, as VILA's image encoder adds).
    """

    def __init__(self, tokenizer: Any, *, template: str = "plain") -> None:
        if template not in TEMPLATES:
            raise ValueError(f"unknown template {template!r} (known: {', '.join(TEMPLATES)})")
        image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        if image_id is None or image_id == getattr(tokenizer, "unk_token_id", None):
            raise ValueError(f"the tokenizer has no {IMAGE_TOKEN} token")
        self.tokenizer = tokenizer
        self.template = template
        self.image_token_id: int = int(image_id)
        self._image_end_ids = self._encode(_IMAGE_END[template])
        #: Mode used when a call names none (the reference's default for this model).
        self.default_mode: str = _DEFAULT_MODE[template]

    def num_image_tokens(self, width: int, height: int, mode: str | V1Mode) -> int:
        """Image-token positions for a ``width`` x ``height`` px page (newlines + separator)."""
        return plan_v1_page(width, height, mode).num_image_tokens

    def plan(self, width: int, height: int, mode: str | V1Mode) -> V1PagePlan:
        return plan_v1_page(width, height, mode)

    def format_prompt(self, prompt: str) -> str:
        """The prompt with the template applied (``<image>`` prepended when absent)."""
        if IMAGE_TOKEN not in prompt:
            prompt = f"{IMAGE_TOKEN}\n{prompt}"
        if self.template == "plain":
            return prompt
        if getattr(self.tokenizer, "chat_template", None):
            messages = [{"role": "user", "content": prompt}]
            return str(
                self.tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True
                )
            )
        return (
            f"<|im_start|>system\n{_QWEN2_SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
        )

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []

    def tokenize(self, prompt: str, num_image_tokens: int) -> list[int]:
        """Token ids: each text piece around ``<image>`` encoded on its own (as the reference)."""
        text = self.format_prompt(prompt)
        pieces = text.split(IMAGE_TOKEN)
        if len(pieces) != 2:
            raise ValueError(f"the prompt must hold exactly one {IMAGE_TOKEN}, got {text!r}")
        ids: list[int] = []
        bos = getattr(self.tokenizer, "bos_token_id", None)
        if self.template == "plain" and bos is not None:
            ids.append(int(bos))
        ids += self._encode(pieces[0])
        ids += [self.image_token_id] * num_image_tokens
        ids += self._image_end_ids
        ids += self._encode(pieces[1])
        return ids

    def preprocess_image(
        self, image: Image.Image, mode: str | V1Mode
    ) -> tuple[torch.Tensor, torch.Tensor | None, V1PagePlan]:
        """(global view [3, G, G], tiles [n, 3, T, T] or None, plan) for one page image."""
        m = get_v1_mode(mode)
        image = image.convert("RGB")
        plan = plan_v1_page(image.width, image.height, m)
        tiles = None
        if plan.num_tiles:
            tiles = torch.stack(
                [_to_tensor(t) for t in _tiles(image, plan.tile_grid, m.image_size)]
            )
        view = image
        if m.resize_without_padding:
            view = view.resize((m.image_size, m.image_size))
        view = ImageOps.pad(view, (m.base_size, m.base_size), color=_GREY)
        return _to_tensor(view), tiles, plan

    def __call__(
        self,
        images: list[Image.Image],
        text: list[str],
        mode: str | V1Mode | None = None,
    ) -> BatchFeature:
        """Model inputs for ONE page: ``input_ids`` [1, L], ``pixel_values`` [1, 3, G, G],
        ``pixel_values_local`` [n, 3, T, T] (absent without tiles), ``tile_grid`` [1, 2]."""
        if len(images) != 1 or len(text) != 1:
            raise ValueError(f"one page per call: got {len(images)} images and {len(text)} prompts")
        view, tiles, plan = self.preprocess_image(images[0], mode or self.default_mode)
        ids = self.tokenize(text[0], plan.num_image_tokens)
        data: dict[str, Any] = {
            "input_ids": torch.tensor([ids], dtype=torch.long),
            "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
            "pixel_values": view.unsqueeze(0),
            "tile_grid": torch.tensor([plan.tile_grid], dtype=torch.long),
        }
        if tiles is not None:
            data["pixel_values_local"] = tiles
        return BatchFeature(data=data)
