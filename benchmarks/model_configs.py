"""Random-weight models for the throughput benchmark, built from published config values.

Three families, each at ``"real"`` size (the released checkpoint's shapes) or ``"tiny"`` (a CPU
smoke test that keeps the real image-token counts: SAM patch 16 on the 1024/640 px views):

* ``deepseek-ocr-2``: native ``DeepseekOcr2ForConditionalGeneration`` (DeepSeek-3B-MoE decoder,
  SAM ViT-B + Qwen2-0.5B-sized encoder), values of ``deepseek-community/DeepSeek-OCR-2``.
* ``deepseek-ocr``: our ``DeepseekOcrV1ForCausalLM`` from a config in the released
  ``deepseek-ai/DeepSeek-OCR`` schema (DeepEncoder: SAM ViT-B + CLIP-L; DeepSeek-V2-style MoE
  decoder, plain multi-head attention), ~3.3 B parameters.
* ``deepocr``: our ``DeepOcrForCausalLM`` (DeepEncoder + Qwen2-7B), ~8 B parameters.

Tokenizers are word-level with one entry per model vocabulary id (so every id the model can
emit decodes) and the family's special tokens; no hub access anywhere. Models are built
directly on the target device in the target dtype: a 7 B random init on a GPU takes seconds,
where CPU fp32 init + copy takes minutes; ``device="meta"`` builds the shapes only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from PIL import Image

from deepocr_loaders.engines.base import PROMPTS, Task
from deepocr_loaders.engines.deepocr import DeepOcrEngine
from deepocr_loaders.engines.deepseek_ocr import DeepseekOcrEngine
from deepocr_loaders.engines.deepseek_ocr2 import DeepseekOcr2Engine
from deepocr_loaders.engines.hf_batched import BatchedVisionEngine
from deepocr_loaders.engines.ocr2_modes import get_mode

__all__ = ["MODELS", "BenchModel", "ModelName", "Size", "build_bench_model", "count_params"]

ModelName = Literal["deepseek-ocr-2", "deepseek-ocr", "deepocr"]
Size = Literal["tiny", "real"]
MODELS: tuple[ModelName, ...] = ("deepseek-ocr-2", "deepseek-ocr", "deepocr")

# -- DeepSeek-OCR-2 (deepseek-community/DeepSeek-OCR-2, config.json) ----------------------------
OCR2_REAL_TEXT = {
    "vocab_size": 129280,
    "hidden_size": 1280,
    "intermediate_size": 6848,
    "moe_intermediate_size": 896,
    "num_hidden_layers": 12,
    "num_attention_heads": 10,
    "num_key_value_heads": 10,
    "n_routed_experts": 64,
    "n_shared_experts": 2,
    "num_experts_per_tok": 6,
    "n_group": 1,
    "topk_group": 1,
    "topk_method": "greedy",
    "max_position_embeddings": 8192,
    "mlp_layer_types": ["dense"] + ["sparse"] * 11,  # first_k_dense_replace = 1
    "bos_token_id": 0,
    "eos_token_id": 1,
}
OCR2_REAL_SAM = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "global_attn_indexes": [2, 5, 8, 11],
    "downsample_channels": [512, 896],
}
OCR2_REAL_ENCODER = {
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "rope_theta": 1000000.0,
    "vocab_size": 1,
}
OCR2_TINY_TEXT = {
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "max_position_embeddings": 4096,
    "mlp_layer_types": ["dense", "sparse"],
    "bos_token_id": 0,
    "eos_token_id": 1,
}
OCR2_TINY_SAM = {
    "hidden_size": 32,
    "output_channels": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "window_size": 16,
    "global_attn_indexes": [],
    "downsample_channels": [32, 48],
}
OCR2_TINY_ENCODER = {
    "hidden_size": 48,
    "intermediate_size": 96,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1,
}

# -- DeepSeek-OCR v1 (deepseek-ai/DeepSeek-OCR, config.json: DeepseekV2 keys + vision_config) ----
V1_REAL: dict[str, Any] = {
    "vocab_size": 129280,
    "hidden_size": 1280,
    "intermediate_size": 6848,
    "moe_intermediate_size": 896,
    "num_hidden_layers": 12,
    "num_attention_heads": 10,
    "num_key_value_heads": 10,
    "first_k_dense_replace": 1,
    "moe_layer_freq": 1,
    "n_routed_experts": 64,
    "n_shared_experts": 2,
    "num_experts_per_tok": 6,
    "n_group": 1,
    "topk_group": 1,
    "topk_method": "greedy",
    "scoring_func": "softmax",
    "norm_topk_prob": False,
    "routed_scaling_factor": 1.0,
    "use_mla": False,
    "max_position_embeddings": 8192,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "projector_config": {"projector_type": "linear", "input_dim": 2048, "n_embed": 1280},
    "vision_config": {
        "image_size": 1024,
        "width": {
            "sam_vit_b": {
                "width": 768,
                "layers": 12,
                "heads": 12,
                "global_attn_indexes": [2, 5, 8, 11],
                "downsample_channels": [512, 1024],
            },
            "clip-l-14-224": {
                "width": 1024,
                "layers": 24,
                "heads": 16,
                "image_size": 224,
                "patch_size": 14,
            },
        },
    },
}
#: Tiny encoder (``"deepencoder"`` block): windowed SAM only, as global attention over 4096
#: patches is what makes a CPU slow.
TINY_DEEPENCODER = {
    "sam_embed_dim": 32,
    "sam_depth": 2,
    "sam_num_heads": 2,
    "sam_window_size": 14,
    "sam_global_attn_indexes": [],
    "sam_out_chans": 16,
    "sam_downsample_channels": [32, 48],
    "clip_hidden_size": 48,
    "clip_num_layers": 1,
    "clip_num_heads": 4,
    "clip_ffn_hidden_size": 96,
    "projector_input_dim": 96,
}
V1_TINY: dict[str, Any] = {
    **{k: v for k, v in V1_REAL.items() if k not in ("projector_config", "vision_config")},
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "max_position_embeddings": 4096,
    "deepencoder": TINY_DEEPENCODER,
}

# -- DeepOCR: Qwen/Qwen2-7B-Instruct's config.json (the encoder is DeepEncoderConfig's default) --
QWEN2_7B: dict[str, Any] = {
    "vocab_size": 152064,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
}
QWEN2_TINY: dict[str, Any] = {
    **QWEN2_7B,
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}

OCR2_SPECIALS = ["<image>", "<|grounding|>", "<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>"]
_WORDS = ["Convert", "the", "document", "to", "markdown", ".", "Free", "OCR"]
# Whole words of the v1 / DeepOCR prompts and VILA's Qwen2 chat frame (whitespace-split).
_PROMPT_WORDS = ["markdown.", "OCR.", "system", "user", "assistant", "You", "are", "a", "helpful"]


# -- the benchmark's view of a model ------------------------------------------------------------


@dataclass(frozen=True)
class BenchModel:
    """A random-weight model with its processor and the engine class that runs it."""

    name: ModelName
    model: Any
    processor: Any
    engine_cls: type[BatchedVisionEngine]
    #: The engine's default resolution mode for this family.
    default_mode: str
    #: What the engine sends for ``Task.MARKDOWN`` (DeepOCR: its training prompt "Free OCR.").
    prompt: str

    def encode(self, image: Image.Image, mode: str) -> dict[str, Any]:
        """The processor's output for one page, as the reference ``infer()`` prepares it."""
        if self.name == "deepseek-ocr-2":
            kwargs = get_mode(mode).processor_kwargs()
            return dict(
                self.processor(images=[image], text=[self.prompt], return_tensors="pt", **kwargs)
            )
        return dict(self.processor(images=[image], text=[self.prompt], mode=mode))


