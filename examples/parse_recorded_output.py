"""Parse recorded grounded DeepSeek-OCR output for one page and print its blocks.

    python examples/parse_recorded_output.py [OUTPUT.txt [PAGE_WIDTH PAGE_HEIGHT]]

Without arguments it uses the bundled sample (a US-Letter page, 612 x 792 points).
"""

from __future__ import annotations

import sys
from pathlib import Path

from deepocr_loaders import Document
from deepocr_loaders.grounding import build_page
from deepocr_loaders.samples import sample_grounded_output


def main() -> None:
    raw = Path(sys.argv[1]).read_text(encoding="utf-8") if len(sys.argv) > 1 else None
    width, height = (float(sys.argv[2]), float(sys.argv[3])) if len(sys.argv) > 3 else (612, 792)
    page = build_page(raw or sample_grounded_output(), index=0, width=width, height=height)
    for block in page.blocks:
        box = (
            "no box"
            if block.bbox is None
            else "({:.0f}, {:.0f}, {:.0f}, {:.0f}) pt".format(*block.bbox.as_tuple())
        )
        print(f"{block.order:2} {block.kind.value:12} {box:28} {block.plain_text[:50]!r}")
    print(f"page status: {page.status.value}")
    doc = Document(source=sys.argv[1] if raw else "sample", pages=[page])
    print(doc.to_markdown()[:400])


if __name__ == "__main__":
    main()
