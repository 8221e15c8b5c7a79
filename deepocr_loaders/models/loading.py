"""Loading DeepSeek-OCR v1 and DeepOCR checkpoints into our models by key mapping.

Safetensors only (pickles are refused), never remote code, strict: every checkpoint tensor is used
and every model parameter is filled, else :class:`ModelLoadError` naming the keys. Parameters are
created on the meta device and the checkpoint tensors assigned in place, so loading a 3B/7B model
costs no random initialisation and no second copy.

Key layouts:

* v1 (``deepseek-ai/DeepSeek-OCR``): ``model.sam_model.*``, ``model.vision_model.*`` (CLIP with a
  packed ``qkv_proj``), ``model.projector.layers.*``, ``model.image_newline``,
  ``model.view_seperator`` (sic), ``model.embed_tokens``, ``model.layers.N.*`` (routed experts
  one module each), ``model.norm``, ``lm_head``.
* DeepOCR (VILA's saved layout): ``llm/`` (a Qwen2 folder: ``model.*``, ``lm_head``),
  ``mm_projector/`` (``layers.*``, ``image_newline``, ``view_seperator``), and the SAM + CLIP
  weights under the v1 prefixes (``model.sam_model.*``, ``model.vision_model.*``) in the file
  the top config's ``mm_vision_tower`` names (VILA: ``sam_clip_ckpt/model-00001-of-000001``),
  else ``vision_tower/``, else the top folder.

The name mapping itself lives in :mod:`.keymap`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.initialization import no_init_weights

from ..engines.hf_loading import DTYPE_NAMES, PICKLE_SUFFIXES
from ..errors import ModelLoadError
from .deepencoder import DeepEncoderConfig
from .deepocr import DeepOcrConfig, DeepOcrForCausalLM
from .deepseek_ocr_v1 import DeepseekOcrV1Config, DeepseekOcrV1ForCausalLM
from .keymap import (
    IGNORABLE,
    deepencoder_to_reference,
    map_deepencoder,
    v1_from_reference,
    v1_to_reference,
)
from .v1_processing import DeepEncoderProcessor

__all__ = [
    "deepencoder_to_reference",
    "load_deepocr",
    "load_deepseek_ocr_v1",
    "read_safetensors",
    "v1_from_reference",
    "v1_to_reference",
]

log = logging.getLogger(__name__)
# Parts of a DeepSeek-OCR checkpoint other than SAM + CLIP, which DeepOCR's vision file may carry.
_DEEPSEEK_OCR_REST = re.compile(
    r"(model\.)?(image_newline|view_seperator)$|model\.(layers\.|embed_tokens\.|norm\.|projector\.)"
    r"|lm_head\."
)
# model_type of the released config.json, of the remote-code config class, and ours.
_V1_MODEL_TYPES = ("deepseek_vl_v2", "DeepseekOCR", "deepseek_ocr_v1", None)

# -- reading -------------------------------------------------------------------------------------


def _weight_files(folder: Path) -> list[Path]:
    """The safetensors files of ``folder`` (via the shard index when there is one)."""
    if not folder.is_dir():
        raise ModelLoadError(f"{folder}: no such folder")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{index}: unreadable shard index: {exc}") from exc
        files = sorted({folder / name for name in weight_map.values()})
        missing = [str(f.name) for f in files if not f.is_file()]
        if missing:
            raise ModelLoadError(f"{folder}: shards listed in the index are missing: {missing}")
        return files
    files = sorted(folder.glob("*.safetensors"))
    if files:
        return files
    pickles = sorted(p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise ModelLoadError(
            f"{folder}: only pickle checkpoints ({', '.join(pickles)}); refusing to load them "
            "(pickle can run arbitrary code). Convert the weights to safetensors first."
        )
    raise ModelLoadError(f"{folder}: no model weights (*.safetensors) found")


def read_safetensors(folder: Path, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """All tensors of a folder's safetensors files (floating ones cast to ``dtype``)."""
    tensors: dict[str, torch.Tensor] = {}
    for path in _weight_files(folder):
        for key, t in _read_file(path, dtype).items():
            if key in tensors:
                raise ModelLoadError(f"{path}: tensor {key} is also in another shard")
            tensors[key] = t
    return tensors