def count_params(model: torch.nn.Module) -> tuple[int, int]:
    """(all parameters, vision-tower parameters)."""
    # Ours keep the DeepEncoder in ``vision``; DeepSeek-OCR-2's native layout nests it.
    name = "vision" if hasattr(model, "vision") else "model.vision_tower"
    tower = model.get_submodule(name)
    return (
        sum(p.numel() for p in model.parameters()),
        sum(p.numel() for p in tower.parameters()),
    )


def build_bench_model(
    name: ModelName, size: Size, device: torch.device, dtype: torch.dtype
) -> BenchModel:
    """``name`` at ``size`` with random weights on ``device`` in ``dtype``."""
    if name == "deepseek-ocr-2":
        processor = _ocr2_processor(int(_pick(size, OCR2_REAL_TEXT, OCR2_TINY_TEXT)["vocab_size"]))
        model = _build_ocr2(size, processor, device, dtype)
        return BenchModel(
            name, model, processor, DeepseekOcr2Engine, "gundam", PROMPTS[Task.MARKDOWN]
        )
    if name == "deepseek-ocr":
        processor = _v1_processor(int(_pick(size, V1_REAL, V1_TINY)["vocab_size"]))
        model = _build_v1(size, processor, device, dtype)
        return BenchModel(
            name, model, processor, DeepseekOcrEngine, "gundam", PROMPTS[Task.MARKDOWN]
        )
    if name == "deepocr":
        processor = _deepocr_processor(int(_pick(size, QWEN2_7B, QWEN2_TINY)["vocab_size"]))
        model = _build_deepocr(size, processor, device, dtype)
        return BenchModel(name, model, processor, DeepOcrEngine, "gundam-6", PROMPTS[Task.FREE_OCR])
    raise ValueError(f"unknown model {name!r} (known: {', '.join(MODELS)})")


