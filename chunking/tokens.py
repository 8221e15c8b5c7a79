"""Token counting: any callable, a Hugging Face tokenizer, a tiktoken encoding, or a fast default.

The default needs no download: it counts word pieces of at most six characters and single
punctuation marks, which tracks BPE/WordPiece counts of English prose within about 15% and costs
a few passes in C over the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

__all__ = ["TokenCounter", "default_token_count", "resolve_token_counter"]

TokenCounter = Callable[[str], int]

# Long words become several pieces, as subword tokenizers split them.
_PIECE_RE = re.compile(r"\w{1,6}|[^\w\s]")


# Text is counted in a few C passes over bytes instead of one regex match per piece, 2-9x
# faster: every character is mapped to its class as the regex itself classifies it (word "w",
# space " ", other "."). An "other" is one piece, and a word run of n characters is ceil(n / 6)
# pieces: one per run, plus one per run of at least 7, 13, 19... characters. Non-ASCII
# characters (curly quotes, accents, dashes: a few per OCR paragraph) are first replaced by an
# ASCII character of their class, which leaves the count unchanged.
@lru_cache(maxsize=4096)
def _regex_class(char: str) -> str:
    """The class the piece regex gives ``char``, as an ASCII character of that class: word
    "w", space " ", other "."."""
    if re.fullmatch(r"\w", char):
        return "w"
    return " " if re.fullmatch(r"\s", char) else "."


# bytes >= 128 never occur: non-ASCII characters are replaced by their class first.
_CLASS_OF = "".join(_regex_class(chr(code)) for code in range(128)).encode() + b"." * 128
_LONG_RUNS = [b" " + b"w" * n for n in range(7, 1000, 6)]
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]")


def _ascii_stand_in(match: re.Match[str]) -> str:
    return _regex_class(match.group())


class _StandIns(dict[int, str]):
    """A ``str.translate`` table: a non-ASCII character to its class's ASCII stand-in (found
    once per character), ASCII characters to themselves."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        self[code] = value = char if code < 128 else _regex_class(char)
        return value


_STAND_INS = _StandIns()


def default_token_count(text: str) -> int:
    """Approximate subword-token count of ``text`` (no model, no download)."""
    if len(text) < 12:  # a word or two: the regex costs less than the passes' fixed cost
        return len(_PIECE_RE.findall(text))
    if not text.isascii():
        # A few curly quotes in prose: replace just those; text in another script (CJK...):
        # translate every character, at a dictionary lookup each instead of a call per match.
        if len(text.encode()) - len(text) > len(text) // 16:
            text = text.translate(_STAND_INS)
        else:
            text = _NON_ASCII_RE.sub(_ascii_stand_in, text)
    # The leading space makes every word run start after a space, the text's first included.
    classes = (" " + text).encode("ascii").translate(_CLASS_OF)
    pieces = classes.count(b".")
    if pieces:
        classes = classes.replace(b".", b" ")
    pieces += classes.count(b" w")
    for run in _LONG_RUNS:
        longer = classes.count(run)
        if not longer:
            return pieces
        pieces += longer
    return len(_PIECE_RE.findall(text))  # a word of 1000 characters or more


def _length(result: Any) -> int:
    ids = getattr(result, "ids", None)  # tokenizers.Encoding
    if ids is not None:
        return len(ids)
    if isinstance(result, int):
        return result
    return len(result)


def resolve_token_counter(tokenizer: Any = None) -> TokenCounter:
    """A ``str -> int`` counter from whatever the caller has.

    Accepts None (the fast default), a tiktoken ``Encoding`` (``encode_ordinary``), a Hugging Face
    ``transformers`` tokenizer or ``tokenizers.Tokenizer`` (``encode`` without special tokens, so
    the count matches what the text itself costs), or any callable returning an int or a sequence.
    """
    if tokenizer is None:
        return default_token_count
    ordinary = getattr(tokenizer, "encode_ordinary", None)
    if callable(ordinary):
        return lambda text: len(ordinary(text))
    encode = getattr(tokenizer, "encode", None)
    if callable(encode):

        def count(text: str) -> int:
            try:
                return _length(encode(text, add_special_tokens=False))
            except TypeError:  # an encode() without that keyword
                return _length(encode(text))

        return count
    if callable(tokenizer):
        return lambda text: _length(tokenizer(text))
    raise TypeError(
        "tokenizer must be None, a callable, a Hugging Face tokenizer or a tiktoken encoding, "
        f"not {type(tokenizer).__name__}"
    )
