"""The real-PDF set of the text-layer checks (issue #17): third-party PDFs from Debian's
documentation packages, fetched on demand into a cache folder.

Journal sample papers and class guides (two columns, running heads, page numbers, LaTeX code
listings), reference cards, a user manual, slides and a report: documents this project did not
generate. The PDFs are never committed; :func:`fetch_realset` downloads the few ``.deb``
packages that hold them (about 230 MB, most of it one TeX Live documentation package), checks
each package's SHA-256 and copies the PDFs out with Python alone (a ``.deb`` is an ``ar``
archive holding a tar), so it runs on any machine that reaches Debian's archive.

Usage::

    python benchmarks/text_layer_realset.py [--dest /work/realpdfs]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import lzma
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_DEST", "PACKAGES", "REALSET", "RealPdf", "fetch_realset"]

DEFAULT_DEST = Path("/work/realpdfs")
_MIRROR = "https://deb.debian.org/debian/pool/main/"


@dataclass(frozen=True)
class _Package:
    pool_path: str
    """Path of the ``.deb`` under the archive's ``pool/main/``."""
    sha256: str


#: Debian 12 (bookworm) packages, pinned by file name and checksum.
PACKAGES: dict[str, _Package] = {
    "texlive-publishers-doc": _Package(
        "t/texlive-extra/texlive-publishers-doc_2022.20230122-4_all.deb",
        "9b632913d4b0d0871bef41c414fc7ce1167e3bacb55b140901df0c95df1c5765",
    ),
    "debian-refcard": _Package(
        "r/refcard/debian-refcard_12.0_all.deb",
        "9cb06051459a8fbefd0a1d0013a6e8b14931ae544402aa9f56f1e77f555cfd1f",
    ),
    "octave-doc": _Package(
        "o/octave/octave-doc_7.3.0-2_all.deb",
        "b27897cc7e3d688daa5cb8f8d1ea47077f3fbd205ce32e22522200ff0c1eadd5",
    ),
    "r-doc-pdf": _Package(
        "r/r-base/r-doc-pdf_4.2.2.20221110-2_all.deb",
        "beb104ad5818d261f280a868294645ca31d7c63365f2c9a55aa3ca9aad5aa71d",
    ),
    "asymptote-doc": _Package(
        "a/asymptote/asymptote-doc_2.85%2bds-1_all.deb",
        "b2ae6e97c64ede66c1e41cc913f790b01188d198557203a2b3c500ba3495e6ca",
    ),
}

_TL = "./usr/share/doc/texlive-doc/latex/"


@dataclass(frozen=True)
class RealPdf:
    """One PDF of the set: the name it is saved under, where it comes from, what it is."""

    name: str
    package: str
    member: str
    """Path inside the package's data archive (a ``.pdf.gz`` is unpacked)."""
    kind: str


REALSET: tuple[RealPdf, ...] = (
    RealPdf("mnras_guide.pdf", "texlive-publishers-doc", _TL + "mnras/mnras_guide.pdf",
            "class guide, two columns, LaTeX listings"),
    RealPdf("acm_sample_acmsmall.pdf", "texlive-publishers-doc",
            _TL + "acmart/samples/sample-acmsmall.pdf", "paper, running heads"),
    RealPdf("acm_sample_sigconf.pdf", "texlive-publishers-doc",
            _TL + "acmart/samples/sample-sigconf.pdf", "paper, two columns"),
    RealPdf("revtex_apssamp.pdf", "texlive-publishers-doc",
            _TL + "revtex/sample/aps/apssamp.pdf", "physics paper, two columns"),
    RealPdf("aastex_sample631.pdf", "texlive-publishers-doc", _TL + "aastex/sample631.pdf",
            "astronomy paper, tables"),
    RealPdf("elsarticle_elsdoc.pdf", "texlive-publishers-doc", _TL + "elsarticle/elsdoc.pdf",
            "class guide, LaTeX listings"),
    RealPdf("elsarticle_5p.pdf", "texlive-publishers-doc", _TL + "elsarticle/elstest-5p.pdf",
            "paper, two columns"),
    RealPdf("tugboat_ltubguid.pdf", "texlive-publishers-doc", _TL + "tugboat/ltubguid.pdf",
            "class guide, two columns, listings"),
    RealPdf("llncsdoc.pdf", "texlive-publishers-doc", _TL + "llncs/llncsdoc.pdf",
            "class guide"),
    RealPdf("apa7_longsample.pdf", "texlive-publishers-doc", _TL + "apa7/samples/longsample.pdf",
            "paper, running head, page numbers, tables"),
    RealPdf("beamer_verona.pdf", "texlive-publishers-doc",
            _TL + "beamer-verona/beamer-verona-default.pdf", "slides"),
    RealPdf("erdc_sample.pdf", "texlive-publishers-doc", _TL + "erdc/sample.pdf",
            "technical report"),
    RealPdf("debian_refcard.pdf", "debian-refcard",
            "./usr/share/doc/debian-refcard/refcard-en-a4.pdf.gz", "reference card, columns"),
    RealPdf("octave_refcard.pdf", "octave-doc", "./usr/share/doc/octave/refcard-a4.pdf",
            "reference card, three columns"),
    RealPdf("r_data_manual.pdf", "r-doc-pdf", "./usr/share/R/doc/manual/R-data.pdf",
            "user manual, code"),
    RealPdf("asy_latex.pdf", "asymptote-doc", "./usr/share/doc/asymptote/asy-latex.pdf",
            "manual, code listings"),
)  # fmt: skip