def _pick(size: Size, real: dict[str, Any], tiny: dict[str, Any]) -> dict[str, Any]:
    if size not in ("real", "tiny"):
        raise ValueError(f"unknown size {size!r} (known: tiny, real)")
    return dict(real if size == "real" else tiny)


# -- tokenizers and processors ------------------------------------------------------------------


def word_tokenizer(
    vocab_size: int,
    head: Sequence[str],
    *,
    specials: Sequence[str],
    bos: str | None,
    eos: str,
    pad: str,
    newline: bool = False,
) -> Any:
    """A fast word-level tokenizer: ``head`` at ids 0.., filler words up to ``vocab_size``.

    ``newline``: ``"\\n"`` is a token of its own (``head`` must hold it), as in the real
    tokenizers; the whitespace pre-tokenizer would drop it otherwise.
    """
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for token in head:
        vocab.setdefault(token, len(vocab))
    if len(vocab) > vocab_size:
        raise ValueError(f"vocab_size {vocab_size} is smaller than the {len(vocab)} named tokens")
    vocab.update({f"w{i}": i for i in range(len(vocab), vocab_size)})
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok: Any = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token="<unk>",
        additional_special_tokens=list(specials),
    )
    if newline:
        tok.add_tokens(["\n"])  # already in the vocab: marks it, keeps its id
    return tok


def _ocr2_processor(vocab_size: int) -> Any:
    from transformers import DeepseekOcr2Processor
    from transformers.models.deepseek_ocr2.image_processing_pil_deepseek_ocr2 import (
        DeepseekOcr2ImageProcessorPil,
    )

    head = ["<bos>", "<eos>", "<pad>", "<unk>", *OCR2_SPECIALS, *_WORDS]
    tok = word_tokenizer(
        vocab_size, head, specials=OCR2_SPECIALS, bos="<bos>", eos="<eos>", pad="<pad>"
    )
    return DeepseekOcr2Processor(image_processor=DeepseekOcr2ImageProcessorPil(), tokenizer=tok)


def _v1_processor(vocab_size: int) -> Any:
    from deepocr_loaders.models import DeepEncoderProcessor

    # BOS / EOS = 0 / 1 as the released tokenizer (the reference hard-codes them).
    head = ["<bos>", "<eos>", "<pad>", "<unk>", *OCR2_SPECIALS, "\n", *_WORDS, *_PROMPT_WORDS]
    tok = word_tokenizer(
        vocab_size,
        head,
        specials=OCR2_SPECIALS,
        bos="<bos>",
        eos="<eos>",
        pad="<pad>",
        newline=True,
    )
    return DeepEncoderProcessor(tok, template="plain")


