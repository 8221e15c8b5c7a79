"""Every test gets its own page cache: the Python API caches by default, and a test must
neither read another's pages nor write into the user's cache folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_page_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    path = tmp_path_factory.mktemp("page-cache") / "pages.sqlite"
    monkeypatch.setenv("DEEPOCR_CACHE", str(path))
    return path
