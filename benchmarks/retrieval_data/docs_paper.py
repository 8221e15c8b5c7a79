"""A two-column research paper on head loss and pumping energy in ageing water mains.

Typeset in two columns under a full-width title: paragraphs run from the foot of one column to
the head of the next and over pages, numbered display equations follow the sentence that
introduces them, figures and a results table carry captions. Question groups:

* ``equation``: how something is computed; the answer is a piece of the equation, and the
  question's words are in the sentence that introduces it, not in the equation;
* ``heading``: a value in a study network's paragraph, which names the network only in its
  sub-section heading;
* ``two-column``: the same, where the value sits after a column break in a paragraph that
  started at the foot of the previous column (assigned from the layout);
* ``continued``: the same, after a page break;
* ``caption``: which figure shows something (only the caption says);
* ``nested-table``: a cell of the results table, whose rows are age bands under spanning
  material rows, so the material is only in a group-label row above.
"""

from __future__ import annotations

import random
from pathlib import Path

from corpus import CorpusDoc, Question, Typesetter

from deepocr_loaders import Block

FILLER = [
    "Field data were screened for gaps and spikes before calibration.",
    "The hydraulic model was run at a fifteen-minute time step over a design week.",
    "Demand patterns were taken from district meter records for the same period.",
    "Pipe attributes came from the asset register and were checked against as-built drawings.",
    "Uncertainty in the logged pressures was about half a metre of head.",
    "Pumps were represented by their manufacturer curves, corrected for impeller trim.",
    "Tank levels were initialised from the telemetry at midnight on the first day.",
    "Valves whose status was unknown were assumed open, as in the utility's own model.",
    "Calibration stopped when the mean absolute pressure error fell below one metre.",
    "The same procedure was applied to every network to keep the results comparable.",
    "Customer complaints about low pressure were used as an independent check.",
    "Sensitivity runs varied each roughness class by twenty percent in turn.",
    "Energy tariffs were held constant so that only hydraulic effects were compared.",
    "Results are reported for the peak week unless stated otherwise.",
]

# (introducing sentence, equation, the question, the answer: a unique piece of the equation)
EQUATIONS = [
    ("The head loss along a pipe of length L and internal diameter D is given by the "
     "Darcy-Weisbach equation", "hf = f (L/D) V^2/(2g)",
     "How is the head loss along a pipe calculated from its length and diameter?",
     "f (L/D) V^2/(2g)"),
    ("For turbulent flow in hydraulically smooth pipes the friction factor follows the "
     "Blasius relation", "f = 0.316 Re^(-1/4)",
     "How is the friction factor obtained for turbulent flow in smooth pipes?",
     "0.316 Re^(-1/4)"),
    ("In rough pipes the friction factor is found from the explicit Swamee-Jain "
     "approximation", "f = 0.25 / [log10(ks/(3.7 D) + 5.74/Re^0.9)]^2",
     "Which explicit formula gives the friction factor in rough pipes?",
     "log10(ks/(3.7 D) + 5.74/Re^0.9)"),
    ("The Reynolds number of the flow, with the kinematic viscosity nu, is defined as",
     "Re = V D / nu", "How is the Reynolds number of the pipe flow defined?", "Re = V D / nu"),
    ("Local losses at bends, tees and fittings are expressed through a loss coefficient K as",
     "hm = K V^2/(2g)", "How are the local losses at bends and fittings expressed?",
     "hm = K V^2/(2g)"),
    ("The loss coefficient of a partly closed gate valve, with s the fraction of the stroke "
     "closed, was fitted as", "Kv = 0.19 (1 - s)^(-2.1)",
     "How does the loss coefficient of a partly closed gate valve depend on its closure?",
     "0.19 (1 - s)^(-2.1)"),
    ("The electrical power drawn by a pump lifting a flow Q against a head H is",
     "P = rho g Q H / (eta_p eta_m)".replace("_", ""),
     "How is the electrical power drawn by a pump calculated?", "rho g Q H / (etap etam)"),
    ("The specific energy, the energy used per cubic metre delivered, follows as",
     "Es = P / (3.6 Q)", "How is the specific energy per cubic metre pumped computed?",
     "Es = P / (3.6 Q)"),
    ("The roughness height of unlined ferrous mains was assumed to grow linearly with the "
     "pipe age t at a rate alpha", "ks(t) = k0 + alpha t",
     "How does the roughness height of unlined iron mains change with pipe age?",
     "ks(t) = k0 + alpha t"),
    ("Leakage was modelled with the fixed-and-variable-area discharge power law of the "
     "pressure P", "QL = cL P^N1",
     "Which law relates leakage to pressure in the network model?", "QL = cL P^N1"),
    ("Hazen-Williams coefficients from the utility models were converted to roughness "
     "heights with the fitted relation", "ks = 2150 C^(-2.9)",
     "How were Hazen-Williams coefficients converted into roughness heights?",
     "2150 C^(-2.9)"),
    ("Annual carbon emissions from pumping were estimated from the delivered volume Va and "
     "the grid emission factor EFg as", "Ec = Es Va EFg / 1000",
     "How were the annual carbon emissions from pumping estimated?", "Es Va EFg / 1000"),
]  # fmt: skip

NETWORKS = ["Ardleigh", "Bexwell", "Caddon", "Dunmore", "Elsford", "Farrow", "Glenhurst",
            "Holbeck"]  # fmt: skip

FIGURES = [
    "measured against modelled pressure at the logger sites",
    "the share of head loss by pipe diameter class",
    "specific pumping energy by month over the study year",
    "the growth of roughness height with pipe age for unlined cast iron",
    "night-line leakage against mean zone pressure",
    "the energy saved by each rehabilitation scenario",
]

