"""Bad arguments to the public API raise ConfigError (a DeepOCRError, a ValueError), named."""

from __future__ import annotations

import io

import pymupdf
import pytest

import deepocr_loaders as dl
from deepocr_loaders import ConfigError, DeepOCRError
from deepocr_loaders.engines.recorded import RecordedEngine
from deepocr_loaders.pipeline import open_document, resolve_engine


def _pdf() -> bytes:
    pdf = pymupdf.open()
    pdf.new_page(width=200, height=200).insert_text((20, 40), "Hello.")
    return pdf.tobytes()


def test_config_error_is_a_deepocr_error_and_a_value_error() -> None:
    assert issubclass(ConfigError, DeepOCRError) and issubclass(ConfigError, ValueError)
    assert ConfigError("x", option="dpi").option == "dpi"


@pytest.mark.parametrize("dpi", [-5, 0, float("nan"), float("inf"), "144", True])
def test_bad_dpi_is_refused_before_any_work(dpi: object) -> None:
    with pytest.raises(ConfigError, match="dpi must be a positive number") as info:
        dl.convert(_pdf(), engine="recorded", outputs=["x"], dpi=dpi)
    assert info.value.option == "dpi"
    with pytest.raises(ConfigError, match="dpi"):
        next(dl.iter_pages(_pdf(), engine="recorded", outputs=["x"], dpi=dpi))


def test_engine_option_it_does_not_take_is_named() -> None:
    with pytest.raises(ConfigError, match="engine 'text-layer' takes no option 'bogus'") as info:
        dl.convert(_pdf(), engine="text-layer", bogus=1)
    assert info.value.option == "bogus"
    # auto passes unknown options on to the text layer: still named.
    with pytest.raises(ConfigError, match="takes no option 'bogus'"):
        dl.convert(_pdf(), engine="auto", bogus=1)
    with pytest.raises(ConfigError, match="takes no option 'bogus'"):
        resolve_engine("recorded", None, {"outputs": [], "bogus": 1})


def test_missing_required_engine_option_is_named() -> None:
    with pytest.raises(ConfigError, match="engine 'recorded' needs the option outputs") as info:
        dl.convert(_pdf(), engine="recorded")
    assert info.value.option == "outputs"


def test_options_with_an_engine_instance_and_bad_engine_types() -> None:
    with pytest.raises(ConfigError, match=r"options \(model, x\) go to get_engine"):
        dl.convert(_pdf(), engine=RecordedEngine(["x"]), model="m", x=1)
    with pytest.raises(ConfigError, match="engine must be a name or an Engine"):
        dl.convert(_pdf(), engine=42)  # type: ignore[arg-type]


def test_bad_source_and_cache_types() -> None:
    with pytest.raises(ConfigError, match="cannot open a int"):
        dl.convert(42, engine="recorded", outputs=["x"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="binary"):
        dl.convert(io.StringIO("text"), engine="recorded", outputs=["x"])  # type: ignore[arg-type]
    bad_cache: object = 3.5
    with (
        pytest.raises(ConfigError, match="cache must be") as info,
        open_document(_pdf(), engine="recorded", outputs=["x"], cache=bad_cache),  # type: ignore[arg-type]
    ):
        pass
    assert info.value.option == "cache"


def test_existing_value_error_handlers_still_catch_it() -> None:
    try:
        dl.convert(_pdf(), engine="recorded", outputs=["x"], dpi=-1)
    except ValueError as exc:
        assert "dpi" in str(exc)
    else:  # pragma: no cover
        pytest.fail("no error")


def test_get_engine_itself_names_bad_options() -> None:
    with pytest.raises(ConfigError, match="engine 'text-layer' takes no option 'bogus'") as info:
        dl.get_engine("text-layer", bogus=1)
    assert info.value.option == "bogus" and isinstance(info.value, ValueError)
    with pytest.raises(ConfigError, match="engine 'recorded' needs the option outputs"):
        dl.get_engine("recorded")
    with pytest.raises(ConfigError, match="engine 'auto' takes no option 'bogus'"):
        dl.get_engine("auto", bogus=1)  # passed on to the text layer, which refuses it
