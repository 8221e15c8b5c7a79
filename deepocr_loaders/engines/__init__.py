"""Engines by name: ``get_engine("deepseek-ocr-2", model=...)``; engines register themselves."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from importlib import import_module
from typing import Any, TypeVar

from ..errors import ConfigError, EngineError
from .base import PROMPTS, Engine, PageInput, Task, prompt_for

__all__ = [
    "PROMPTS",
    "Engine",
    "PageInput",
    "Task",
    "available_engines",
    "get_engine",
    "prompt_for",
    "register_engine",
    "register_lazy",
]

_E = TypeVar("_E", bound=type[Engine])

_REGISTRY: dict[str, type[Engine]] = {}
# Engines whose modules import heavy optional dependencies load on first use.
_LAZY: dict[str, str] = {}


def register_engine(name: str) -> Callable[[_E], _E]:
    """Class decorator registering an engine under ``name``."""

    def decorate(cls: _E) -> _E:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def register_lazy(name: str, module: str) -> None:
    """Register ``name`` as provided by ``module``, imported on first use."""
    _LAZY[name] = module


def available_engines() -> list[str]:
    """Names that :func:`get_engine` accepts."""
    return sorted(set(_REGISTRY) | set(_LAZY))


_UNEXPECTED = re.compile(r"unexpected keyword argument '([^']+)'")


def get_engine(name: str, **options: Any) -> Engine:
    """A new engine instance by name.

    Args:
        name: a registered engine name (:func:`available_engines`).
        **options: the engine constructor's keyword arguments. One it does not take, or a
            required one left out, raises :class:`ConfigError` naming it.
    """
    if name not in _REGISTRY and name in _LAZY:
        import_module(_LAZY[name])
    try:
        cls = _REGISTRY[name]
    except KeyError:
        known = ", ".join(available_engines()) or "none"
        raise EngineError(f"unknown engine {name!r} (known: {known})") from None
    _check_options(name, cls, options)
    try:
        return cls(**options)
    except TypeError as exc:
        # An engine that passes options on (auto -> text layer) meets a bad one inside.
        if m := _UNEXPECTED.search(str(exc)):
            raise ConfigError(
                f"engine {name!r} takes no option {m.group(1)!r}", option=m.group(1)
            ) from exc
        raise


def _check_options(name: str, cls: type[Engine], options: dict[str, Any]) -> None:
    """ConfigError for an option ``cls`` does not take or a required one missing."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # no signature to read: the constructor decides
        return
    named = {
        p.name: p for p in params.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(named))
        if unknown:
            raise ConfigError(f"engine {name!r} takes no option {unknown[0]!r}", option=unknown[0])
    missing = [n for n, p in named.items() if p.default is p.empty and n not in options]
    if missing:
        names = ", ".join(missing)
        raise ConfigError(f"engine {name!r} needs the option {names}", option=names)


# Built-in engines register on import; the others load on first use (model engines import torch).
from . import recorded as _recorded  # noqa: E402, F401

register_lazy("text-layer", "deepocr_loaders.engines.text_layer")
register_lazy("auto", "deepocr_loaders.engines.auto")
register_lazy("deepseek-ocr-2", "deepocr_loaders.engines.deepseek_ocr2")
register_lazy("openai", "deepocr_loaders.engines.openai_client")
register_lazy("deepseek-ocr", "deepocr_loaders.engines.deepseek_ocr")
register_lazy("deepocr", "deepocr_loaders.engines.deepocr")