MATERIALS = ["Cast iron", "Ductile iron", "Asbestos cement", "Steel", "PVC"]
BANDS = ["laid before 1940", "laid 1940-1969", "laid 1970-1999", "laid since 2000"]


def _filler(rng: random.Random, n: int) -> str:
    return " ".join(rng.sample(FILLER, n))


def research_paper(out: Path, rng: random.Random) -> CorpusDoc:
    """Typeset the paper and return it with its questions."""
    ts = Typesetter("Journal of Water Network Engineering 14 (2025) 233-251")
    qs: list[Question] = []
    facts: list[tuple[list[Block], str, str]] = []

    ts.heading("Head loss and pumping energy in ageing mains", "title")
    ts.paragraph("R. Okafor, L. Brandt and S. Mehta, School of Civil Engineering")
    ts.columns(2)
    ts.heading("Abstract", "h2")
    ts.paragraph(
        "Ageing mains lose capacity as their walls roughen, and the pumps that feed them pay "
        "for it in energy. We calibrate roughness for eight distribution networks, relate it to "
        "pipe material and age, and estimate the energy a rehabilitation programme would save. "
        + _filler(rng, 2)
    )
    ts.heading("1. Introduction", "h2")
    for _ in range(3):
        ts.paragraph(_filler(rng, 6))
    ts.heading("2. Methods", "h2")
    subsections = {"2.1 Friction losses": 4, "2.2 Local losses": 2, "2.3 Pumping energy": 2,
                   "2.4 Ageing, leakage and emissions": 4}  # fmt: skip
    eq = iter(enumerate(EQUATIONS, start=1))
    for title, count in subsections.items():
        ts.heading(title, "h3")
        for _ in range(count):
            n, (intro, expr, question, answer) = next(eq)
            ts.paragraph(f"{_filler(rng, rng.randint(1, 3))} {intro}")
            block = ts.equation(expr, n)
            qs.append(Question(question, [answer], block.page_index, "equation", "paper"))
    ts.heading("3. Study networks", "h2")
    ts.paragraph(
        "The eight networks differ in size, material mix and age. Each is described below in "
        "the terms used for calibration."
    )
    pops = rng.sample(range(12, 95), len(NETWORKS))
    lengths = rng.sample(range(140, 990), len(NETWORKS))
    leaks = rng.sample(range(11, 99), len(NETWORKS))
    ages = rng.sample(range(31, 78), len(NETWORKS))
    for k, name in enumerate(NETWORKS):
        ts.heading(f"3.{k + 1} {name}", "h3")
        length = f"{lengths[k]} km of mains"
        leak = f"{leaks[k]}.{rng.randint(1, 9)} L/s"
        age = f"{ages[k]} years"
        parts = [
            f"The network serves about {pops[k]},{rng.randint(100, 999)} residents through "
            f"{length}.",
            _filler(rng, rng.randint(3, 7)),
            f"The mean age of its unlined iron mains is {age}.",
            _filler(rng, rng.randint(3, 7)),
            f"Night-line leakage, estimated from the minimum night flow, was {leak}.",
        ]
        blocks = ts.paragraph(" ".join(parts))
        facts += [(blocks, length, f"How many kilometres of mains does the {name} network "
                   "have?"), (blocks, age, f"What is the mean age of the unlined iron mains "
                   f"in the {name} network?"), (blocks, leak, f"What was the night-line "
                   f"leakage of the {name} network?")]  # fmt: skip
    ts.heading("4. Results", "h2")
    ts.heading("4.1 Calibrated roughness", "h3")
    ts.paragraph(_filler(rng, 3) + " Table 2 lists the calibrated roughness by material.")
    ts.caption_above(
        "Table 2: Calibrated roughness height ks and Hazen-Williams C by pipe material and "
        "installation period"
    )
    rows: list[list[str]] = []
    cells: list[tuple[str, str, str]] = []
    for material in MATERIALS:
        rows.append([material])
        for band in BANDS:
            ks = f"{rng.uniform(0.011, 3.9):.3f}"
            rows.append([band.removeprefix("laid "), ks, str(rng.randint(62, 149))])
            cells.append((material, band, ks))
    table = ts.table(["Installed", "ks (mm)", "C"], rows)
    for material, band, ks in rng.sample(cells, 10):
        holder = next(b for b in table if f"| {ks} |" in b.text)
        qs.append(
            Question(
                f"What roughness height was calibrated for {material.lower()} mains {band}?",
                [ks], holder.page_index, "nested-table", "paper",
            )
        )  # fmt: skip
    ts.heading("4.2 Energy and leakage", "h3")
    for k, what in enumerate(FIGURES, start=3):
        ts.paragraph(f"{_filler(rng, 2)} Figure {k} summarises the comparison.")
        _, cap = ts.figure(f"Fig. {k}. Study networks: {what}.", seed=100 + k)
        qs.append(
            Question(
                f"Which figure of the paper shows {what}?", [f"Fig. {k}."], cap.page_index,
                "caption", "paper",
            )
        )  # fmt: skip
    ts.heading("5. Discussion", "h2")
    for _ in range(5):
        ts.paragraph(_filler(rng, 7))
    ts.heading("6. Conclusions", "h2")
    ts.paragraph(_filler(rng, 4))
    pdf = out / "research_paper.pdf"
    document = ts.save(pdf, "paper")
    for blocks, answer, question in facts:
        holder = next(b for b in blocks if answer in b.text)
        if holder is blocks[0]:
            group = "heading"
        elif holder.page_index == blocks[0].page_index:
            group = "two-column"
        else:
            group = "continued"
        qs.append(Question(question, [answer], holder.page_index, group, "paper"))
    return CorpusDoc("paper", pdf, document, qs)
