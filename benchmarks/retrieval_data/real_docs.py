"""Real public PDFs for the retrieval benchmark of issue #17, and the questions written on them.

The PDFs are not in the repository: each comes from a pinned Debian package (bookworm), fetched
from the archive's pool over plain HTTP, the member read out of the ``.deb`` with the standard
library (``ar`` + ``data.tar.xz``, no ``dpkg`` needed) and checked against its sha256. They land
in ``retrieval_data/real/`` (gitignored), which later runs reuse.

Questions live in ``real_questions.jsonl`` beside this module, one JSON object a line: ``id``,
``pdf`` (a :data:`PDFS` name), ``type`` (what kind of lookup it is), ``question``, ``answer``
(a string printed on the page) and ``page`` (0-based) with ``label`` (the printed page label,
where the page has one). :func:`check_answers` proves every answer is on its page.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import re
import tarfile
import unicodedata
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "real_questions.jsonl"
CACHE = HERE / "real"
POOL = "http://deb.debian.org/debian/pool/main/"

#: Question types; every question has one.
TYPES = (
    "table",  # a cell of a table
    "caption",  # what a figure or table caption says
    "identifier",  # a macro, option, function, command or path name
    "definition",  # what a term or command means / does
    "passage",  # a fact stated in running text (some over a page break)
    "acknowledgement",  # who is thanked, funding, affiliations
    "slide",  # a fact on a slide
    "form",  # a field of a letter or form
)


@dataclass(frozen=True)
class DebSource:
    """A pinned Debian package: where the pool keeps it and its sha256."""

    package: str
    version: str
    pool_path: str
    sha256: str

    @property
    def url(self) -> str:
        return POOL + self.pool_path


@dataclass(frozen=True)
class RealPdf:
    """One benchmark PDF: its package, the path inside the ``.deb`` and the PDF's sha256."""

    name: str
    kind: str
    deb: DebSource
    member: str
    """Path inside the package's data archive (``.pdf`` or ``.pdf.gz``)."""
    sha256: str
    """Of the PDF itself (after gunzip where the package ships it compressed)."""
    licence: str

    @property
    def path(self) -> Path:
        return CACHE / f"{self.name}.pdf"


_ZOO = DebSource(
    "r-cran-zoo",
    "1.8-11-1",
    "r/r-zoo/r-cran-zoo_1.8-11-1_amd64.deb",
    "81f27bbee835d9d44d2a410211c813d2da6c2d71f1e37d71b019ab259e182b9b",
)
_SANDWICH = DebSource(
    "r-cran-sandwich",
    "3.0-2-1",
    "s/sandwich/r-cran-sandwich_3.0-2-1_all.deb",
    "a90e7d3c69c70a6d73e4bc63d1f20eae3b4a73866d5266246dd5b3d980c60d79",
)
_STRUCCHANGE = DebSource(
    "r-cran-strucchange",
    "1.5-3-1",
    "s/strucchange/r-cran-strucchange_1.5-3-1_amd64.deb",
    "0be3f44609be4e90be3f295880dbcaebf57e5a918b68eb11f18c0900b2a4874d",
)
_LMTEST = DebSource(
    "r-cran-lmtest",
    "0.9.40-1",
    "l/lmtest/r-cran-lmtest_0.9.40-1_amd64.deb",
    "ce2a709e7bb917f2b435314038e69ac8d32d71426f91c01b0332cb39b5020bf7",
)
_TEXLIVE = DebSource(
    "texlive-latex-recommended-doc",
    "2022.20230122-3",
    "t/texlive-base/texlive-latex-recommended-doc_2022.20230122-3_all.deb",
    "8bea1f81bf50354fa4f3046c2dbb82efba9b8520aca0b2ab12eed18554a66c11",
)
_REFCARD = DebSource(
    "debian-refcard",
    "12.0",
    "r/refcard/debian-refcard_12.0_all.deb",
    "9cb06051459a8fbefd0a1d0013a6e8b14931ae544402aa9f56f1e77f555cfd1f",
)
_POLICY = DebSource(
    "debian-policy",
    "4.6.2.0",
    "d/debian-policy/debian-policy_4.6.2.0_all.deb",
    "ef9d01b625c3b87c3a845c2cd1b66f1a16e9240b2b9e5bee53472a00e8457a39",
)
_RDOC = DebSource(
    "r-doc-pdf",
    "4.2.2.20221110-2",
    "r/r-base/r-doc-pdf_4.2.2.20221110-2_all.deb",
    "beb104ad5818d261f280a868294645ca31d7c63365f2c9a55aa3ca9aad5aa71d",
)
_TL = "usr/share/doc/texlive-doc/latex/"
_RLIB = "usr/lib/R/site-library/"

