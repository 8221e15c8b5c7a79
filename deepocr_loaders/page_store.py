"""Pages kept beside the page documents, so those stay small.

A LangChain or LlamaIndex page document carries only ``deepocr_page_key`` (64 hex characters);
the layout splitters find the page itself here: first in this process's recent pages, then in
the page cache (SQLite, shared between processes and runs), where the key is the same one the
pipeline stores it under. Stock splitters then copy a short key into every chunk, not a page of
JSON.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

from .cache import PageCache
from .document import Page

__all__ = ["MAX_PAGES", "recall", "remember"]

#: Pages kept in memory per process; older ones are found in the page cache. Bounded so that
#: streaming a long PDF keeps memory flat; a splitter streaming along needs only the current
#: document's pages, and those it holds itself.
MAX_PAGES = 1024

_lock = threading.Lock()
_recent: OrderedDict[str, Page] = OrderedDict()


def remember(key: str, page: Page) -> None:
    """Keep ``page`` under ``key`` (a page-cache key) in this process.

    Args:
        key: the page's cache key (:meth:`PageCache.key`).
        page: the page as the engine returned it.
    """
    with _lock:
        _recent[key] = page
        _recent.move_to_end(key)
        while len(_recent) > MAX_PAGES:
            _recent.popitem(last=False)


def recall(key: str, cache: PageCache | str | os.PathLike[str] | bool | None = True) -> Page | None:
    """The page stored under ``key``: from this process, else from the page cache.

    Args:
        key: the page document's ``deepocr_page_key``.
        cache: the page cache to look in (True: the default location; False/None: none).
    """
    with _lock:
        page = _recent.get(key)
    if page is not None:
        return page
    if cache is None or cache is False:
        return None
    store = PageCache() if cache is True else cache
    if not isinstance(store, PageCache):
        store = PageCache(store)
    return store.get(key) if store.path.exists() else None
