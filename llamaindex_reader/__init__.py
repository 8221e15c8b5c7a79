"""LlamaIndex integration (reader and node parser) over the core document model.

Tracked in the loaders issue; this package is the fixed home for it.
"""
