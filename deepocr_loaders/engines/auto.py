"""``engine="auto"`` (the default): the text layer where it carries the page, OCR where it does not.

Each page goes through the OCR-need detector (:mod:`.ocr_need`). Pages that pass are built by the
text-layer engine; pages that need OCR go to the OCR engine; the results are merged in page
order, one page per input. Every page records the decision in its metadata:

* ``metadata["ocr_reason"]``: the reason code (``text_ok``, ``no_text``, ``image_page``...);
* ``metadata["ocr_decision"]``: the full decision (message, measurements);
* ``metadata["route"]``: ``"text-layer"``, ``"ocr"``, or ``"needs_ocr"`` when the page needed
  OCR and none could be run; such a page has status ``needs_ocr``, an error saying why, and the
  text layer's blocks where that text is usable. Pages are never dropped.

A damaged page (reason ``damaged``: MuPDF could not read all of its content) goes to OCR like the
others and keeps ``page.warnings`` naming the damage whichever route it takes: OCR reads the page
as MuPDF renders it, so what MuPDF lost is missing from the image too. Where the renderer refuses
the page (a repaired file whose content stream is gone) the OCR page would be an empty failure;
the page comes back ``needs_ocr`` with the text layer's surviving blocks and the OCR error instead.

The OCR engine is created on first need only. With ``ocr_engine`` left as None it is
``deepseek-ocr-2``, and only where a GPU is present (or ``ocr_on_cpu=True``): a 3B-parameter
model on a CPU would take minutes per page. A named engine that is missing or fails to load
(``EngineError``, ``ImportError``...) turns the pages that need it into ``needs_ocr`` pages with
the reason, rather than failing the document.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

from ..document import BlockKind, Page, PageStatus
from ..errors import EngineError
from . import get_engine, register_engine
from .base import Engine, PageInput, Task
from .ocr_need import OcrDecision, OcrNeedDetector, OcrReason
from .text_layer import TextLayerEngine, decision_metadata

__all__ = ["DEFAULT_OCR_ENGINE", "AutoEngine", "accelerator"]

log = logging.getLogger(__name__)

#: The OCR engine ``auto`` uses when none is named and a GPU is present.
DEFAULT_OCR_ENGINE = "deepseek-ocr-2"


def accelerator() -> str | None:
    """``"cuda"`` or ``"mps"`` when torch is installed and sees one, else None."""
    if importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch
    except Exception:  # a broken torch install means no accelerator, not a crash
        return None
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return None


@register_engine("auto")
class AutoEngine(Engine):
    """Text layer for pages that pass the OCR-need detector, an OCR engine for the rest.

    Options:

    * ``ocr_engine``: a registered engine name or an :class:`Engine`; None means
      ``deepseek-ocr-2`` where a GPU is present;
    * ``ocr_options``: constructor options of a named OCR engine; ``model`` joins them;
    * ``force_ocr``: OCR every page; ``ocr_formulas`` / ``ocr_tables``: OCR pages where the layout
      model finds a formula / a table;
    * ``ocr_on_cpu``: use the default OCR engine even without a GPU;
    * ``detector``: an :class:`OcrNeedDetector` with other thresholds;
    * ``batch_size``: pages decided, laid out and OCRed together;
    * anything else goes to :class:`TextLayerEngine` (``html_tables``, ``picture_text``,
      ``furniture``).
    """

    def __init__(
        self,
        *,
        ocr_engine: str | Engine | None = None,
        ocr_options: Mapping[str, Any] | None = None,
        model: str | None = None,
        force_ocr: bool = False,
        ocr_formulas: bool = False,
        ocr_tables: bool = False,
        ocr_on_cpu: bool = False,
        detector: OcrNeedDetector | None = None,
        batch_size: int = 8,
        **text_layer_options: Any,
    ) -> None:
        options = dict(ocr_options or {})
        if model is not None:
            if isinstance(ocr_engine, Engine):
                raise EngineError("model= is for a named OCR engine; configure the instance")
            options["model"] = model
        detector = detector or OcrNeedDetector()
        if force_ocr:
            detector = dataclasses.replace(detector, force=True)
        self.text = TextLayerEngine(detector=detector, batch_size=batch_size, **text_layer_options)
        self.ocr_options = options
        self.ocr_formulas = ocr_formulas
        self.ocr_tables = ocr_tables
        self.ocr_on_cpu = ocr_on_cpu
        self.batch_size = batch_size
        self._ocr_spec = ocr_engine
        self._ocr: Engine | None = None
        self._own_ocr = False
        self._ocr_unavailable: str | None = None

    def cache_identity(self) -> dict[str, Any]:
        """The text-layer settings plus which OCR engine (and options) pages may go to."""
        spec = self._ocr_spec
        if isinstance(spec, Engine):
            ocr: Any = spec.cache_identity()
        else:
            # Credentials change nothing in the output and must not reach the cache file.
            secret = ("api_key", "token", "password")
            options = {k: v for k, v in self.ocr_options.items() if k not in secret}
            ocr = {"engine": spec or DEFAULT_OCR_ENGINE, "options": options}
        return {
            "engine": self.name,
            "text": self.text.cache_identity(),
            "ocr": ocr,
            "ocr_formulas": self.ocr_formulas,
            "ocr_tables": self.ocr_tables,
        }

    # ------------------------------------------------------------------------------- engine API

    def run(self, pages: Iterable[PageInput], task: Task | str = Task.MARKDOWN) -> Iterator[Page]:
        it = iter(pages)
        while batch := list(islice(it, self.batch_size)):
            yield from self._run_batch(batch, task)

    def close(self) -> None:
        if self._ocr is not None and self._own_ocr:
            self._ocr.close()
        self._ocr = None
        self.text.close()

    @property
    def ocr_unavailable(self) -> str | None:
        """Why pages that need OCR were not OCRed (None while OCR works or was never needed)."""
        return self._ocr_unavailable

    # ---------------------------------------------------------------------------------- routing

    def _run_batch(self, batch: list[PageInput], task: Task | str) -> Iterator[Page]:
        decisions = {id(inp): self.text.decide(inp) for inp in batch}
        passing = [inp for inp in batch if not decisions[id(inp)].needs_ocr]
        pages: dict[int, Page] = {}
        for inp, page in zip(passing, self.text.convert(passing, decisions), strict=True):
            pages[id(inp)] = page  # convert() may have turned the decision into text_lost
            forced = self._forced_by_content(page)
            if forced is not None:
                decisions[id(inp)] = forced

        to_ocr = [inp for inp in batch if decisions[id(inp)].needs_ocr]
        ocr_failed: dict[int, str] = {}
        for key, page in self._ocr_pages(to_ocr, task).items():
            decision = decisions[key]
            if decision.reason is OcrReason.DAMAGED and page.status is PageStatus.FAILED:
                # The renderer refuses content MuPDF lost: keep what the text layer still reads.
                ocr_failed[key] = f"OCR failed: {page.error or 'no reason given'}"
                continue
            page.metadata.update(decision_metadata(decision, "ocr"))
            page.metadata["ocr_engine"] = page.engine or (self._ocr.name if self._ocr else "")
            page.warnings.extend(w for w in decision.warnings if w not in page.warnings)
            pages[key] = page

        missing = [inp for inp in to_ocr if pages.get(id(inp)) is None or _is_text(pages[id(inp)])]
        if missing:
            pages.update(self._fallback(missing, decisions, pages, ocr_failed))
        for inp in batch:
            yield pages[id(inp)]

    def _forced_by_content(self, page: Page) -> OcrDecision | None:
        """OCR asked for pages where the layout model found formulas or tables."""
        if not page.ok:
            return None
        for wanted, kind, reason, what in (
            (self.ocr_formulas, BlockKind.EQUATION, OcrReason.FORMULAS, "formula"),
            (self.ocr_tables, BlockKind.TABLE, OcrReason.TABLES, "table"),
        ):
            n = sum(1 for b in page.blocks if b.kind is kind)
            if wanted and n:
                return OcrDecision.forced(
                    reason, f"page has {n} {what} region(s) and OCR was asked for {what}s"
                )
        return None

    def _fallback(
        self,
        inputs: Sequence[PageInput],
        decisions: dict[int, OcrDecision],
        done: dict[int, Page],
        why: Mapping[int, str] | None = None,
    ) -> dict[int, Page]:
        """``needs_ocr`` pages for inputs no OCR engine handled, with usable text-layer blocks;
        ``why`` gives some inputs (by id) their own reason for not being OCRed."""
        note = f"not OCRed: {self._ocr_unavailable or 'no OCR engine available'}"
        why = why or {}
        out: dict[int, Page] = {}
        fresh = [inp for inp in inputs if id(inp) not in done]
        groups: dict[str, list[PageInput]] = {}
        for inp in fresh:
            reason = why.get(id(inp))
            groups.setdefault(f"not OCRed: {reason}" if reason else note, []).append(inp)
        for group_note, group in groups.items():
            converted = self.text.convert(group, decisions, not_ocred=group_note)
            for inp, page in zip(group, converted, strict=True):
                out[id(inp)] = page
        for inp in inputs:
            if id(inp) in done:  # laid out already, then routed to OCR by its content
                page = done[id(inp)]
                decision = decisions[id(inp)]
                page.status = PageStatus.NEEDS_OCR
                page.error = f"{decision.message}; {note}"
                page.metadata.update(decision_metadata(decision, "needs_ocr"))
                out[id(inp)] = page
        return out

    def _ocr_pages(self, inputs: list[PageInput], task: Task | str) -> dict[int, Page]:
        """OCR ``inputs``; keyed by ``id(input)``, only for inputs the engine returned."""
        if not inputs:
            return {}
        engine = self._acquire_ocr()
        if engine is None:
            return {}
        out: dict[int, Page] = {}
        name = engine.name or type(engine).__name__
        try:
            results = engine.run(iter(inputs), task)
            for inp in inputs:
                page = next(results, None)
                if page is None:
                    log.warning("OCR engine %s returned fewer pages than it was given", name)
                    break
                if page.index != inp.index:
                    raise EngineError(f"returned page {page.index + 1}, expected {inp.index + 1}")
                out[id(inp)] = page
        except Exception as exc:  # a broken OCR engine must not cost the text-layer pages
            log.exception("OCR engine %s failed", name)
            self._ocr_unavailable = f"OCR engine {name!r} failed: {type(exc).__name__}: {exc}"
        return out

    def _acquire_ocr(self) -> Engine | None:
        """The OCR engine, created on first use; None (with the reason kept) if there is none."""
        if self._ocr is not None or self._ocr_unavailable is not None:
            return self._ocr
        spec = self._ocr_spec
        if isinstance(spec, Engine):
            self._ocr = spec
            return spec
        name = spec or DEFAULT_OCR_ENGINE
        if spec is None and not self.ocr_on_cpu and accelerator() is None:
            self._ocr_unavailable = (
                f"no GPU for the default OCR engine {name!r} "
                "(pass ocr_engine=... or ocr_on_cpu=True to OCR anyway)"
            )
            log.warning("auto: %s", self._ocr_unavailable)
            return None
        try:
            self._ocr = get_engine(name, **self.ocr_options)
        except Exception as exc:  # EngineError, ImportError, ModelLoadError, OSError...
            self._ocr_unavailable = f"OCR engine {name!r} unavailable: {type(exc).__name__}: {exc}"
            log.warning("auto: %s", self._ocr_unavailable)
            return None
        self._own_ocr = True
        return self._ocr


def _is_text(page: Page) -> bool:
    """A page the text-layer engine built (so not an OCR result)."""
    return page.metadata.get("route") != "ocr"
