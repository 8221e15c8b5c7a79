"""An annual report and accounts of a water company.

Statement tables carry nested labels (a spanning segment or class row, then its line items,
which repeat from segment to segment), a long fixed-asset schedule runs over several pages
WITHOUT repeating its header row (the continuation pages start straight with data rows, to be
stitched to the table above), and notes to the accounts have small tables and paragraphs.
Question groups:

* ``nested-table``: a line item of one segment or class in a statement (the item's name recurs
  under every segment, so the segment row above matters); the answer is the value;
* ``stitched-table``: a row of the asset schedule (asset id and value in one chunk), most on
  pages that start without a header row;
* ``table``: a cell of a small table whose row names what is asked for (borrowings, balance
  sheet items);
* ``notes``: a value in a notes paragraph that names its topic only in the note's heading;
* ``list``: who owns a principal risk, from a bulleted list.
"""

from __future__ import annotations

import random
from pathlib import Path

from corpus import CorpusDoc, Question, Typesetter

from deepocr_loaders import Block, BlockKind

FILLER = [
    "The board reviewed performance against the regulatory outcomes at each meeting.",
    "Capital delivery remained on plan despite higher prices for steel and concrete.",
    "Customer satisfaction scores improved for the third year running.",
    "The company continued to invest in smart metering across the supply area.",
    "Operating costs were affected by energy prices in the first half of the year.",
    "Bad debt remained within the allowance agreed with the regulator.",
    "The audit committee met five times during the year.",
    "Amounts are stated in millions of pounds unless otherwise indicated.",
    "Comparative figures have been restated where the presentation changed.",
    "The directors consider the company a going concern for the next twelve months.",
    "Staff turnover fell as the apprenticeship programme expanded.",
    "Dividends were paid in line with the policy set out in the prior year.",
]

RISKS = [
    ("Drought and resource resilience", "Director of Water Resources"),
    ("Cyber security of operational technology", "Chief Information Security Officer"),
    ("Failure of a strategic trunk main", "Head of Network Resilience"),
    ("Pollution incidents from sewer overflows", "Director of Wastewater Services"),
    ("Pension scheme funding", "Group Treasurer and Pensions Lead"),
    ("Delivery of the capital programme", "Capital Delivery Programme Director"),
]

SEGMENTS = ["Water supply", "Wastewater", "Retail services", "Property and land"]
ITEMS = ["Revenue", "Operating costs", "Depreciation", "Operating profit"]
BALANCE = {
    "Non-current assets": ["Infrastructure assets", "Operational buildings", "Intangible assets"],
    "Current assets": ["Inventories", "Trade receivables", "Cash at bank"],
    "Liabilities": ["Trade payables", "Borrowings due within one year", "Deferred tax"],
}
INSTRUMENTS = [
    ("green bond", "2031"), ("index-linked bond", "2036"), ("sterling bond", "2029"),
    ("European Investment Bank loan", "2040"), ("revolving credit facility", "2027"),
    ("private placement notes", "2034"),
]  # fmt: skip
SITE_TYPES = ["Treatment works", "Pumping station", "Service reservoir", "Booster station",
              "Sewage works", "Depot"]  # fmt: skip
PLACES = ["Abbotsley", "Barrowden", "Chipping Fen", "Dalby Marsh", "Edgcote", "Fulbourn",
          "Gedney", "Hinton Ash", "Ickford", "Kelmarsh", "Langtoft", "Moulsoe"]  # fmt: skip


def _filler(rng: random.Random, n: int) -> str:
    return " ".join(rng.sample(FILLER, n))


def _money(rng: random.Random, lo: float, hi: float, used: set[str]) -> str:
    """A value with one decimal, unique in this document."""
    while True:
        value = f"{rng.uniform(lo, hi):.1f}"
        if value not in used:
            used.add(value)
            return value