PDFS: tuple[RealPdf, ...] = (
    RealPdf(
        "zoo",
        "paper (JSS article: tables, figures, acknowledgements)",
        _ZOO,
        _RLIB + "zoo/doc/zoo.pdf",
        "fd63de7b0dc3122272339ff49e6ceeb47ea71a89a9cb5b7c411c78a7d6c8c332",
        "GPL-2+",
    ),
    RealPdf(
        "strucchange",
        "paper (figures with captions, equations)",
        _STRUCCHANGE,
        _RLIB + "strucchange/doc/strucchange-intro.pdf",
        "56587481ea07ff51645290c24e328d4461656bcbf19d6e9426056e7559a4a198",
        "GPL-2 or GPL-3",
    ),
    RealPdf(
        "sandwich-cl",
        "paper (simulation study, result tables, figures)",
        _SANDWICH,
        _RLIB + "sandwich/doc/sandwich-CL.pdf",
        "f3a765482a629c8c9369020d13632ec5c37520df17e22266eb9e2928270e94bb",
        "GPL-2",
    ),
    RealPdf(
        "lmtest",
        "short paper (test output tables)",
        _LMTEST,
        _RLIB + "lmtest/doc/lmtest-intro.pdf",
        "a60f149a85222f49e47cdd1a432719f044e4f32c1cdb229f91af8e9171ac87b7",
        "GPL-2 or GPL-3",
    ),
    RealPdf(
        "beamer-talk",
        "slides (beamer conference talk)",
        _TEXLIVE,
        _TL + "beamer/beamerexample-conference-talk.pdf",
        "4b11425166212ed695a5c99506303bddd7cc1beb02b17da48565c48f51eb38d6",
        "LPPL-1.3c or GPL-2+",
    ),
    RealPdf(
        "debian-refcard",
        "reference card (two dense pages of commands)",
        _REFCARD,
        "usr/share/doc/debian-refcard/refcard-en-a4.pdf.gz",
        "e876ef5e889cc82835b96a1b32df6a295e41534a1adae69def6d4ad981e38f61",
        "GPL-3+",
    ),
    RealPdf(
        "booktabs",
        "manual (macro names, example tables)",
        _TEXLIVE,
        _TL + "booktabs/booktabs.pdf",
        "7052d0760750c97a9fa3ae6e00942768a809f84a05466d36dc9e38f906d98dfe",
        "LPPL-1.3c",
    ),
    RealPdf(
        "xcolor",
        "manual (options, colour-name tables)",
        _TEXLIVE,
        _TL + "xcolor/xcolor.pdf",
        "d354360b1216cf8c9618571434a34e9e7683c2cec426e6156b4c5fb80af49e41",
        "LPPL-1.3c",
    ),
    RealPdf(
        "etoolbox",
        "manual (macro reference, identifiers)",
        _TEXLIVE,
        _TL + "etoolbox/etoolbox.pdf",
        "d3e48222e5b26d15d5b2ac6362b5c48c82ffc87828dbd618ba79f40d7328a0de",
        "LPPL-1.3c",
    ),
    RealPdf(
        "fhs",
        "standard (Filesystem Hierarchy Standard 3.0: directory tables)",
        _POLICY,
        "usr/share/doc/debian-policy/fhs/fhs-3.0.pdf.gz",
        "53d239e569a2d7b31a74fa09d585368c0f5a164e4624723fa2894660dd10fd23",
        "FHS (verbatim copies with notice)",
    ),
    RealPdf(
        "r-data",
        "manual (R Data Import/Export)",
        _RDOC,
        "usr/share/R/doc/manual/R-data.pdf",
        "9381a39ffeb8545a745c2618ba955b4ae4e10b9c8373cd5bc1984fff8318f8ca",
        "GPL-2",
    ),
    RealPdf(
        "ntg-letter",
        "letter form (NTG brief class sample: address and reference fields)",
        _TEXLIVE,
        _TL + "ntgclass/brief-sample.pdf",
        "02709e3e5420c59bce23551a1d766083fab5d97f012f60c30f21040ff3468faf",
        "LPPL-1.3",
    ),
)


@dataclass(frozen=True)
class RealQuestion:
    """A question written from a PDF's text, with the string that answers it and its page."""

    id: str
    pdf: str
    type: str
    question: str
    answer: str
    page: int
    """0-based."""
    label: str | None = None
    """The printed page label, where the page has one."""


