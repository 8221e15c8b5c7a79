"""An asset inspection standard with deep numbered clauses (1 > 1.2 > 1.2.3).

Every equipment class has the same clause tree, and the clause "Inspection interval" recurs
under three parents in each class (routine inspection, thorough examination, functional
testing); the clause text never names the class, so only the full heading path (class >
sub-clause > clause) tells which interval a paragraph sets. Question groups:

* ``deep-heading``: an interval or a register code; needs the class and the parent clause;
* ``list``: a value in one item of a class's list of acceptance criteria, or a defined term
  in the definitions list.
"""

from __future__ import annotations

import random
from pathlib import Path

from corpus import CorpusDoc, Question, Typesetter

from deepocr_loaders import Block, BlockKind

FILLER = [
    "The duty holder shall keep a written scheme of examination for every item in scope.",
    "Findings shall be entered in the asset management system within five working days.",
    "Where a defect affects safety the item shall be taken out of service at once.",
    "The competent person shall be independent of the team that maintains the item.",
    "Access equipment and permits shall be arranged before the inspection starts.",
    "Photographs of any defect shall be attached to the inspection record.",
    "Temporary repairs shall be recorded and reviewed at the next inspection.",
    "The asset owner may shorten any interval where the condition of the item requires it.",
    "Inspections may be combined with planned maintenance to limit outages.",
    "Deviations from this standard require the written approval of the asset owner.",
    "Records shall state the condition grade on the five-point scale of Annex B.",
    "Consumables removed during an inspection shall be disposed of as controlled waste.",
]

# Equipment class -> acceptance criteria (name used in the question, text template, unit).
CLASSES: dict[str, list[tuple[str, str, str]]] = {
    "Centrifugal pumps": [
        ("bearing housing vibration", "Bearing housing vibration not above {v}", "mm/s"),
        ("gland leakage", "Gland leakage not above {v}", "drops per minute"),
        ("shaft end float", "Shaft end float not above {v}", "mm"),
    ],
    "Isolating valves": [
        ("operating torque", "Operating torque not above {v}", "N m"),
        ("seat leakage", "Seat leakage not above {v}", "mL/min"),
        ("spindle wear", "Spindle wear not above {v}", "mm"),
    ],
    "Pressure vessels": [
        ("wall thickness loss", "Wall thickness loss not above {v}", "percent of nominal"),
        ("relief valve set pressure", "Relief valve set pressure within {v}", "bar of rating"),
        ("weld pitting depth", "Weld pitting depth not above {v}", "mm"),
    ],
    "Low-voltage switchgear": [
        ("busbar joint temperature rise", "Busbar joint temperature rise not above {v}", "K"),
        ("insulation resistance", "Insulation resistance not below {v}", "megohm"),
        ("contact resistance", "Contact resistance not above {v}", "microhm"),
    ],
    "Service reservoirs": [
        ("roof membrane cracking", "Roof membrane crack width not above {v}", "mm"),
        ("hatch seal compression", "Hatch seal compression not below {v}", "percent"),
        ("sediment depth", "Sediment depth on the floor not above {v}", "mm"),
    ],
    "Chlorine dosing units": [
        ("dosing pump stroke deviation", "Dosing pump stroke deviation within {v}", "percent"),
        ("injector back-pressure", "Injector back-pressure not above {v}", "bar"),
        ("leak detector response", "Leak detector response within {v}", "seconds"),
    ],
    "Standby generators": [
        ("time to rated voltage", "Time to rated voltage not above {v}", "seconds"),
        ("coolant inhibitor strength", "Coolant inhibitor strength not below {v}", "percent"),
        ("fuel water content", "Fuel water content not above {v}", "ppm"),
    ],
    "Inlet screens": [
        ("bar spacing deviation", "Bar spacing deviation not above {v}", "mm"),
        ("rake motor current", "Rake motor current not above {v}", "A"),
        ("screenings compactor pressure", "Screenings compactor pressure not below {v}", "bar"),
    ],
}

DEFINITIONS = [
    ("competent person", "a person with the training, experience and authority to examine "
     "the equipment and to judge its fitness for continued service"),
    ("duty holder", "the manager named in the asset register as accountable for the "
     "safe operation of an item"),
    ("thorough examination", "a systematic and detailed examination of an item, including "
     "its safety devices, by a competent person"),
    ("functional test", "an operation of the item under controlled conditions that proves "
     "every protective function trips as designed"),
    ("routine inspection", "a visual check of an item in service, made without dismantling "
     "and recorded on the standard checklist"),
    ("condition grade", "the number from one (as new) to five (unserviceable) that records "
     "the observed state of an item"),
]  # fmt: skip