def annual_report(out: Path, rng: random.Random) -> CorpusDoc:
    """Typeset the report and return it with its questions."""
    ts = Typesetter("Fernmoor Water plc · Annual Report and Accounts 2025")
    qs: list[Question] = []
    used: set[str] = set()

    def ask(q: str, answers: list[str], blocks: list[Block], group: str) -> None:
        holder = next(b for b in blocks if all(a in b.text for a in answers))
        qs.append(Question(q, answers, holder.page_index, group, "annual"))

    ts.heading("Annual Report and Accounts 2025", "title")
    ts.heading("1. Chair's statement", "h2")
    for _ in range(3):
        ts.paragraph(_filler(rng, 5))
    ts.heading("2. Strategic report", "h2")
    ts.heading("2.1 Principal risks", "h3")
    ts.paragraph("The board's principal risks, each with the executive who owns it, are:")
    for risk, owner in RISKS:
        blocks = ts.paragraph(f"- {risk}: owned by the {owner}.", kind=BlockKind.LIST_ITEM)
        ask(f"Who owns the risk of {risk[0].lower() + risk[1:]}?", [owner], blocks, "list")
    ts.heading("2.2 Financial review", "h3")
    for _ in range(2):
        ts.paragraph(_filler(rng, 6))

    ts.heading("3. Financial statements", "h2")
    ts.heading("3.1 Segment income statement", "h3")
    ts.caption_above("Table 3: Income statement by segment for the year to 31 March 2025 (GBP m)")
    rows: list[list[str]] = []
    cells: list[tuple[str, str, str, str]] = []
    for seg in SEGMENTS:
        rows.append([seg])
        for item in ITEMS:
            now, before = _money(rng, 5, 480, used), _money(rng, 5, 480, used)
            rows.append([item, now, before])
            cells += [(seg, item, "2025", now), (seg, item, "2024", before)]
    blocks = ts.table(["Line item", "2025", "2024"], rows, keep=True)
    for seg, item, year, value in rng.sample(cells, 12):
        q = f"What were the {item.lower()} of the {seg.lower()} segment in {year}?"
        ask(q, [value], blocks, "nested-table")
    ts.heading("3.2 Balance sheet", "h3")
    ts.caption_above("Table 4: Balance sheet at 31 March 2025 (GBP m)")
    rows, cells = [], []
    for group, items in BALANCE.items():
        rows.append([group])
        for item in items:
            now, before = _money(rng, 5, 990, used), _money(rng, 5, 990, used)
            rows.append([item, now, before])
            cells.append((group, item, now))
    blocks = ts.table(["Balance", "2025", "2024"], rows, keep=True)
    for _group, item, value in rng.sample(cells, 6):
        # The item names are unique in this statement: a plain table lookup.
        q = f"What was the balance of {item.lower()} at 31 March 2025?"
        ask(q, [value], blocks, "table")

    ts.heading("4. Notes to the accounts", "h2")
    ts.heading("Note 1 Accounting policies", "h3")
    for _ in range(2):
        ts.paragraph(_filler(rng, 6))
    ts.heading("Note 2 Borrowings", "h3")
    ts.paragraph("Borrowings at the year end comprised the following instruments.")
    rows = []
    for instrument, year in INSTRUMENTS:
        rate = f"{rng.uniform(0.8, 6.9):.3f}%"
        amount = _money(rng, 50, 900, used)
        rows.append([instrument[0].upper() + instrument[1:], year, rate, amount])
    blocks = ts.table(["Instrument", "Maturity", "Rate", "GBP m"], rows, keep=True)
    for (instrument, year), row in zip(INSTRUMENTS, rows, strict=True):
        ask(f"What interest rate does the {instrument} maturing in {year} carry?",
            [row[2]], blocks, "table")  # fmt: skip
    ts.heading("Note 3 Pensions", "h3")
    discount, inflation = f"{rng.uniform(4.0, 5.9):.2f}%", f"{rng.uniform(2.0, 3.9):.2f}%"
    members = f"{rng.randint(2, 9)},{rng.randint(100, 999)} members"
    blocks = ts.paragraph(
        f"The defined benefit scheme has {members} and is closed to new entrants. "
        + _filler(rng, 2)
        + f" The liabilities were valued with a discount rate of {discount} and an inflation "
        f"assumption of {inflation}. " + _filler(rng, 2)
    )
    ask("What discount rate was used to value the pension scheme liabilities?",
        [discount], blocks, "notes")  # fmt: skip
    ask("What inflation assumption was used for the pension scheme?", [inflation], blocks, "notes")
    ask("How many members does the defined benefit pension scheme have?", [members], blocks,
        "notes")  # fmt: skip
    ts.heading("Note 4 Taxation", "h3")
    charge = _money(rng, 10, 90, used)
    blocks = ts.paragraph(
        _filler(rng, 3) + f" The current tax charge for the year was GBP {charge} million, "
        "after capital allowances on the infrastructure programme."
    )
    ask("What was the current tax charge for the year?", [f"GBP {charge} million"], blocks,
        "notes")  # fmt: skip

    ts.heading("Note 5 Schedule of operational assets", "h3")
    ts.paragraph(
        "The schedule lists every operational site with its net book value at the year end. "
        "It continues over the following pages."
    )
    ts.caption_above("Table 5: Operational assets and net book value at 31 March 2025")
    rows = []
    ids = [f"FA-{n}" for n in rng.sample(range(1000, 9999), 230)]
    for asset in ids:
        place = rng.choice(PLACES)
        rows.append(
            [
                asset,
                f"{place} {rng.choice(SITE_TYPES).lower()}",
                f"grade {rng.randint(1, 5)}",
                f"{rng.randint(100, 99999):,}",
            ]
        )
    blocks = ts.table(
        ["Asset", "Site", "Condition", "Net book value (GBP k)"], rows, repeat_header=False
    )
    for row in rng.sample(rows, 30):
        ask(f"What is the net book value of asset {row[0]}?", [row[0], row[3]], blocks,
            "stitched-table")  # fmt: skip
    ts.heading("Note 6 Events after the reporting date", "h3")
    ts.paragraph(_filler(rng, 4))
    pdf = out / "annual_report.pdf"
    return CorpusDoc("annual", pdf, ts.save(pdf, "annual"), qs)