def _deepocr_processor(vocab_size: int) -> Any:
    from deepocr_loaders.models import DeepEncoderProcessor

    # Qwen2's specials (no BOS; EOS <|im_end|> as the instruct model ends a turn) and VILA's
    # <image>; no chat template, so the processor writes VILA's Qwen2 frame itself.
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"]
    head = [*specials, "<unk>", "\n", *_WORDS, *_PROMPT_WORDS]
    tok = word_tokenizer(
        vocab_size,
        head,
        specials=specials,
        bos=None,
        eos="<|im_end|>",
        pad="<|endoftext|>",
        newline=True,
    )
    return DeepEncoderProcessor(tok, template="qwen2")


# -- models -------------------------------------------------------------------------------------


@contextmanager
def _build_on(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Create tensors straight on ``device`` in ``dtype`` (seconds on a GPU, not minutes)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _reset_vision(tower: torch.nn.Module) -> None:
    """torch's per-layer init for the vision tower's linear and conv layers.

    DeepSeek-OCR-2's SAM init (std 1e-10) gives near-zero activations that real weights never
    have (and float32 denormals, ~100x slower on x86); the same reset for every family keeps
    their vision costs comparable.
    """
    with torch.no_grad():
        for module in tower.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                module.reset_parameters()


def _build_ocr2(size: Size, processor: Any, device: torch.device, dtype: torch.dtype) -> Any:
    from transformers import DeepseekOcr2Config, DeepseekOcr2ForConditionalGeneration

    real = size == "real"
    text = _pick(size, OCR2_REAL_TEXT, OCR2_TINY_TEXT)
    text["pad_token_id"] = processor.tokenizer.pad_token_id
    config = DeepseekOcr2Config(
        vision_config={
            "sam_config": OCR2_REAL_SAM if real else OCR2_TINY_SAM,
            "encoder_config": OCR2_REAL_ENCODER if real else OCR2_TINY_ENCODER,
        },
        text_config=text,
        image_token_id=processor.image_token_id,
    )
    config._attn_implementation = "sdpa"
    with _build_on(device, dtype):
        model = DeepseekOcr2ForConditionalGeneration(config)
        _reset_vision(model.model.vision_tower)
    return model.eval()


def _build_v1(size: Size, processor: Any, device: torch.device, dtype: torch.dtype) -> Any:
    from deepocr_loaders.models import DeepseekOcrV1Config, DeepseekOcrV1ForCausalLM

    tok = processor.tokenizer
    raw = {
        **_pick(size, V1_REAL, V1_TINY),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "image_token_id": processor.image_token_id,
    }
    # The loader's own path from the released schema, so the shapes are what a real load gets.
    config = DeepseekOcrV1Config.from_reference(raw)
    config.text._attn_implementation = "sdpa"
    with _build_on(device, dtype):
        model = DeepseekOcrV1ForCausalLM(config)
        _reset_vision(model.vision)
    _set_generation_ids(model, tok)
    return model.eval()


def _build_deepocr(size: Size, processor: Any, device: torch.device, dtype: torch.dtype) -> Any:
    from transformers import Qwen2Config

    from deepocr_loaders.models import DeepOcrConfig, DeepOcrForCausalLM

    tok = processor.tokenizer
    text = Qwen2Config(
        **_pick(size, QWEN2_7B, QWEN2_TINY),
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    text._attn_implementation = "sdpa"
    encoder = {} if size == "real" else dict(TINY_DEEPENCODER)  # {}: the released encoder
    config = DeepOcrConfig(
        text_config=text, deepencoder=encoder, image_token_id=processor.image_token_id
    )
    with _build_on(device, dtype):
        model = DeepOcrForCausalLM(config)
        _reset_vision(model.vision)
    _set_generation_ids(model, tok)
    return model.eval()


def _set_generation_ids(model: Any, tokenizer: Any) -> None:
    """EOS / PAD defaults as the loaders set them (the tokenizer's)."""
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
