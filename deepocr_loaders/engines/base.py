"""The engine interface: page inputs in, :class:`~deepocr_loaders.document.Page` objects out.

An engine may batch, prefetch and reorder internally, but it yields exactly one ``Page`` per
input, in input order; the pipeline checks this and reports any page an engine failed to return.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from PIL import Image

from ..document import Page, PageStatus
from ..grounding import build_page
from ..sources import DEFAULT_DPI, RenderedPage, Source

__all__ = ["PROMPTS", "Engine", "PageInput", "Task", "prompt_for"]


class Task(str, Enum):
    """The DeepSeek-OCR family's prompts, by name. Free text is accepted wherever a Task is."""

    MARKDOWN = "markdown"
    """Markdown with grounding boxes: the default, and the only task that yields layout."""
    FREE_OCR = "free_ocr"
    PARSE_FIGURE = "parse_figure"
    DESCRIBE = "describe"
    LOCATE = "locate"
    TABLE = "table"
    FORMULA = "formula"
    MULTILINGUAL = "multilingual"


#: Prompts as the model cards and reference scripts give them (``<image>`` marks the page).
PROMPTS: dict[Task, str] = {
    Task.MARKDOWN: "<image>\n<|grounding|>Convert the document to markdown.",
    Task.FREE_OCR: "<image>\nFree OCR.",
    Task.PARSE_FIGURE: "<image>\nParse the figure.",
    Task.DESCRIBE: "<image>\nDescribe this image in detail.",
    Task.LOCATE: "<image>\nLocate <|ref|>{query}<|/ref|> in the image.",
    Task.TABLE: "<image>\n<|grounding|>Convert the table to markdown.",
    Task.FORMULA: "<image>\n<|grounding|>Convert the formula to LaTeX.",
    Task.MULTILINGUAL: "<image>\n<|grounding|>OCR this image.",
}


def prompt_for(task: Task | str, *, query: str | None = None) -> str:
    """The prompt text for a task name, or ``task`` itself when it is free text."""
    try:
        key = Task(task)
    except ValueError:
        text = str(task)
        return text if "<image>" in text else f"<image>\n{text}"
    prompt = PROMPTS[key]
    if key is Task.LOCATE:
        if not query:
            raise ValueError("Task.LOCATE needs a query: what to locate")
        prompt = prompt.format(query=query)
    return prompt


@dataclass
class PageInput:
    """One page handed to an engine: where it comes from, its size, and its image on demand."""

    source: Source
    index: int
    label: str
    width: float
    """Page width in PDF points."""
    height: float
    dpi: float = DEFAULT_DPI
    metadata: dict[str, Any] = field(default_factory=dict)
    _rendered: RenderedPage | None = field(default=None, repr=False)

    def render(self) -> RenderedPage:
        """Rasterise the page (once; later calls reuse the image)."""
        if self._rendered is None:
            self._rendered = self.source.render(self.index, self.dpi)
        return self._rendered

    @property
    def image(self) -> Image.Image:
        return self.render().image

    def parse_output(
        self, raw: str, *, engine: str | None = None, expect_eos: bool = False
    ) -> Page:
        """The page from the model's raw (grounded) output for it: blocks, Markdown, status."""
        return build_page(
            raw,
            index=self.index,
            width=self.width,
            height=self.height,
            label=self.label,
            dpi=self.dpi,
            engine=engine,
            expect_eos=expect_eos,
        )

    def failed(
        self, error: str, *, engine: str | None = None, status: PageStatus = PageStatus.FAILED
    ) -> Page:
        """The page as a result that carries only its status and why (nothing is dropped)."""
        return Page(
            index=self.index,
            width=self.width,
            height=self.height,
            label=self.label,
            dpi=self.dpi,
            status=status,
            error=error,
            engine=engine,
        )

    def release(self) -> None:
        """Drop the cached image so long documents keep memory flat."""
        self._rendered = None


class Engine(ABC):
    """Turns pages into :class:`Page` objects with blocks, Markdown and status."""

    #: Registry name, e.g. ``"deepseek-ocr-2"``.
    name: ClassVar[str] = ""

    @abstractmethod
    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        """Yield one ``Page`` per input, in input order. A page that fails is yielded with
        status ``failed`` (or ``truncated``) and its error, never skipped."""

    def cache_identity(self) -> dict[str, Any]:
        """What, besides the page and task, determines this engine's output (name, model, mode,
        settings): part of the page-cache key. Engines with settings must extend it."""
        return {"engine": self.name}

    def close(self) -> None:  # noqa: B027 - optional hook, most engines hold nothing to free
        """Free the model and any worker threads; the engine may not be used afterwards."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
