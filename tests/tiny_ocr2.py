"""Build a tiny random-weight DeepSeek-OCR-2 (model + tokenizer + processor) in a folder.

The shapes that the processor's token formula depends on stay real: SAM patch size 16 on a
1024 image, two stride-2 convolutions (so 1024 px -> 256 queries, 768 px -> 144). Everything
else is shrunk so a page takes milliseconds on a CPU. Imported by tests, not a conftest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Added tokens of the real tokenizer that the engine and parser care about.
SPECIAL_TOKENS = [
    "<image>",
    "<|grounding|>",
    "<|ref|>",
    "<|/ref|>",
    "<|det|>",
    "<|/det|>",
]
BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
PAD = "<｜▁pad▁｜>"

# A small word-level vocabulary: enough for the prompts and some Markdown/grounding output.
_WORDS_TEXT = (
    "Convert the document to markdown . Free OCR Parse figure Describe this image in detail "
    "Locate OCR table formula LaTeX title text image caption [[ ]] , 0 1 2 3 4 5 6 7 8 9 "
    "10 20 100 900 999 # ## - * | <td> </td> <tr> </tr> <table> </table> "
    "a b c d e f g h i j k l m n o p q r s t u v w x y z "
    "A B C D E F G H I J K L M N O P Q R S T U V W X Y Z"
)
_WORDS = _WORDS_TEXT.split()


def build_tokenizer() -> Any:
    """A fast word-level tokenizer with the family's special tokens (no hub needed)."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for tok in [BOS, EOS, PAD, "<unk>", *SPECIAL_TOKENS, *_WORDS]:
        vocab.setdefault(tok, len(vocab))
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok: Any = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token="<unk>",
        additional_special_tokens=SPECIAL_TOKENS,
    )
    return tok


def build_config(tokenizer: Any) -> Any:
    """A tiny ``DeepseekOcr2Config`` whose ids match ``tokenizer``."""
    from transformers import DeepseekOcr2Config

    vocab_size = len(tokenizer)
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    sam = {
        "hidden_size": 32,
        "output_channels": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 1024,
        "patch_size": 16,
        "window_size": 16,
        # Windowed attention only: global attention over 4096 patches is slow on a CPU.
        "global_attn_indexes": [],
        "downsample_channels": [32, 48],
    }
    encoder = {
        "hidden_size": 48,
        "intermediate_size": 96,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "vocab_size": 1,
    }
    text = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 4096,
        "mlp_layer_types": ["dense", "sparse"],
        "n_routed_experts": 4,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    return DeepseekOcr2Config(
        vision_config={"sam_config": sam, "encoder_config": encoder},
        text_config=text,
        image_token_id=image_id,
    )


def build_processor(tokenizer: Any) -> Any:
    from transformers import DeepseekOcr2Processor
    from transformers.models.deepseek_ocr2.image_processing_pil_deepseek_ocr2 import (
        DeepseekOcr2ImageProcessorPil,
    )

    return DeepseekOcr2Processor(
        image_processor=DeepseekOcr2ImageProcessorPil(), tokenizer=tokenizer
    )


def save_tiny_model(folder: Path, *, seed: int = 0, eos_scale: float = 0.0) -> Path:
    """Write config, safetensors weights, tokenizer and processor files to ``folder``."""
    import torch
    from transformers import DeepseekOcr2ForConditionalGeneration

    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    model: Any = DeepseekOcr2ForConditionalGeneration(build_config(tokenizer))
    # Random init leaves the text embedding tiny; scale it so tokens differ and greedy decoding
    # produces varied ids instead of a constant (the tests want a non-trivial stream).
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0.0, 1.0)
        model.lm_head.weight.normal_(0.0, 0.5)
        # SAM's config initialises with std 1e-10, which makes every image look the same;
        # torch's default init per layer lets the pixels reach the text model.
        for module in model.model.vision_tower.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                module.reset_parameters()
        # A strong projector so different pages decode differently.
        model.model.multi_modal_projector.weight.normal_(0.0, 1.0)
        model.model.view_separator.normal_(0.0, 1.0)
        # eos_scale=0 pins the EOS logit at 0 while other logits spread widely: the model
        # (almost) never stops, so outputs run to max_new_tokens; tests that need an EOS craft
        # the generated ids instead.
        model.lm_head.weight[tokenizer.eos_token_id].mul_(eos_scale)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    build_processor(tokenizer).save_pretrained(folder)
    return folder
