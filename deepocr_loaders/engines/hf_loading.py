"""Loading transformers models for the model engines: hub id or local folder, safetensors only,
never remote code; device and dtype selection. Shared by the DeepSeek-OCR family engines.

Pickle checkpoints (``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``) can run arbitrary code when
loaded, so a folder or hub repo that only has those is refused with :class:`ModelLoadError`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelLoadError

__all__ = [
    "DevicePlan",
    "folder_fingerprint",
    "load_processor",
    "load_safetensors_model",
    "plan_device",
    "resolve_model_dir",
]

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# Everything a model folder needs except pickle weights: what a hub download fetches.
_ALLOW_PATTERNS = [
    "*.json",
    "*.safetensors",
    "*.txt",
    "*.model",
    "*.jinja",
    "*.tiktoken",
]


def _looks_like_hub_id(model: str) -> bool:
    parts = model.split("/")
    return len(parts) == 2 and all(parts) and not model.startswith((".", "/", "~"))


def check_safetensors_folder(folder: Path) -> None:
    """Raise :class:`ModelLoadError` unless ``folder`` holds safetensors weights.

    Sub-folders count: some releases (DeepOCR) keep their parts in ``llm/``, ``mm_projector/``.
    """
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    if any(n.endswith(".safetensors") for n in names):
        return
    pickles = sorted(n for n in names if n.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise ModelLoadError(
            f"{folder}: only pickle checkpoints ({', '.join(pickles)}); refusing to load them "
            "(pickle can run arbitrary code). Convert the weights to safetensors first."
        )
    raise ModelLoadError(f"{folder}: no model weights (*.safetensors) found")


def resolve_model_dir(
    model: str | os.PathLike[str],
    *,
    revision: str | None = None,
    local_files_only: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
) -> Path:
    """A local folder with config and safetensors weights for ``model`` (a folder or hub id).

    Hub downloads fetch configs, tokenizer files and ``*.safetensors`` only, never pickles.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        check_safetensors_folder(path)
        return path
    name = str(model)
    if not _looks_like_hub_id(name):
        raise ModelLoadError(f"{name}: no such folder, and not a hub id (owner/name)")
    try:
        from huggingface_hub import snapshot_download

        folder = Path(
            snapshot_download(
                name,
                revision=revision,
                cache_dir=None if cache_dir is None else Path(cache_dir),
                local_files_only=local_files_only,
                token=token,
                allow_patterns=_ALLOW_PATTERNS,
            )
        )
    except Exception as exc:  # network, auth, missing repo, offline mode: one error type
        raise ModelLoadError(f"{name}: could not fetch from the hub: {exc}") from exc
    if not any(folder.rglob("*.safetensors")):
        raise ModelLoadError(
            f"{name}: the hub repo has no *.safetensors weights; pickle checkpoints are refused"
        )
    return folder


def folder_fingerprint(folder: Path) -> str:
    """A short hash of a model folder's config and weight files (names, sizes, mtimes): changes
    when the weights do, without reading gigabytes. Used in page-cache keys."""
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*.json")) + sorted(folder.rglob("*.safetensors")):
        st = path.stat()
        h.update(f"{path.relative_to(folder).as_posix()}:{st.st_size}:{st.st_mtime_ns};".encode())
        if path.suffix == ".json" and st.st_size < 1 << 20:
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def read_model_type(folder: Path) -> str:
    """``model_type`` from ``folder/config.json`` (ModelLoadError when unreadable)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{folder}: unreadable config.json: {exc}") from exc
    return str(config.get("model_type", ""))


@dataclass(frozen=True)
class DevicePlan:
    """Where and how a model runs."""

    device: torch.device
    dtype: torch.dtype
    attn_implementation: str | dict[str, str] | None


#: dtype names accepted wherever a dtype is given as text.
DTYPE_NAMES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def _pick_device(device: str | torch.device | None) -> torch.device:
    if device is not None and str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_attention(
    requested: str | dict[str, str] | None, device: torch.device
) -> str | dict[str, str] | None:
    """``"auto"``: flash-attention 2 for the text decoder on CUDA when ``flash_attn`` is
    installed (the vision tower stays on SDPA: SAM runs our folded attention, whose maskless
    SDPA call picks a fused kernel itself), else SDPA everywhere. Anything else is passed to
    transformers as given."""
    if requested != "auto":
        return requested
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return {"": "sdpa", "vision_config": "sdpa", "text_config": "flash_attention_2"}
    return "sdpa"


def plan_device(
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | dict[str, str] | None = "auto",
) -> DevicePlan:
    """CUDA (bf16 + SDPA, flash-attn for the decoder where installed), else MPS (bf16), else
    CPU (float32), unless told otherwise."""
    dev = _pick_device(device)
    if isinstance(dtype, str) and dtype != "auto":
        try:
            dt = DTYPE_NAMES[dtype.lower()]
        except KeyError:
            known = ", ".join(DTYPE_NAMES)
            raise ModelLoadError(f"unknown dtype {dtype!r} (known: {known})") from None
    elif isinstance(dtype, torch.dtype):
        dt = dtype
    elif dev.type == "cuda":
        dt = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    elif dev.type == "mps":
        dt = torch.bfloat16
    else:
        dt = torch.float32  # CPU bf16 matmuls are slow on most CPUs and lose precision
    return DevicePlan(dev, dt, resolve_attention(attn_implementation, dev))


def load_safetensors_model(
    folder: Path,
    model_class: Any,
    plan: DevicePlan,
    *,
    expect_model_type: str | None = None,
) -> Any:
    """``model_class.from_pretrained`` from a checked local folder: safetensors only, no remote
    code, eval mode, on ``plan.device``."""
    check_safetensors_folder(folder)
    if expect_model_type is not None:
        found = read_model_type(folder)
        if found != expect_model_type:
            raise ModelLoadError(
                f"{folder}: model_type {found!r}, expected {expect_model_type!r} (the native "
                "transformers conversion; remote-code checkpoints are not loaded)"
            )
    kwargs: dict[str, Any] = {
        "dtype": plan.dtype,
        "use_safetensors": True,
        "trust_remote_code": False,
        "local_files_only": True,
    }
    if plan.attn_implementation is not None:
        kwargs["attn_implementation"] = plan.attn_implementation
    try:
        model = model_class.from_pretrained(folder, **kwargs)
    except Exception as exc:  # transformers raises OSError/ValueError/RuntimeError variously
        if plan.attn_implementation in (None, "sdpa"):
            raise ModelLoadError(f"{folder}: could not load the model: {exc}") from exc
        # A kernel choice (flash-attn build, unsupported sub-model) must not cost the run.
        log.warning(
            "loading with attention %r failed (%s); using sdpa", plan.attn_implementation, exc
        )
        return load_safetensors_model(
            folder, model_class, DevicePlan(plan.device, plan.dtype, "sdpa")
        )
    return model.to(plan.device).eval()


def load_processor(folder: Path, processor_class: Any) -> Any:
    """The processor (tokenizer + image processor) saved with the model, no remote code."""
    try:
        return processor_class.from_pretrained(
            folder, trust_remote_code=False, local_files_only=True
        )
    except Exception as exc:
        raise ModelLoadError(f"{folder}: could not load the processor: {exc}") from exc
