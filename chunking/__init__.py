"""Layout-aware chunking of a :class:`deepocr_loaders.Document`.

Splits along headings, tables, figures and equations.

Framework-agnostic: reads only the core document model. The chunker itself is tracked in its own
issue; this package is the fixed home for it.
"""
