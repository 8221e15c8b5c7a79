"""Sources: opening PDFs and images by content, rasterising, page ranges, and every bad input."""

from __future__ import annotations

import hashlib
import io
import logging
import struct
import zlib
from pathlib import Path

import pymupdf
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageFile, features

from deepocr_loaders.errors import (
    CorruptFileError,
    EmptyDocumentError,
    ImageTooLargeError,
    PageRangeError,
    PasswordError,
    RenderError,
    SourceError,
    UnsupportedFormatError,
)
from deepocr_loaders.sources import (
    DEFAULT_DPI,
    DEFAULT_MAX_PIXELS,
    ImageSource,
    PdfSource,
    RenderedPage,
    Source,
    open_source,
    parse_page_range,
)

BLACK_BOX = pymupdf.Rect(20, 40, 80, 100)  # points, top-left origin


# ------------------------------------------------------------------------------------ builders


def make_pdf(pages: int = 3, width: float = 200, height: float = 300) -> bytes:
    """A PDF whose pages each carry their number as text and a black box at BLACK_BOX."""
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page(width=width, height=height)
        page.insert_text((20, 30), f"Page {number}")
        page.draw_rect(BLACK_BOX, color=(0, 0, 0), fill=(0, 0, 0))
    return doc.tobytes()