def _filler(rng: random.Random, n: int) -> str:
    return " ".join(rng.sample(FILLER, n))


def inspection_standard(out: Path, rng: random.Random) -> CorpusDoc:
    """Typeset the standard and return it with its questions."""
    ts = Typesetter("Fernmoor Water · Asset Inspection and Testing Standard AIS-3 · Issue 2")
    qs: list[Question] = []

    def ask(q: str, answer: str, blocks: list[Block], group: str) -> None:
        holder = next(b for b in blocks if answer in b.text)
        qs.append(Question(q, [answer], holder.page_index, group, "standard"))

    ts.heading("Asset Inspection and Testing Standard", "title")
    ts.heading("1 Scope", "h2")
    ts.paragraph(
        "This standard sets the minimum inspection, examination and testing regime for the "
        "operational assets of Fernmoor Water. Each equipment class in clauses 3 to 10 has the "
        "same structure; intervals are maxima and are counted from the last completed "
        "activity. " + _filler(rng, 4)
    )
    ts.heading("2 Definitions", "h2")
    ts.paragraph("For the purposes of this standard the following definitions apply.")
    for term, meaning in DEFINITIONS:
        blocks = ts.paragraph(f"- {term.capitalize()}: {meaning}.", kind=BlockKind.LIST_ITEM)
        ask(f"How does the inspection standard define a {term}?", meaning, blocks, "list")
    routine = rng.sample(range(15, 99), len(CLASSES))
    thorough = rng.sample(range(13, 60), len(CLASSES))
    # 40 weeks and more: the station manuals use shorter "every N weeks" intervals.
    tests = rng.sample(range(40, 53), len(CLASSES))
    for n, (cls, criteria) in enumerate(CLASSES.items(), start=3):
        low = cls[0].lower() + cls[1:]
        ts.heading(f"{n} {cls}", "h2")
        ts.heading(f"{n}.1 General", "h3")
        ts.paragraph(
            "This clause applies to every item of the class named in the clause heading, "
            "whatever its age or duty. " + _filler(rng, 5)
        )
        ts.heading(f"{n}.2 Routine inspection", "h3")
        ts.heading(f"{n}.2.1 Inspection interval", "h4")
        answer = f"{routine[n - 3]} days"
        blocks = ts.paragraph(
            "Items in this class shall receive a routine inspection at intervals not exceeding "
            f"{answer}. " + _filler(rng, 2)
        )
        ask(f"How often must {low} receive a routine inspection?", answer, blocks, "deep-heading")
        ts.heading(f"{n}.2.2 Acceptance criteria", "h4")
        ts.paragraph("An item passes the routine inspection when all of the following hold.")
        picks = rng.sample(range(3), 2)
        for k, (what, template, unit) in enumerate(criteria):
            value = f"{rng.uniform(1.0, 9.9):.2f} {unit}"
            item = template.format(v=value)
            blocks = ts.paragraph(f"- {item}.", kind=BlockKind.LIST_ITEM)
            if k in picks:
                q = f"What {what} is acceptable at the routine inspection of {low}?"
                ask(q, value, blocks, "list")
        ts.heading(f"{n}.3 Thorough examination", "h3")
        ts.heading(f"{n}.3.1 Inspection interval", "h4")
        answer = f"{thorough[n - 3]} months"
        blocks = ts.paragraph(
            "A thorough examination by a competent person shall be made at intervals not "
            f"exceeding {answer}. " + _filler(rng, 3)
        )
        q = f"What is the longest allowed interval between thorough examinations of {low}?"
        ask(q, answer, blocks, "deep-heading")
        ts.heading(f"{n}.3.2 Records", "h4")
        code = f"REG-{rng.randint(10000, 99999)}"
        blocks = ts.paragraph(
            f"Examination reports shall be filed under register code {code} and kept for the "
            "life of the item. " + _filler(rng, 2)
        )
        ask(
            f"Under which register code are thorough examination reports for {low} filed?",
            code, blocks, "deep-heading",
        )  # fmt: skip
        ts.heading(f"{n}.4 Functional testing", "h3")
        ts.heading(f"{n}.4.1 Inspection interval", "h4")
        answer = f"{tests[n - 3]} weeks"
        blocks = ts.paragraph(
            f"Protective functions shall be proved by a functional test every {answer}. "
            + _filler(rng, 2)
        )
        ask(f"How frequently must {low} be functionally tested?", answer, blocks, "deep-heading")
        ts.heading(f"{n}.4.2 Test method", "h4")
        ts.paragraph(_filler(rng, 6))
    pdf = out / "inspection_standard.pdf"
    return CorpusDoc("standard", pdf, ts.save(pdf, "standard"), qs)
