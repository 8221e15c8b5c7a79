"""Bundled sample inputs for the demo and the tests (authored for this project)."""

from __future__ import annotations

from importlib.resources import files

__all__ = ["sample_grounded_output"]


def sample_grounded_output() -> str:
    """One US-Letter page of grounded DeepSeek-OCR output (a hydrology field report)."""
    return (files(__package__) / "field_report.grounded.txt").read_text(encoding="utf-8")