def build_pdf(objects: list[bytes], root: int = 1) -> bytes:
    """Hand-assemble a PDF from object bodies (numbered from 1) with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<</Size %d/Root %d 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        root,
        xref,
    )
    return bytes(out)


def stream(data: bytes, *, flate: bool) -> bytes:
    if flate:
        data = zlib.compress(data)
        return b"<</Length %d/Filter/FlateDecode>>\nstream\n%s\nendstream" % (len(data), data)
    return b"<</Length %d>>\nstream\n%s\nendstream" % (len(data), data)


def paged_pdf(pages: int, *, flate: bool) -> bytes:
    """Catalog and page tree first, then page/content pairs; each page is filled black.

    The fill comes last in a long content stream, so a stream cut short anywhere renders white:
    the tell-tale of a silently lost page.
    """
    kids = b" ".join(b"%d 0 R" % (3 + 2 * k) for k in range(pages))
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Count %d/Kids[%s]>>" % (pages, kids),
    ]
    content = b"q Q\n" * 200 + b"0 0 0 rg 0 0 200 300 re f\n"
    for k in range(pages):
        objects.append(
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 300]/Contents %d 0 R>>" % (4 + 2 * k)
        )
        objects.append(stream(content, flate=flate))
    return build_pdf(objects)


def image_bytes(image: Image.Image, fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def two_tone(size: tuple[int, int] = (40, 20)) -> Image.Image:
    """Left half black, right half white."""
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste((0, 0, 0), (0, 0, size[0] // 2, size[1]))
    return image


def rgb(pixel: object) -> tuple[int, int, int]:
    assert isinstance(pixel, tuple) and len(pixel) == 3, pixel
    return pixel


def is_black(pixel: object) -> bool:
    return max(rgb(pixel)) < 60


def is_white(pixel: object) -> bool:
    return min(rgb(pixel)) > 200


def open_pdf(data: bytes, name: str) -> PdfSource:
    source = open_source(data, name=name)
    assert isinstance(source, PdfSource)
    return source


# --------------------------------------------------------------------------------- PDF: opening


@pytest.fixture
def pdf_bytes() -> bytes:
    return make_pdf(3)


@pytest.fixture
def pdf_path(tmp_path: Path, pdf_bytes: bytes) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf_bytes)
    return path


@pytest.mark.parametrize(
    "form", ["str", "path", "bytes", "bytearray", "memoryview", "bytesio", "file"]
)
def test_pdf_opens_from_every_input_form(form: str, pdf_path: Path, pdf_bytes: bytes) -> None:
    handle = None
    if form == "str":
        source: object = str(pdf_path)
    elif form == "path":
        source = pdf_path
    elif form == "bytes":
        source = pdf_bytes
    elif form == "bytearray":
        source = bytearray(pdf_bytes)
    elif form == "memoryview":
        source = memoryview(pdf_bytes)
    elif form == "bytesio":
        source = io.BytesIO(pdf_bytes)
    else:
        source = handle = open(pdf_path, "rb")  # noqa: SIM115 - closed below
    try:
        with open_source(source) as src:  # type: ignore[arg-type]
            assert isinstance(src, PdfSource)
            assert isinstance(src, Source)
            assert src.kind == "pdf"
            assert src.page_count == 3
            assert src.sha256 == hashlib.sha256(pdf_bytes).hexdigest()
            assert not src.repaired
            assert src.missing_pages == frozenset()
            assert isinstance(src.pdf, pymupdf.Document)
            assert "Page 2" in src.pdf[1].get_text()
    finally:
        if handle is not None:
            handle.close()


def test_default_and_overridden_names(pdf_path: Path, pdf_bytes: bytes) -> None:
    with open_source(pdf_path) as src:
        assert src.name == str(pdf_path)
    with open_source(pdf_bytes) as src:
        assert src.name == "<bytes>"
    with open_source(io.BytesIO(pdf_bytes)) as src:
        assert src.name == "<stream>"
    with open(pdf_path, "rb") as handle, open_source(handle) as src:
        assert src.name == str(pdf_path)
    with open_source(pdf_bytes, name="upload-17") as src:
        assert src.name == "upload-17"


def test_context_manager_closes_and_closed_source_refuses(pdf_bytes: bytes) -> None:
    with open_source(pdf_bytes) as src:
        pass
    assert src.closed
    src.close()  # idempotent
    with pytest.raises(ValueError, match=r"closed"):
        src.render(0)


def test_format_is_detected_by_content_not_extension(tmp_path: Path, pdf_bytes: bytes) -> None:
    fake = tmp_path / "picture.png"
    fake.write_bytes(pdf_bytes)
    with open_source(fake) as src:
        assert src.kind == "pdf"
    fake = tmp_path / "document.pdf"
    fake.write_bytes(image_bytes(two_tone(), "PNG"))
    with open_source(fake) as src:
        assert src.kind == "image"
    # Junk before the header is tolerated within the first KiB, as PDF readers do.
    with open_source(b"\x00" * 500 + pdf_bytes) as src:
        assert src.kind == "pdf" and src.page_count == 3


def test_page_labels() -> None:
    doc = pymupdf.open(stream=make_pdf(5), filetype="pdf")
    doc.set_page_labels(
        [
            {"startpage": 0, "prefix": "", "style": "r", "firstpagenum": 1},
            {"startpage": 2, "prefix": "A-", "style": "D", "firstpagenum": 1},
        ]
    )
    with open_source(doc.tobytes()) as src:
        assert [src.page_label(i) for i in range(5)] == ["i", "ii", "A-1", "A-2", "A-3"]
        assert src.render(3, dpi=36).label == "A-2"
    with open_source(make_pdf(2)) as src:
        assert [src.page_label(i) for i in range(2)] == ["1", "2"]


def test_page_size_in_points_and_rotation() -> None:
    doc = pymupdf.open(stream=make_pdf(2, width=200, height=300), filetype="pdf")
    doc[1].set_rotation(90)
    with open_source(doc.tobytes()) as src:
        assert src.page_size(0) == pytest.approx((200, 300))
        assert src.page_size(1) == pytest.approx((300, 200))  # as displayed
        rotated = src.render(1, dpi=72)
        assert rotated.image.size == (300, 200)
        assert (rotated.width, rotated.height) == pytest.approx((300, 200))


@pytest.mark.parametrize("dpi", [72, 144, 100])
def test_render_size_mode_and_content(dpi: float) -> None:
    with open_source(make_pdf(1, width=200, height=300)) as src:
        page = src.render(0, dpi=dpi)
    assert isinstance(page, RenderedPage)
    assert page.image.mode == "RGB"
    assert page.index == 0 and page.label == "1"
    assert (page.width, page.height) == pytest.approx((200, 300))
    assert page.dpi == pytest.approx(dpi)
    assert page.image.width == pytest.approx(200 * dpi / 72, abs=1)
    assert page.image.height == pytest.approx(300 * dpi / 72, abs=1)
    scale = dpi / 72
    inside = (int(BLACK_BOX.x0 * scale) + 5, int(BLACK_BOX.y0 * scale) + 5)
    outside = (int(150 * scale), int(250 * scale))
    assert is_black(page.image.getpixel(inside))
    assert is_white(page.image.getpixel(outside))


def test_default_dpi_and_rendered_images_are_independent() -> None:
    assert DEFAULT_DPI == 144
    with open_source(make_pdf(1, width=100, height=50)) as src:
        first = src.render(0)
        assert first.image.size == (200, 100)
        first.image.paste((1, 2, 3), (0, 0, 200, 100))
        assert src.render(0).image.getpixel((150, 10)) != (1, 2, 3)


def test_giant_page_dpi_is_lowered_to_fit_max_pixels(caplog: pytest.LogCaptureFixture) -> None:
    limit = 250_000
    giant = make_pdf(1, width=5000, height=5000)
    with (
        open_source(giant, max_pixels=limit) as src,
        caplog.at_level(logging.WARNING, logger="deepocr_loaders.sources"),
    ):
        page = src.render(0, dpi=144)
    width, height = page.image.size
    assert width * height <= limit
    assert width * height > 0.95 * limit  # lowered just enough, not to a thumbnail
    assert page.dpi < 144
    assert width == pytest.approx(5000 * page.dpi / 72, abs=1)
    assert "dpi" in caplog.text and "<bytes>" in caplog.text


def test_small_page_is_not_clamped() -> None:
    with open_source(make_pdf(1), max_pixels=DEFAULT_MAX_PIXELS) as src:
        assert src.render(0, dpi=300).dpi == pytest.approx(300)


def test_iter_rendered_selects_pages() -> None:
    with open_source(make_pdf(5)) as src:
        assert [p.index for p in src.iter_rendered(dpi=36)] == [0, 1, 2, 3, 4]
        assert [p.index for p in src.iter_rendered("2,4-", dpi=36)] == [1, 3, 4]
        assert [p.label for p in src.iter_rendered([4, 0], dpi=36)] == ["1", "5"]
        with pytest.raises(PageRangeError, match=r"<bytes>"):
            src.iter_rendered("9")  # checked on the call, not on the first next()
        with pytest.raises(ValueError, match=r"dpi"):
            src.iter_rendered(dpi=0)


def test_bad_page_index_and_dpi(pdf_bytes: bytes) -> None:
    with open_source(pdf_bytes, name="doc.pdf") as src:
        with pytest.raises(PageRangeError, match=r"doc.pdf"):
            src.render(3)
        with pytest.raises(PageRangeError):
            src.page_size(-1)
        for dpi in (0, -72, float("nan"), float("inf")):
            with pytest.raises(ValueError, match=r"dpi"):
                src.render(0, dpi=dpi)


# ---------------------------------------------------------------------------------- PDF: errors


def test_non_pdf_bytes_are_unsupported() -> None:
    with pytest.raises(UnsupportedFormatError, match=r"notes.txt") as info:
        open_source(b"Hello, this is plain text, not a document.", name="notes.txt")
    assert "Hello" in str(info.value)  # says what the bytes look like


def test_text_starting_with_bm_is_not_mistaken_for_bmp() -> None:
    with pytest.raises(UnsupportedFormatError):
        open_source(b"BMW annual report, plain text, long enough to have a header" * 2)


def test_empty_input_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(CorruptFileError, match=r"empty"):
        open_source(b"")
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(CorruptFileError, match=r"empty.pdf"):
        open_source(empty)


def test_missing_path_raises_source_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pdf"
    with pytest.raises(SourceError, match=r"file not found") as info:
        open_source(missing)
    assert type(info.value) is SourceError
    assert str(missing) in str(info.value)
    with pytest.raises(SourceError, match=r"directory"):
        open_source(tmp_path)


def test_unusable_inputs_are_type_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        open_source(42)  # type: ignore[arg-type]
    text = tmp_path / "x.txt"
    text.write_text("hi")
    with open(text) as handle, pytest.raises(TypeError, match=r"binary"):
        open_source(handle)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.4\nthis is not really a pdf", b"%PDF-", b"%PDF-1.7\n" + b"\x00" * 200],
)
def test_corrupt_pdf(data: bytes) -> None:
    with pytest.raises(CorruptFileError, match=r"broken.pdf"):
        open_source(data, name="broken.pdf")


def test_zero_page_pdf_is_empty() -> None:
    data = build_pdf([b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Count 0/Kids[]>>"])
    with pytest.raises(EmptyDocumentError, match=r"empty.pdf"):
        open_source(data, name="empty.pdf")


def test_truncation_that_loses_pages_surfaces_per_page() -> None:
    data = paged_pdf(5, flate=True)
    cut = data.index(b"7 0 obj")  # pages 1-2 and their content survive; pages 3-5 are gone
    with open_pdf(data[:cut], name="cut.pdf") as src:
        assert src.repaired
        assert src.page_count == 5  # what the file declares, not just what survived
        assert src.missing_pages == frozenset({2, 3, 4})
        for index in (0, 1):
            page = src.render(index, dpi=36)
            assert is_black(page.image.getpixel((50, 75)))
        for index in (2, 3, 4):
            with pytest.raises(RenderError, match=r"cut.pdf") as info:
                src.render(index, dpi=36)
            assert info.value.page == index
            with pytest.raises(RenderError):
                src.page_size(index)
            assert src.page_label(index) == str(index + 1)
        with pytest.raises(RenderError):
            list(src.iter_rendered(dpi=36))


@pytest.mark.parametrize("flate", [True, False])
def test_truncation_inside_a_content_stream_is_a_render_error(flate: bool) -> None:
    data = paged_pdf(3, flate=flate)
    start = data.index(b"stream\n", data.index(b"6 0 obj")) + len(b"stream\n")
    with open_pdf(data[: start + 40], name="cut.pdf") as src:
        assert src.repaired
        assert is_black(src.render(0, dpi=36).image.getpixel((50, 75)))
        with pytest.raises(RenderError, match=r"cut.pdf") as info:
            src.render(1, dpi=36)
        assert info.value.page == 1
        assert info.value.reason
        with pytest.raises(RenderError):
            src.render(2, dpi=36)


def test_truncation_before_the_page_tree_is_corrupt() -> None:
    # Page tree last: cutting it off leaves nothing saying which objects are pages, in what order.
    objects = []
    for k in range(3):
        objects.append(
            b"<</Type/Page/Parent 8 0 R/MediaBox[0 0 200 300]/Contents %d 0 R>>" % (2 + 2 * k)
        )
        objects.append(stream(b"0 0 0 rg 0 0 200 300 re f", flate=True))
    objects.append(b"<</Type/Catalog/Pages 8 0 R>>")
    objects.append(b"<</Type/Pages/Count 3/Kids[1 0 R 3 0 R 5 0 R]>>")
    data = build_pdf(objects, root=7)
    with open_source(data) as src:
        assert src.page_count == 3
    with pytest.raises(CorruptFileError, match=r"late-tree.pdf"):
        open_source(data[: data.index(b"7 0 obj")], name="late-tree.pdf")


@pytest.mark.parametrize("flate", [True, False])
def test_truncated_pdf_never_loses_a_page_silently(flate: bool) -> None:
    data = paged_pdf(4, flate=flate)
    for cut in range(len(data) // 20, len(data), max(1, len(data) // 97)):
        try:
            src = open_pdf(data[:cut], name="cut.pdf")
        except CorruptFileError as exc:
            assert "cut.pdf" in str(exc)
            continue
        with src:
            # Cutting only the trailer's tail leaves a usable xref; any earlier cut is repaired.
            assert src.repaired or cut > data.rindex(b"startxref")
            for index in range(src.page_count):
                try:
                    page = src.render(index, dpi=18)
                except RenderError as exc:
                    assert exc.page == index
                    continue
                # Every page is filled black; a white one would be a page lost without a word.
                assert is_black(page.image.getpixel((25, 37))), (cut, index)


def test_truncated_pymupdf_pdf_opens_repaired_or_fails() -> None:
    data = make_pdf(6)
    for fraction in (0.3, 0.6, 0.9):
        try:
            src = open_pdf(data[: int(len(data) * fraction)], name="sixty.pdf")
        except CorruptFileError as exc:
            assert "sixty.pdf" in str(exc)
            continue
        with src:
            assert src.repaired
            for index in range(src.page_count):
                try:
                    page = src.render(index, dpi=72)
                except RenderError:
                    continue
                assert is_black(page.image.getpixel((50, 70)))


def test_object_broken_in_place_is_caught_after_lazy_repair() -> None:
    data = bytearray(paged_pdf(3, flate=True))
    header = data.index(b"4 0 obj")  # first page's content; the xref still points here
    data[header : header + 7] = b"X X XXX"
    with open_pdf(bytes(data), name="broken-obj.pdf") as src:
        assert not src.repaired  # the xref itself is fine, so MuPDF only repairs on demand
        with pytest.raises(RenderError, match=r"broken-obj.pdf") as info:
            src.render(0, dpi=36)
        assert info.value.page == 0
        assert src.repaired
        assert is_black(src.render(1, dpi=36).image.getpixel((50, 75)))


def test_dangling_page_reference_is_a_render_error() -> None:
    data = build_pdf(
        [
            b"<</Type/Catalog/Pages 2 0 R>>",
            b"<</Type/Pages/Count 2/Kids[3 0 R 9 0 R]>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 300]>>",
        ]
    )
    with open_source(data, name="dangling.pdf") as src:
        assert src.render(0, dpi=36).image.size == (100, 150)
        with pytest.raises(RenderError, match=r"dangling.pdf") as info:
            src.render(1, dpi=36)
        assert info.value.page == 1


def test_rasteriser_failure_is_a_render_error_with_page(
    pdf_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory in the rasteriser")

    with open_source(pdf_bytes, name="boom.pdf") as src:
        monkeypatch.setattr(pymupdf.Page, "get_pixmap", explode)
        with pytest.raises(RenderError, match=r"boom.pdf, page 2: .*out of memory") as info:
            src.render(1)
    assert info.value.page == 1


@pytest.fixture
def encrypted_pdf() -> bytes:
    doc = pymupdf.open(stream=make_pdf(2), filetype="pdf")
    return doc.tobytes(
        encryption=pymupdf.PDF_ENCRYPT_AES_256,  # type: ignore[attr-defined]
        user_pw="user-pw",
        owner_pw="owner-pw",
    )


def test_encrypted_pdf_needs_a_password(encrypted_pdf: bytes) -> None:
    with pytest.raises(PasswordError, match=r"secret.pdf.*password required"):
        open_source(encrypted_pdf, name="secret.pdf")


def test_encrypted_pdf_wrong_password(encrypted_pdf: bytes) -> None:
    with pytest.raises(PasswordError, match=r"secret.pdf.*wrong password"):
        open_source(encrypted_pdf, name="secret.pdf", password="guess")


@pytest.mark.parametrize("password", ["user-pw", "owner-pw"])
def test_encrypted_pdf_right_password(encrypted_pdf: bytes, password: str) -> None:
    with open_source(encrypted_pdf, password=password) as src:
        assert src.page_count == 2
        assert is_black(src.render(0, dpi=72).image.getpixel((50, 70)))


def test_owner_only_encryption_opens_without_password() -> None:
    doc = pymupdf.open(stream=make_pdf(1), filetype="pdf")
    aes = pymupdf.PDF_ENCRYPT_AES_256  # type: ignore[attr-defined]
    data = doc.tobytes(encryption=aes, user_pw="", owner_pw="owner-pw")
    with open_source(data) as src:
        assert src.page_count == 1


# ----------------------------------------------------------------------------------------- images


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP"])
def test_single_images_are_one_page_documents(fmt: str) -> None:
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("this Pillow build has no WEBP support")
    data = image_bytes(two_tone((40, 20)), fmt)
    with open_source(data, name=f"scan.{fmt.lower()}") as src:
        assert isinstance(src, ImageSource)
        assert src.kind == "image"
        assert src.page_count == 1
        assert src.sha256 == hashlib.sha256(data).hexdigest()
        assert src.page_label(0) == "1"
        page = src.render(0)
    assert page.image.mode == "RGB"
    assert page.image.size == (40, 20)
    assert is_black(page.image.getpixel((5, 10)))
    assert is_white(page.image.getpixel((35, 10)))


def test_image_page_size_uses_dpi_metadata() -> None:
    data = image_bytes(two_tone((300, 150)), "PNG", dpi=(150, 150))
    with open_source(data) as src:
        assert src.page_size(0) == pytest.approx((144, 72), rel=1e-3)
        page = src.render(0)
        assert page.dpi == pytest.approx(150, rel=1e-3)
        assert (page.width, page.height) == pytest.approx((144, 72), rel=1e-3)
    with open_source(image_bytes(two_tone((300, 150)), "PNG")) as src:  # no metadata: 72 dpi
        assert src.page_size(0) == (300, 150)
        assert src.render(0, dpi=300).dpi == 72  # images keep their own resolution


def test_multi_frame_tiff_is_one_page_per_frame() -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (30 + 10 * i, 20), c) for i, c in enumerate(colours)]
    data = image_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:], dpi=(144, 144))
    with open_source(data) as src:
        assert src.page_count == 3
        assert [src.page_label(i) for i in range(3)] == ["1", "2", "3"]
        assert [src.page_size(i) for i in range(3)] == [(15, 10), (20, 10), (25, 10)]
        pages = list(src.iter_rendered())
        # Out of order access seeks correctly too.
        assert src.render(0).image.getpixel((0, 0)) == colours[0]
    assert [p.index for p in pages] == [0, 1, 2]
    assert [p.image.size for p in pages] == [(30, 20), (40, 20), (50, 20)]
    assert [p.image.getpixel((1, 1)) for p in pages] == colours


def test_rgba_png_is_composited_on_white() -> None:
    image = Image.new("RGBA", (20, 20), (0, 0, 0, 0))  # fully transparent black
    image.paste((0, 0, 0, 255), (0, 0, 10, 20))  # opaque black left half
    image.paste((0, 0, 0, 128), (10, 0, 15, 20))  # half-transparent black
    with open_source(image_bytes(image, "PNG")) as src:
        page = src.render(0).image
    assert page.mode == "RGB"
    assert page.getpixel((5, 5)) == (0, 0, 0)
    assert page.getpixel((18, 5)) == (255, 255, 255)
    assert all(120 <= v <= 135 for v in rgb(page.getpixel((12, 5))))


@pytest.mark.parametrize("mode", ["LA", "P"])
def test_other_transparent_modes_are_composited_on_white(mode: str) -> None:
    if mode == "LA":
        image = Image.new("LA", (10, 10), (0, 0))
    else:
        image = Image.new("P", (10, 10), 0)
        image.putpalette([0, 0, 0] * 256)
        image.info["transparency"] = 0
    with open_source(image_bytes(image, "PNG")) as src:
        assert src.render(0).image.getpixel((5, 5)) == (255, 255, 255)


def test_cmyk_jpeg_and_16_bit_png_convert_properly() -> None:
    cmyk = Image.new("CMYK", (16, 16), (0, 0, 0, 255))
    with open_source(image_bytes(cmyk, "JPEG")) as src:
        assert is_black(src.render(0).image.getpixel((8, 8)))
    grey16 = Image.new("I;16", (4, 4), 32768)  # mid grey in 16 bits; clipping would make it white
    with open_source(image_bytes(grey16, "PNG")) as src:
        assert all(120 <= v <= 135 for v in rgb(src.render(0).image.getpixel((1, 1))))


def test_jpeg_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    data = image_bytes(two_tone((40, 20)), "JPEG", exif=exif, dpi=(144, 72))
    with open_source(data) as src:
        assert src.page_size(0) == pytest.approx((20, 20))  # axes and dpi both swapped
        page = src.render(0).image
    assert page.size == (20, 40)
    assert is_black(page.getpixel((10, 5)))  # the stored left half is now the top
    assert is_white(page.getpixel((10, 35)))


def test_truncated_png_is_corrupt() -> None:
    noise = Image.effect_noise((64, 64), 60).convert("RGB")
    data = image_bytes(noise, "PNG")
    with pytest.raises(CorruptFileError, match=r"half.png"):
        open_source(data[: len(data) // 2], name="half.png")
    with pytest.raises(CorruptFileError, match=r"stub.png"):
        open_source(data[:20], name="stub.png")  # the signature survives, the header does not


def test_truncated_jpeg_is_corrupt() -> None:
    data = image_bytes(Image.effect_noise((64, 64), 60).convert("RGB"), "JPEG")
    with pytest.raises(CorruptFileError, match=r"cut.jpg"):
        open_source(data[:300], name="cut.jpg")


def test_image_over_max_pixels_raises_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[object] = []
    original = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        decoded.append(self)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    data = image_bytes(two_tone((20, 20)), "PNG")
    with pytest.raises(ImageTooLargeError, match=r"big.png.*400 px.*100") as info:
        open_source(data, name="big.png", max_pixels=100)
    assert decoded == []
    assert info.value.page is None
    with open_source(data, max_pixels=400) as src:  # the bound is inclusive
        assert src.page_count == 1


def test_oversized_tiff_frame_names_the_page() -> None:
    frames = [Image.new("RGB", (10, 10)), Image.new("RGB", (30, 30)), Image.new("RGB", (10, 10))]
    data = image_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageTooLargeError, match=r"stack.tif, page 2") as info:
        open_source(data, name="stack.tif", max_pixels=500)
    assert info.value.page == 1


def test_decompression_bomb_header_is_image_too_large() -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    with pytest.raises(ImageTooLargeError, match=r"bomb.png"):
        open_source(bomb, name="bomb.png")
    with pytest.raises(ImageTooLargeError, match=r"bomb.png"):
        open_source(bomb, name="bomb.png", max_pixels=10**12)  # Pillow's own hard stop, converted


def test_pillow_global_limit_is_left_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    with open_source(image_bytes(two_tone(), "PNG"), max_pixels=10**10) as src:
        src.render(0)
    assert before == Image.MAX_IMAGE_PIXELS


# ------------------------------------------------------------------------------------ page ranges


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        (0, [0]),
        (9, [9]),
        ([3, 1, 3], [1, 3]),
        ((2,), [2]),
        (range(2, 5), [2, 3, 4]),
        (range(9, 0, -4), [1, 5, 9]),
        ("1", [0]),
        ("1-3", [0, 1, 2]),
        ("1-3,5,8-", [0, 1, 2, 4, 7, 8, 9]),
        ("-3", [0, 1, 2]),
        ("8-", [7, 8, 9]),
        (" 2 - 4 , 3 ", [1, 2, 3]),
        ("10", [9]),
        ("1-10", list(range(10))),
        ("5-5", [4]),
    ],
)
def test_parse_page_range_accepts(spec: object, expected: list[int]) -> None:
    assert parse_page_range(spec, 10) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec",
    [
        -1,
        10,
        True,
        1.0,
        [0, 10],
        [-1],
        [1.5],
        ["1"],
        [],
        range(0),
        range(5, 11),
        range(-1, 3),
        range(10**12),
        "",
        " ",
        "0",
        "11",
        "3-1",
        "1-11",
        "11-",
        "-0",
        "-11",
        "1,,2",
        "1,",
        "a",
        "1-2-3",
        "--",
        "-",
        "1.5",
        "\u0662",  # a non-ASCII digit
        "9" * 5000,
        b"1-2",
        object(),
    ],
)
def test_parse_page_range_rejects(spec: object) -> None:
    with pytest.raises(PageRangeError, match=r"report.pdf") as info:
        parse_page_range(spec, 10, source="report.pdf")  # type: ignore[arg-type]
    assert len(str(info.value)) < 300  # huge specs are abbreviated


def test_parse_page_range_error_names_the_spec() -> None:
    with pytest.raises(PageRangeError, match=r"'2-1'"):
        parse_page_range("2-1", 5)
    with pytest.raises(PageRangeError, match=r"<document>"):
        parse_page_range("7", 5)


range_strings = st.text(alphabet="0123456789-, ", max_size=24)


@given(spec=st.one_of(st.text(max_size=40), range_strings), page_count=st.integers(1, 40))
def test_parse_page_range_strings_never_misbehave(spec: str, page_count: int) -> None:
    try:
        pages = parse_page_range(spec, page_count)
    except PageRangeError:
        return
    assert pages
    assert pages == sorted(set(pages))
    assert all(isinstance(p, int) and 0 <= p < page_count for p in pages)


@given(
    spec=st.one_of(
        st.none(),
        st.integers(-5, 50),
        st.lists(st.integers(-5, 50), max_size=8),
        st.builds(range, st.integers(-5, 50), st.integers(-5, 50), st.sampled_from([1, 2, -1])),
    ),
    page_count=st.integers(1, 40),
)
def test_parse_page_range_numbers_never_misbehave(spec: object, page_count: int) -> None:
    try:
        pages = parse_page_range(spec, page_count)  # type: ignore[arg-type]
    except PageRangeError:
        return
    assert pages == sorted(set(pages))
    assert all(0 <= p < page_count for p in pages)