def _ar_member(deb: bytes, prefix: str) -> bytes:
    """The first member of an ``ar`` archive (a ``.deb``) whose name starts with ``prefix``."""
    if not deb.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    pos = 8
    while pos + 60 <= len(deb):
        header = deb[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        if name.startswith(prefix):
            return deb[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)  # members are 2-byte aligned
    raise KeyError(prefix)


def _download(source: DebSource) -> bytes:
    deb_file = CACHE / "debs" / Path(source.pool_path).name
    if deb_file.exists():
        data = deb_file.read_bytes()
    else:
        print(f"fetching {source.url}")
        with urllib.request.urlopen(source.url, timeout=300) as response:
            data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != source.sha256:
        raise ValueError(f"{source.url}: sha256 {digest}, expected {source.sha256}")
    deb_file.parent.mkdir(parents=True, exist_ok=True)
    deb_file.write_bytes(data)
    return data


def fetch_pdfs(keep_debs: bool = False) -> list[RealPdf]:
    """Every PDF of :data:`PDFS` in :data:`CACHE`, downloaded and checked where missing.

    Args:
        keep_debs: keep the downloaded packages in ``CACHE/debs`` (else removed once read).
    """
    missing = [p for p in PDFS if not _verified(p)]
    by_deb: dict[DebSource, list[RealPdf]] = {}
    for pdf in missing:
        by_deb.setdefault(pdf.deb, []).append(pdf)
    for source, pdfs in by_deb.items():
        deb = _download(source)
        data_tar = lzma.decompress(_ar_member(deb, "data.tar.xz"))
        with tarfile.open(fileobj=io.BytesIO(data_tar)) as tar:
            for pdf in pdfs:
                member = tar.extractfile("./" + pdf.member)
                if member is None:
                    raise KeyError(f"{source.package}: {pdf.member} is not a file")
                raw = member.read()
                if pdf.member.endswith(".gz"):
                    raw = gzip.decompress(raw)
                digest = hashlib.sha256(raw).hexdigest()
                if digest != pdf.sha256:
                    raise ValueError(f"{pdf.name}: sha256 {digest}, expected {pdf.sha256}")
                pdf.path.write_bytes(raw)
        if not keep_debs:
            (CACHE / "debs" / Path(source.pool_path).name).unlink(missing_ok=True)
    return list(PDFS)


def _verified(pdf: RealPdf) -> bool:
    return pdf.path.exists() and hashlib.sha256(pdf.path.read_bytes()).hexdigest() == pdf.sha256


def load_questions(path: Path = QUESTIONS) -> list[RealQuestion]:
    """The questions of ``path`` (JSONL), checked for shape: known PDF and type, unique id."""
    names = {p.name for p in PDFS}
    out: list[RealQuestion] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        q = RealQuestion(**json.loads(line))
        problems = [
            f"unknown pdf {q.pdf!r}" * (q.pdf not in names),
            f"unknown type {q.type!r}" * (q.type not in TYPES),
            f"duplicate id {q.id!r}" * (q.id in seen),
            "empty question or answer" * (not q.question.strip() or not q.answer.strip()),
            "negative page" * (q.page < 0),
        ]
        if any(problems):
            raise ValueError(f"{path.name}:{n}: {'; '.join(p for p in problems if p)}")
        seen.add(q.id)
        out.append(q)
    return out


# Markdown markup and HTML tags a renderer adds around text (``code``, _emphasis_, <sup>1</sup>),
# and the backslash escapes it puts before punctuation.
_MARKUP_RE = re.compile(r"</?(?:sup|sub|br|b|i|em|strong|code|span)\b[^>]*>|[`*_\\#>|]")
_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "−": "-"})


def match_key(text: str) -> str:
    """``text`` as answers are looked up in it: NFKC (ligatures split), typographic quotes and
    dashes made ASCII, Markdown markup dropped, all whitespace removed, lower case.

    A PDF's text layer and a Markdown rendering of it differ in exactly these ways (``fi``
    ligatures, `` `\\midrule` s`` for ``\\midrules``, line breaks); answers are specific enough
    that matching them without spaces finds nothing they do not mean.
    """
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return "".join(_MARKUP_RE.sub("", text).split()).lower()


def check_answers(questions: list[RealQuestion], pdfs: dict[str, Path]) -> list[str]:
    """Problems with the answers: one not printed on its page (PyMuPDF's text of the page,
    compared with :func:`match_key`), or a page past the end. Empty when all are fine.

    Args:
        questions: the questions to check.
        pdfs: each PDF name's file.
    """
    import pymupdf

    texts: dict[str, list[str]] = {}
    for name, path in pdfs.items():
        with pymupdf.open(path) as doc:
            texts[name] = [match_key(page.get_text()) for page in doc]
    problems = []
    for q in questions:
        pages = texts[q.pdf]
        if q.page >= len(pages):
            problems.append(f"{q.id}: page {q.page} past the end ({len(pages)} pages)")
        elif match_key(q.answer) not in pages[q.page]:
            problems.append(f"{q.id}: {q.answer!r} not on page {q.page} of {q.pdf}")
    return problems