def _read_file(path: Path, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (safe_open is not a mapping)
                t = f.get_tensor(key)
                tensors[key] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
    except Exception as exc:  # safetensors raises its own error types on corrupt files
        raise ModelLoadError(f"{path}: unreadable safetensors file: {exc}") from exc
    return tensors


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: unreadable: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return data


# -- building ------------------------------------------------------------------------------------


@contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Create parameters on the meta device (buffers stay real) and skip weight init.

    Like accelerate's ``init_empty_weights``, this patches ``nn.Module.register_parameter``
    while the model is built, so do not build other modules in other threads meanwhile.
    """
    original = nn.Module.register_parameter

    def register(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        original(module, name, param)
        if param is not None:
            p = module._parameters[name]
            assert p is not None
            module._parameters[name] = nn.Parameter(p.to("meta"), requires_grad=p.requires_grad)

    nn.Module.register_parameter = register  # type: ignore[method-assign,assignment]
    try:
        with no_init_weights():
            yield
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]


def _fill(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    where: Path,
    extra_unexpected: list[str],
    extra_missing: list[str],
) -> None:
    """Assign ``state`` into ``model`` strictly (names, shapes); ModelLoadError otherwise."""
    expected = model.state_dict(keep_vars=True)
    unexpected = sorted(extra_unexpected + [k for k in state if k not in expected])
    missing = sorted(extra_missing + [k for k in expected if k not in state])
    if unexpected or missing:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors: {_shorten(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensors: {_shorten(unexpected)}")
        raise ModelLoadError(f"{where}: checkpoint does not match the model: " + "; ".join(parts))
    bad = [
        f"{k} {tuple(v.shape)} (model wants {tuple(expected[k].shape)})"
        for k, v in state.items()
        if tuple(v.shape) != tuple(expected[k].shape)
    ]
    if bad:
        raise ModelLoadError(f"{where}: tensor shapes do not match the config: {_shorten(bad)}")
    model.load_state_dict(state, strict=False, assign=True)
    left = [n for n, p in model.named_parameters() if p.is_meta]
    if left:
        raise ModelLoadError(f"{where}: parameters left unfilled: {_shorten(left)}")


def _shorten(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    if dtype is None or dtype == "auto":
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPE_NAMES[dtype.lower()]
    except KeyError:
        raise ModelLoadError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPE_NAMES)})") from None


def _load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        if (folder / "tokenizer.json").is_file():
            # tokenizer.json is the exact pipeline the reference used; model-specific classes
            # (picked from config.json) may rebuild it from vocab + merges instead.
            return PreTrainedTokenizerFast.from_pretrained(folder, local_files_only=True)
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{folder}: could not load the tokenizer: {exc}") from exc


def _finish(
    model: Any, processor: DeepEncoderProcessor, device: str | torch.device | None, gen_dir: Path
) -> Any:
    """Eval mode, generation defaults (the folder's generation_config.json, then the
    tokenizer's EOS / PAD where it names none), device."""
    from transformers import GenerationConfig

    if (gen_dir / "generation_config.json").is_file():
        try:
            model.generation_config = GenerationConfig.from_pretrained(gen_dir)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{gen_dir}/generation_config.json: {exc}") from exc
    gen = model.generation_config
    tok = processor.tokenizer
    if gen.eos_token_id is None:
        gen.eos_token_id = tok.eos_token_id
    if gen.pad_token_id is None:
        gen.pad_token_id = tok.pad_token_id
    model.eval()
    if device is not None:
        model.to(torch.device(device))
    return model


def load_deepseek_ocr_v1(
    folder: str | Path,
    *,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    attn_implementation: str = "sdpa",
) -> tuple[DeepseekOcrV1ForCausalLM, DeepEncoderProcessor]:
    """(model, processor) from a ``deepseek-ai/DeepSeek-OCR`` folder (config.json + safetensors)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"{folder}: no such folder")
    raw = _read_json(folder / "config.json")
    if raw.get("model_type") not in _V1_MODEL_TYPES:
        raise ModelLoadError(
            f"{folder}: model_type {raw.get('model_type')!r} is not a DeepSeek-OCR v1 checkpoint"
        )
    tokenizer = _load_tokenizer(folder)
    processor = DeepEncoderProcessor(tokenizer, template="plain")
    try:
        config = DeepseekOcrV1Config.from_reference(
            {**raw, "image_token_id": processor.image_token_id}
        )
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(f"{folder}/config.json: {exc}") from exc
    config.text._attn_implementation = attn_implementation
    tensors = read_safetensors(folder, _resolve_dtype(dtype))
    state, unexpected, missing = v1_from_reference(tensors, config.text.n_routed_experts)
    with _parameters_on_meta():
        model = DeepseekOcrV1ForCausalLM(config)
    _fill(model, state, folder, unexpected, missing)
    return _finish(model, processor, device, folder), processor


def _deepocr_encoder_config(folder: Path) -> DeepEncoderConfig:
    for candidate in (folder / "config.json", folder / "vision_tower" / "config.json"):
        if candidate.is_file():
            block = _read_json(candidate).get("deepencoder")
            if block is not None:
                return DeepEncoderConfig.from_dict(block)
    return DeepEncoderConfig()


def _vision_tensors(folder: Path, dtype: torch.dtype) -> tuple[dict[str, torch.Tensor], str]:
    """SAM + CLIP tensors, from inside ``folder`` only: the file the top config's
    ``mm_vision_tower`` names (relative to the folder, as VILA's SAMCLIP loads it; a path from
    the training machine is looked up by its last two parts, ``sam_clip_ckpt/<file>``), else
    ``vision_tower/``, else ``sam_clip_ckpt/``."""
    top = folder / "config.json"
    named = _read_json(top).get("mm_vision_tower") if top.is_file() else None
    root = folder.resolve()
    if isinstance(named, str) and named.endswith(".safetensors"):
        given = Path(named)
        for candidate in (folder / given, folder / given.parent.name / given.name):
            path = candidate.resolve()
            if root in path.parents and path.is_file():
                return _read_file(path, dtype), path.relative_to(root).as_posix()
    for sub in ("vision_tower", "sam_clip_ckpt"):
        if (folder / sub).is_dir():
            return read_safetensors(folder / sub, dtype), sub
    raise ModelLoadError(
        f"{folder}: no SAM + CLIP weights: mm_vision_tower names {named!r}, which is not a file "
        "in the folder, and there is no vision_tower/ or sam_clip_ckpt/ sub-folder (DeepOCR "
        "ships them separately, as pkulium/sam_clip_ckpt: put its safetensors in vision_tower/)"
    )


def load_deepocr(
    folder: str | Path,
    *,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    attn_implementation: str = "sdpa",
) -> tuple[DeepOcrForCausalLM, DeepEncoderProcessor]:
    """(model, processor) from a released DeepOCR folder (``llm/``, ``mm_projector/``, vision)."""
    from transformers import Qwen2Config

    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"{folder}: no such folder")
    llm_dir, proj_dir = folder / "llm", folder / "mm_projector"
    for sub in (llm_dir, proj_dir):
        if not sub.is_dir():
            raise ModelLoadError(f"{folder}: not a DeepOCR folder (no {sub.name}/)")
    torch_dtype = _resolve_dtype(dtype)
    tokenizer = _load_tokenizer(llm_dir)
    processor = DeepEncoderProcessor(tokenizer, template="qwen2")
    try:
        text = Qwen2Config.from_pretrained(llm_dir, local_files_only=True)
        config = DeepOcrConfig(
            text_config=text,
            deepencoder=_deepocr_encoder_config(folder).to_dict(),
            image_token_id=processor.image_token_id,
        )
    except (ValueError, TypeError) as exc:
        raise ModelLoadError(f"{folder}: bad config: {exc}") from exc
    config.text._attn_implementation = attn_implementation

    state: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for name, t in read_safetensors(llm_dir, torch_dtype).items():
        if name.startswith(("model.", "lm_head.")):
            state["llm." + name] = t
        else:
            unexpected.append(f"llm/{name}")
    proj_names = {
        "layers.weight": "projector.weight",
        "layers.bias": "projector.bias",
        "image_newline": "image_newline",
        "view_seperator": "view_separator",
    }
    for name, t in read_safetensors(proj_dir, torch_dtype).items():
        key = name.removeprefix("mm_projector.")
        if key in proj_names:
            state[proj_names[key]] = t
        else:
            unexpected.append(f"mm_projector/{name}")
    vision, where = _vision_tensors(folder, torch_dtype)
    skipped = 0
    for name, t in vision.items():
        if IGNORABLE.search(name):
            continue
        # VILA reads SAM + CLIP out of a DeepSeek-OCR-style file by prefix; the rest of such a
        # file (its 1280-wide decoder, projector, newline/separator) is known and unused.
        if _DEEPSEEK_OCR_REST.match(name):
            skipped += 1
            continue
        prefix = (
            name[: name.find("sam_model.")]
            if "sam_model." in name
            else (name[: name.find("vision_model.")] if "vision_model." in name else None)
        )
        if prefix is None or not map_deepencoder(
            name, t, prefix + "sam_model.", prefix + "vision_model.", state
        ):
            unexpected.append(f"{where}/{name}")
    if skipped:
        log.info("%s: %d non-vision tensors in %s not used by DeepOCR", folder, skipped, where)
    # Small Qwen2 models share the output head with the embeddings: no lm_head in the file.
    tied = config.text.tie_word_embeddings and "llm.lm_head.weight" not in state
    if tied and "llm.model.embed_tokens.weight" in state:
        state["llm.lm_head.weight"] = state["llm.model.embed_tokens.weight"]
    with _parameters_on_meta():
        model = DeepOcrForCausalLM(config)
    _fill(model, state, folder, unexpected, [])
    return _finish(model, processor, device, llm_dir), processor
