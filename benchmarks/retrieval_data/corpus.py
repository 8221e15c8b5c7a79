"""A small retrieval corpus with real structure, generated with PyMuPDF (no binaries committed).

Two documents are typeset by a tiny flow layout that records every block it places, so each PDF
comes with the :class:`~deepocr_loaders.Document` a perfect OCR engine would produce for it
(kinds, Markdown, HTML tables, boxes in points): the chunkers under test then differ only in how
they chunk. Paragraphs and tables flow over page breaks (tables repeat their header row on the
next page, as printed reports do), every page has a running header and a page-number footer.

Questions (all answers unique in the corpus) fall in five groups:

* ``table``: the answer is a cell of a long table that runs over several pages;
* ``heading``: the text is the same for every section but for the value, so only the section
  heading (a pump station's name) tells which chunk answers;
* ``spec``: a cell of a small per-section table whose rows do not name the section;
* ``caption``: which figure shows something (only the caption says);
* ``continued``: the answer sits after a page break in a paragraph that started on the
  previous page (assigned automatically from the layout).

``build_corpus(out)`` (``which="all"``, the default) adds the v2 documents, each in its own
module with its question groups described there: a look-alike booster-station manual of a
second utility (built by :func:`operations_manual`, same groups as the first manual: its
sections are distractors for the first manual's questions and vice versa), a two-column paper
(``docs_paper.py``: equations, captions, a nested results table, paragraphs over column and
page breaks), an annual report (``docs_annual.py``: nested statement tables, a long table
continued without a repeated header, notes, a risk list) and an inspection standard
(``docs_standard.py``: deep clause hierarchies with recurring clause titles, lists).
``which="v1"`` gives the first two documents only, unchanged. Answer strings are unique in
their document; the two station manuals share a few values (a year, an interval) by design,
and a year of the first manual also occurs in the paper's table, never in the same document,
and a hit only counts in the question's own document. Run this module to print the counts and
any answer that is not unique.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pymupdf

from deepocr_loaders import BBox, Block, BlockKind, Document, Page
from deepocr_loaders.document import blocks_to_markdown
from deepocr_loaders.tables import grid_to_markdown, html_table_to_grid

W, H = 612.0, 792.0
LEFT, RIGHT, TOP, BOTTOM = 56.0, 556.0, 64.0, 736.0
FONTS = {
    "title": ("hebo", 20.0),
    "h2": ("hebo", 14.0),
    "h3": ("hebo", 11.5),
    "h4": ("hebo", 10.5),
}
BODY = ("helv", 10.0)
CAPTION = ("heit", 9.0)
LEADING = 1.35


@dataclass
class Question:
    question: str
    answer: list[str]
    """Strings that must all appear in a chunk for it to answer."""
    page: int
    """0-based page where the answer is printed."""
    group: str
    doc: str


@dataclass
class CorpusDoc:
    name: str
    pdf: Path
    document: Document
    questions: list[Question] = field(default_factory=list)


def _wrap(text: str, font: tuple[str, float], width: float) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and pymupdf.get_text_length(trial, fontname=font[0], fontsize=font[1]) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    if line:
        lines.append(line)
    return lines


class Typesetter:
    """Flows elements down Letter pages, in one column or two, and records the blocks it draws."""

    def __init__(self, running_header: str) -> None:
        self.pdf = pymupdf.open()
        self.header = running_header
        self.pages: list[list[Block]] = []
        self.page: pymupdf.Page | None = None
        self.y = TOP
        self.frames: list[tuple[float, float]] = [(LEFT, RIGHT)]
        """Column frames (x0, x1); text flows down each in turn, then to the next page."""
        self.col = 0
        self.col_top = TOP
        self.new_page()

    @property
    def x0(self) -> float:
        return self.frames[self.col][0]

    @property
    def x1(self) -> float:
        return self.frames[self.col][1]

    def columns(self, n: int, gap: float = 20.0) -> None:
        """Switch to ``n`` columns from the current height down (a title above stays full width)."""
        width = (RIGHT - LEFT - gap * (n - 1)) / n
        self.frames = [
            (LEFT + i * (width + gap), LEFT + i * (width + gap) + width) for i in range(n)
        ]
        self.col = 0
        self.col_top = self.y

    def new_page(self) -> None:
        self.page = self.pdf.new_page(width=W, height=H)
        self.pages.append([])
        n = len(self.pages)
        self._line(self.header, LEFT, 40, ("helv", 8.0))
        # At least 300 pt wide (the v1 boxes), wider when a longer header needs it.
        right = max(300, LEFT + pymupdf.get_text_length(self.header, fontsize=8.0) + 2)
        self._add(BlockKind.PAGE_HEADER, self.header, BBox(LEFT, 32, right, 42), "header")
        footer = f"Page {n}"
        self._line(footer, 290, 760, ("helv", 8.0))
        self.y = TOP
        self.col = 0
        self.col_top = TOP
        self._footer = (footer, BBox(290, 752, 322, 762))

    def _break(self) -> None:
        """Go on in the next column, or on a new page after the last one."""
        if self.col + 1 < len(self.frames):
            self.col += 1
            self.y = self.col_top
        else:
            self._finish_page()
            self.new_page()

    def _finish_page(self) -> None:
        footer, box = self._footer
        self._add(BlockKind.PAGE_FOOTER, footer, box, "footer")

    def _line(self, text: str, x: float, y: float, font: tuple[str, float]) -> None:
        assert self.page is not None
        self.page.insert_text((x, y), text, fontname=font[0], fontsize=font[1])

    def _add(self, kind: BlockKind, text: str, box: BBox, label: str, **kw: object) -> Block:
        blocks = self.pages[-1]
        block = Block(
            kind=kind,
            text=text,
            page_index=len(self.pages) - 1,
            order=len(blocks),
            label=label,
            bbox=box,
            boxes=[box],
            **kw,  # type: ignore[arg-type]
        )
        blocks.append(block)
        return block

    def _need(self, height: float) -> None:
        if self.y + height > BOTTOM:
            self._break()

    def lines_left(self) -> int:
        """Body lines that still fit in the current column."""
        return int((BOTTOM - self.y) // (BODY[1] * LEADING))

    def heading(self, text: str, style: str) -> Block:
        font = FONTS[style]
        height = font[1] * LEADING
        self._need(height + 40)  # keep a heading with what follows
        self.y += 6
        self._line(text, self.x0, self.y + font[1], font)
        level = {"title": 1, "h2": 2, "h3": 3, "h4": 4}[style]
        kind = BlockKind.TITLE if level == 1 else BlockKind.HEADING
        box = BBox(self.x0, self.y, self.x1, self.y + height)
        self.y += height + 4
        return self._add(kind, f"{'#' * level} {text}", box, style, level=level)

    def paragraph(
        self, text: str, *, font: tuple[str, float] = BODY, kind: BlockKind = BlockKind.TEXT
    ) -> list[Block]:
        """Draw wrapped text; at a column or page end the rest goes on as a new block."""
        lines = _wrap(text, font, self.x1 - self.x0)
        step = font[1] * LEADING
        placed: list[Block] = []
        while lines:
            room = int((BOTTOM - self.y) // step)
            if room < 1:
                self._break()
                continue
            part, lines = lines[:room], lines[room:]
            top = self.y
            for line in part:
                self._line(line, self.x0, self.y + font[1], font)
                self.y += step
            box = BBox(self.x0, top, self.x1, self.y)
            placed.append(self._add(kind, " ".join(part), box, kind.value))
            if lines:
                self._break()
        self.y += 6
        return placed

    def equation(self, expr: str, number: int) -> Block:
        """A display equation, centred in the column with its number at the right margin."""
        font = ("tiit", 10.5)
        height = 24.0
        self._need(height)
        width = pymupdf.get_text_length(expr, fontname=font[0], fontsize=font[1])
        x = (self.x0 + self.x1 - width) / 2
        tag = f"({number})"
        self._line(expr, x, self.y + 15, font)
        tag_w = pymupdf.get_text_length(tag, fontname="tiro", fontsize=10.0)
        self._line(tag, self.x1 - tag_w, self.y + 15, ("tiro", 10.0))
        box = BBox(self.x0, self.y + 3, self.x1, self.y + height - 3)
        self.y += height
        md = f"$$\n{expr} \\tag{{{number}}}\n$$"
        return self._add(BlockKind.EQUATION, md, box, "equation")

    def table(
        self,
        header: list[str],
        rows: list[list[str]],
        keep: bool = False,
        repeat_header: bool = True,
    ) -> list[Block]:
        """A ruled table; rows that do not fit go on in the next column or page under a repeated
        header (``repeat_header=False``: without one, as many statements print them; ``keep``:
        move the whole table on instead). A row of one cell spans the table (a group label)."""
        row_h = 15.0
        if keep:
            self._need((len(rows) + 1) * row_h + 10)
        placed = []
        rest = rows
        first = True
        while True:
            room = int((BOTTOM - self.y) // row_h) - 1
            if room < 2:
                self._break()
                continue
            show_header = first or repeat_header
            if not show_header:
                room += 1
            part, rest = rest[:room], rest[room:]
            top = self.y
            width = (self.x1 - self.x0) / len(header)
            for r, row in enumerate([header, *part] if show_header else part):
                bold = (show_header and r == 0) or len(row) == 1
                font = ("hebo", 8.5) if bold else ("helv", 8.5)
                spans = (
                    [(0, len(header))] if len(row) == 1 else [(c, c + 1) for c in range(len(row))]
                )
                for cell, (c0, c1) in zip(row, spans, strict=True):
                    rect = pymupdf.Rect(
                        self.x0 + c0 * width, self.y, self.x0 + c1 * width, self.y + row_h
                    )
                    assert self.page is not None
                    self.page.draw_rect(rect, width=0.5)
                    self._line(cell, rect.x0 + 3, rect.y0 + 11, font)
                self.y += row_h
            head = "<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"
            body = "".join(
                f'<tr><td colspan="{len(header)}">{r[0]}</td></tr>'
                if len(r) == 1
                else "<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>"
                for r in part
            )
            html = f"<table>{head if show_header else ''}{body}</table>"
            md = grid_to_markdown(html_table_to_grid(html))
            box = BBox(self.x0, top, self.x1, self.y)
            placed.append(self._add(BlockKind.TABLE, md, box, "table", html=html))
            self.y += 8
            first = False
            if not rest:
                return placed
            self._break()

    def figure(self, caption: str, seed: int) -> tuple[Block, Block]:
        """A bar chart drawn in vector graphics, and its caption below it."""
        self._need(170)
        rng = random.Random(seed)
        top = self.y + 4
        # One column: the chart's original geometry (v1 PDFs unchanged); a column: narrower.
        if len(self.frames) == 1:
            x0, x1, step, bar = self.x0 + 60, self.x1 - 60, 46.0, 30.0
        else:
            x0, x1 = self.x0 + 10, self.x1 - 10
            step = (x1 - x0 - 20) / 8
            bar = step * 0.65
        assert self.page is not None
        self.page.draw_rect(pymupdf.Rect(x0, top, x1, top + 140), width=0.7)
        for i in range(8):
            h = rng.uniform(20, 130)
            x = x0 + 15 + i * step
            self.page.draw_rect(
                pymupdf.Rect(x, top + 140 - h, x + bar, top + 140),
                color=None,
                fill=(0.4, 0.5, 0.7),
            )
        fig = self._add(BlockKind.FIGURE, "", BBox(x0, top, x1, top + 140), "image")
        self.y = top + 146
        (cap,) = self.paragraph(caption, font=CAPTION, kind=BlockKind.CAPTION)
        cap.label = "image_caption"
        return fig, cap

    def caption_above(self, text: str) -> Block:
        self._need(120)
        (cap,) = self.paragraph(text, font=CAPTION, kind=BlockKind.CAPTION)
        cap.label = "table_caption"
        return cap

    def save(self, path: Path, name: str) -> Document:
        self._finish_page()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pdf.save(path, garbage=3, deflate=True)
        pages = [
            Page(
                index=i,
                width=W,
                height=H,
                blocks=blocks,
                markdown=blocks_to_markdown(blocks),
                engine="spec",
            )
            for i, blocks in enumerate(self.pages)
        ]
        import hashlib

        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        return Document(source=str(path), sha256=sha, pages=pages, metadata={"name": name})


FILLER = [
    "Operators record the reading in the shift log before the handover.",
    "The control room confirms every change over the radio channel.",
    "Work permits are issued by the duty engineer for each task.",
    "Lockout tags stay on the isolator until the task is signed off.",
    "Spare parts are drawn from the central store against a work order.",
    "Vibration is checked with the handheld meter at the bearing housing.",
    "Any leak at the gland is reported the same day.",
    "Grease is applied sparingly to avoid overheating the bearings.",
    "The standby pump is run for ten minutes each week to keep it ready.",
    "Readings outside the normal band are escalated to the asset manager.",
    "Cleaning of the wet well is scheduled with the network team.",
    "Safety showers and eyewash stations are tested monthly.",
]

STATIONS = [
    "Northgate", "Southmere", "Eastbrook", "Westholm", "Harbour Road", "Millrace",
    "Ridgeway", "Valley Farm", "Kestrel Point", "Ashby Lane",
]  # fmt: skip
VENDORS = ["Kestrel Supply", "Oakfield Pumps", "Brennan & Sons", "Hydrotec", "Marlow Seals"]


def _filler(rng: random.Random, n: int) -> str:
    return " ".join(rng.sample(FILLER, n))


def operations_manual(
    out: Path,
    rng: random.Random,
    *,
    utility: str = "Kestrel Water",
    facility: str = "Pump Station",
    stations: list[str] = STATIONS,
    name: str = "manual",
    filename: str = "operations_manual.pdf",
) -> CorpusDoc:
    """A station manual: one section per station with the same sub-sections (the defaults give
    the v1 manual; other arguments give look-alike manuals of other utilities)."""
    doc_name = name
    kind = facility.lower()
    ts = Typesetter(f"{utility} · {facility} Operations Manual · Rev. 4")
    questions: list[Question] = []
    facts: list[tuple[list[Block], str, str, str]] = []
    ts.heading(f"{facility} Operations Manual", "title")
    ts.paragraph(
        f"This manual sets out routine operation and maintenance of the district's {kind}s. "
        "Each station has its own section with specifications, a maintenance routine and alarm "
        "settings. " + _filler(rng, 4)
    )
    weeks = rng.sample(range(3, 40), len(stations))
    hours = rng.sample(range(20, 99), len(stations))
    flows = rng.sample(range(120, 990), len(stations))
    years = rng.sample(range(1961, 2022), len(stations))
    for n, name in enumerate(stations, start=1):
        ts.heading(f"{n}. {name} {facility}", "h2")
        ts.paragraph(
            f"The {name} station lifts treated water into the high-level network. "
            + _filler(rng, 3)
        )
        ts.heading(f"{n}.1 Specifications", "h3")
        kw = round(flows[n - 1] * rng.uniform(0.18, 0.3))
        rows = [
            ["Rated flow", f"{flows[n - 1]} L/s"],
            ["Duty head", f"{rng.randint(18, 95)} m"],
            ["Motor power", f"{kw} kW"],
            ["Commissioned", str(years[n - 1])],
        ]
        (spec,) = ts.table(["Parameter", "Value"], rows, keep=True)
        questions.append(
            Question(
                f"What is the rated flow of the {name} {kind}?",
                [f"{flows[n - 1]} L/s"], spec.page_index, "spec", doc_name,
            )
        )  # fmt: skip
        questions.append(
            Question(
                f"In which year was the {name} {kind} commissioned?",
                [str(years[n - 1])], spec.page_index, "spec", doc_name,
            )
        )  # fmt: skip
        ts.heading(f"{n}.2 Maintenance", "h3")
        part = f"SX-{rng.randint(1000, 9999)}"
        vendor = rng.choice(VENDORS)
        head = (
            _filler(rng, rng.randint(3, 6))
            + f" Inspect the impeller every {weeks[n - 1]} weeks and record the wear."
        )
        tail = (
            f" Replace the mechanical seal after {hours[n - 1]}00 running hours;"
            f" the replacement seal is part number {part} from {vendor}."
        )
        pool = [rng.choice(FILLER) for _ in range(60)]
        middle = [pool.pop(), pool.pop()]
        room = ts.lines_left()
        if room < 16:
            # Near the page end: pad so the seal sentence lands after the page break, as a
            # paragraph that runs over a page does in any real manual.
            while pool and len(_wrap(f"{head} {' '.join(middle)}", BODY, RIGHT - LEFT)) < room:
                middle.append(pool.pop())
        blocks = ts.paragraph(f"{head} {' '.join(middle)}{tail}")
        facts.append((blocks, f"every {weeks[n - 1]} weeks", name, "impeller"))
        facts.append((blocks, part, name, "seal"))
        ts.heading(f"{n}.3 Alarms", "h3")
        high = round(rng.uniform(2.0, 9.9), 2)
        for item in (
            f"High wet-well level alarm at {high} m.",
            f"Low suction pressure alarm at {rng.randint(40, 180)} kPa.",
            "Motor over-temperature trip from the winding sensor.",
        ):
            placed = ts.paragraph(f"- {item}", kind=BlockKind.LIST_ITEM)
            if "wet-well" in item:
                alarm = placed[0]
        ts.heading(f"{n}.4 Site access", "h3")
        code = f"K-{rng.randint(100, 999)}"
        head = f"Access to the {name} site is through the main gate on the service road."
        lead = " Keys for the valve chamber are kept in key safe"
        tail = f"{lead} {code} beside the gate."
        pool = [rng.choice(FILLER) for _ in range(60)]
        middle = [pool.pop()]
        room = ts.lines_left()
        if room < 26:
            # Pad until the key safe's code falls after the page break.
            while len(_wrap(f"{head} {' '.join(middle)}{lead}", BODY, RIGHT - LEFT)) <= room:
                middle.append(pool.pop())
        blocks = ts.paragraph(f"{head} {' '.join(middle)}{tail}")
        facts.append((blocks, code, name, "key"))
        questions.append(
            Question(
                f"At what wet-well level does the high level alarm sound at {name}?",
                [f"{high} m"], alarm.page_index, "heading", doc_name,
            )
        )  # fmt: skip
    pdf = out / filename
    document = ts.save(pdf, doc_name)
    for blocks, answer, name, what in facts:
        holder = next(b for b in blocks if answer in b.text)
        group = "continued" if holder is not blocks[0] else "heading"
        q = {
            "impeller": f"How often should the impeller be inspected at the {name} {kind}?",
            "seal": f"What is the part number of the replacement seal for the {name} {kind}?",
            "key": f"Which key safe holds the valve chamber keys at the {name} site?",
        }[what]
        questions.append(Question(q, [answer], holder.page_index, group, doc_name))
    return CorpusDoc(doc_name, pdf, document, questions)


SITES = [f"WQ-{i:03d}" for i in range(1, 91)]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun"]
MONTH_NAMES = dict(
    zip(MONTHS, ["January", "February", "March", "April", "May", "June"], strict=True)
)
TOPICS = [
    ("dissolved oxygen", "the Alder intake"),
    ("chlorine residual", "the Brook Lane reservoir"),
    ("water temperature", "the Fenwick treatment works"),
    ("nitrate concentration", "the Gorse Hill borehole"),
    ("conductivity", "the Marsh End spring"),
    ("manganese", "the Quarry Road main"),
]


def quality_report(out: Path, rng: random.Random) -> CorpusDoc:
    ts = Typesetter("Kestrel Water · Annual Water Quality Report 2025")
    questions: list[Question] = []
    ts.heading("Annual Water Quality Report 2025", "title")
    ts.heading("1. Introduction", "h2")
    ts.paragraph(
        "This report summarises the monitoring of raw and treated water across the supply area "
        "in the first half of 2025. Turbidity is reported for every monitoring site, and "
        "selected parameters are charted for key sources. " + _filler(rng, 3)
    )
    ts.heading("2. Turbidity by monitoring site", "h2")
    ts.paragraph(
        "Turbidity was sampled monthly at each site. Values are monthly means in NTU; the "
        "regulatory limit at the tap is 4 NTU."
    )
    ts.caption_above("Table 1: Monthly mean turbidity (NTU) by monitoring site, January to June")
    values = {s: [f"{rng.uniform(0.05, 3.99):.2f}" for _ in MONTHS] for s in SITES}
    blocks = ts.table(["Site", *MONTHS], [[s, *values[s]] for s in SITES])
    for site in rng.sample(SITES, 24):
        m = rng.randrange(len(MONTHS))
        value = values[site][m]
        row = "| " + " | ".join([site, *values[site]]) + " |"
        page = next(b.page_index for b in blocks if row in b.text)
        questions.append(
            Question(
                f"What was the mean turbidity at site {site} in {MONTH_NAMES[MONTHS[m]]}?",
                [site, value], page, "table", "quality",
            )
        )  # fmt: skip
    ts.heading("3. Source water trends", "h2")
    for k, (what, where) in enumerate(TOPICS, start=2):
        ts.paragraph(
            f"Figure {k} charts monthly results for one of the monitored sources. "
            + _filler(rng, 2)
        )
        caption = f"Figure {k}: Monthly {what} at {where}, January to June 2025"
        _, cap = ts.figure(caption, seed=k)
        questions.append(
            Question(
                f"Which figure shows the {what} measured at {where}?",
                [f"Figure {k}:"], cap.page_index, "caption", "quality",
            )
        )  # fmt: skip
    ts.heading("4. Discussion", "h2")
    for _ in range(3):
        ts.paragraph(_filler(rng, 6))
    pdf = out / "quality_report.pdf"
    return CorpusDoc("quality", pdf, ts.save(pdf, "quality"), questions)


BOOSTER_STATIONS = ["Alder Cross", "Birchfield", "Coldharbour", "Denholm", "Eskdale Road",
                    "Foxley", "Greywell", "Hatherton"]  # fmt: skip


def build_corpus(out: Path, seed: int = 7, which: str = "all") -> list[CorpusDoc]:
    """Typeset the corpus into ``out`` and return its documents with their questions.

    ``which="v1"``: the first two documents only (the question set of the first runs);
    ``"all"``: those and the v2 documents (a second utility's look-alike station manual, a
    two-column paper, an annual report and an inspection standard). Each v2 document draws
    from its own seeded generator, so the v1 documents are the same in both sets.
    """
    if which not in ("all", "v1"):
        raise ValueError(f"which must be 'all' or 'v1', not {which!r}")
    rng = random.Random(seed)
    docs = [operations_manual(out, rng), quality_report(out, rng)]
    if which == "v1":
        return docs
    # Imported here: the v2 modules import the typesetter from this module.
    from docs_annual import annual_report
    from docs_paper import research_paper
    from docs_standard import inspection_standard

    docs.append(
        operations_manual(
            out, random.Random(f"{seed}-booster"), utility="Fernmoor Water",
            facility="Booster Station", stations=BOOSTER_STATIONS, name="booster",
            filename="booster_manual.pdf",
        )
    )  # fmt: skip
    docs.append(research_paper(out, random.Random(f"{seed}-paper")))
    docs.append(annual_report(out, random.Random(f"{seed}-annual")))
    docs.append(inspection_standard(out, random.Random(f"{seed}-standard")))
    return docs


def answer_counts(corpus: list[CorpusDoc], doc: str | None = None) -> dict[str, int]:
    """How often each answer string occurs (as a substring, whitespace-normalised) in the
    corpus Markdown without page furniture (only in document ``doc`` when given); 1 means
    unique."""
    furniture = {BlockKind.PAGE_HEADER, BlockKind.PAGE_FOOTER}
    docs = [d for d in corpus if doc is None or d.name == doc]
    text = " ".join(
        " ".join(p.render_markdown(exclude=furniture).split())
        for d in docs
        for p in d.document.pages
    )
    return {a: text.count(" ".join(a.split())) for d in docs for q in d.questions for a in q.answer}


if __name__ == "__main__":
    here = Path(__file__).resolve().parent / "generated"
    corpus = build_corpus(here)
    for d in corpus:
        groups: dict[str, int] = {}
        for q in d.questions:
            groups[q.group] = groups.get(q.group, 0) + 1
        print(d.pdf, len(d.document.pages), "pages", len(d.questions), "questions", groups)
    # Key + value questions (a table row) need the pair in one chunk; only the key is unique.
    everywhere = answer_counts(corpus)
    for d in corpus:
        own = answer_counts(corpus, d.name)
        for q in d.questions:
            for a in q.answer[:1] if len(q.answer) > 1 else q.answer:
                if own[a] != 1 or everywhere[a] != 1:
                    print(
                        f"{d.name}: {q.question} -> {a!r}: {own[a]}x in its document, "
                        f"{everywhere[a]}x in the corpus"
                    )