def _download(package: str, folder: Path) -> Path:
    """The package's ``.deb`` in ``folder``, downloaded unless already there and intact."""
    pkg = PACKAGES[package]
    path = folder / pkg.pool_path.rsplit("/", 1)[1].replace("%2b", "+")
    if path.exists() and _sha256(path) == pkg.sha256:
        return path
    tmp = path.with_suffix(".part")
    print(f"fetching {package} ...", file=sys.stderr)
    with urllib.request.urlopen(_MIRROR + pkg.pool_path, timeout=120) as resp, tmp.open("wb") as f:
        shutil.copyfileobj(resp, f, 1 << 20)
    if _sha256(tmp) != pkg.sha256:
        tmp.unlink()
        raise RuntimeError(f"{package}: checksum mismatch")
    tmp.rename(path)
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _members(deb: Path, wanted: set[str]) -> dict[str, bytes]:
    """The bytes of the ``wanted`` members of a ``.deb``'s data archive, read as a stream.

    A ``.deb`` is an ``ar`` archive (8-byte magic, then 60-byte member headers) whose
    ``data.tar.*`` member holds the files.
    """
    found: dict[str, bytes] = {}
    with deb.open("rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise RuntimeError(f"{deb.name} is not a Debian package")
        while header := f.read(60):
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            if not name.startswith("data.tar"):
                f.seek(size + (size & 1), io.SEEK_CUR)  # members are 2-byte aligned
                continue
            window = io.BufferedReader(_Window(f, size))
            unpack = _UNPACK.get(name.rsplit(".", 1)[-1], nullcontext)
            with unpack(window) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
                for info in tar:
                    if info.name in wanted and info.isfile():
                        member = tar.extractfile(info)
                        assert member is not None
                        found[info.name] = member.read()
            return found
    raise RuntimeError(f"{deb.name} has no data archive")


_UNPACK: dict[str, Callable[[Any], AbstractContextManager[Any]]] = {
    "xz": lzma.open,
    "gz": gzip.open,
}


class _Window(io.RawIOBase):
    """``size`` bytes of an open file from its current position, as a readable stream."""

    def __init__(self, f: io.BufferedReader, size: int) -> None:
        self._f = f
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self._left)
        data = self._f.read(n)
        buf[: len(data)] = data
        self._left -= len(data)
        return len(data)


def fetch_realset(dest: Path = DEFAULT_DEST, pdfs: tuple[RealPdf, ...] = REALSET) -> list[Path]:
    """The set's PDFs in ``dest``, fetching those not there yet; returns their paths.

    Args:
        dest: folder to keep the PDFs in (created; PDFs already there are reused).
        pdfs: which PDFs of the set.
    """
    dest.mkdir(parents=True, exist_ok=True)
    missing = [p for p in pdfs if not (dest / p.name).exists()]
    by_package: dict[str, list[RealPdf]] = {}
    for p in missing:
        by_package.setdefault(p.package, []).append(p)
    with tempfile.TemporaryDirectory() as tmp:
        for package, wanted in by_package.items():
            members = _members(_download(package, Path(tmp)), {p.member for p in wanted})
            for p in wanted:
                if p.member not in members:
                    raise RuntimeError(f"{p.member} is not a file in {package}")
                data = members[p.member]
                if p.member.endswith(".gz"):
                    data = gzip.decompress(data)
                (dest / p.name).write_bytes(data)
    return [dest / p.name for p in pdfs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args()
    for path in fetch_realset(args.dest):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
