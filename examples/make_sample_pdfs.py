"""Write a small folder of sample PDFs for the examples (generated here, nothing downloaded).

python examples/make_sample_pdfs.py [FOLDER]     (default: examples/sample_pdfs)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pymupdf

from deepocr_loaders.cli import make_sample_pdf

REPORTS = {
    "budget_2026.pdf": [
        ("Municipal Water Budget 2026", None),
        ("1. Revenue", "Water sales brought in 4.2 million euros, up 6 percent on 2025."),
        ("2. Spending", "Pipe renewal took 1.9 million euros; treatment energy 0.8 million."),
        ("3. Reserves", "The reserve fund closed the year at 2.5 million euros."),
    ],
    "maintenance_log.pdf": [
        ("Pump Station Maintenance Log", None),
        ("Station P-3", "Bearing replaced on 14 March after vibration alarms on the night shift."),
        ("Station P-7", "Impeller cleaned on 2 May; flow restored to 118 litres per second."),
    ],
}


def write_report(path: Path, sections: list[tuple[str, str | None]]) -> None:
    pdf = pymupdf.open()
    page = pdf.new_page(width=612, height=792)
    y = 72.0
    for heading, body in sections:
        if y > 650:
            page = pdf.new_page(width=612, height=792)
            y = 72.0
        size = 20 if body is None else 14
        page.insert_text((72, y), heading, fontsize=size, fontname="helv")
        y += size + 10
        if body:
            rect = pymupdf.Rect(72, y, 540, y + 200)
            page.insert_textbox(rect, (body + " ") * 5, fontsize=11, fontname="helv")
            y += 140
    pdf.save(path)


def main(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    make_sample_pdf(folder / "field_report.pdf")
    paths = [folder / "field_report.pdf"]
    for name, sections in REPORTS.items():
        write_report(folder / name, sections)
        paths.append(folder / name)
    return paths


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "sample_pdfs"
    for p in main(out):
        print(p)
