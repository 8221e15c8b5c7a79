"""The package's one error hierarchy: everything raised derives from :class:`DeepOCRError`."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CorruptFileError",
    "DeepOCRError",
    "EmptyDocumentError",
    "EngineError",
    "EngineOptionError",
    "ImageTooLargeError",
    "ModelLoadError",
    "PageRangeError",
    "PasswordError",
    "RenderError",
    "SourceError",
    "UnsupportedFormatError",
]


class DeepOCRError(Exception):
    """Base class of every exception raised by deepocr-loaders."""


class ConfigError(DeepOCRError, ValueError):
    """A bad argument or option (a DPI that is not a positive number, an option the engine does
    not take...); also a ``ValueError``, so existing ``except ValueError`` handlers still catch it.

    ``option`` names the offending argument where one is known.
    """

    def __init__(self, message: str, *, option: str | None = None) -> None:
        self.option = option
        super().__init__(message)


class SourceError(DeepOCRError):
    """A problem with an input file; says which file (and page, where one is known) and why."""

    def __init__(self, source: str, reason: str, *, page: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.page = page
        where = source if page is None else f"{source}, page {page + 1}"
        super().__init__(f"{where}: {reason}")


class UnsupportedFormatError(SourceError):
    """The bytes are neither a PDF nor a supported image (PNG, JPEG, TIFF)."""


class CorruptFileError(SourceError):
    """The file is truncated or damaged beyond what the PDF/image reader can repair."""


class EmptyDocumentError(SourceError):
    """The document opened but has no pages."""


class PasswordError(SourceError):
    """The PDF is encrypted and no password, or a wrong one, was given."""


class PageRangeError(SourceError):
    """A requested page range is malformed or outside the document."""


class ImageTooLargeError(SourceError):
    """An image exceeds the pixel bound that guards against decompression bombs."""


class RenderError(SourceError):
    """A single page could not be rasterised."""


class EngineError(DeepOCRError):
    """An engine could not be created or run (unknown name, missing extra, bad options)."""


class EngineOptionError(ConfigError, EngineError):
    """An engine option with a bad value (``batch_size=0``, an unknown ``scheduler``): a
    :class:`ConfigError` naming the option, and an :class:`EngineError` as before."""


class ModelLoadError(EngineError):
    """Model weights could not be loaded (missing files, pickle-only checkpoint, wrong config)."""
