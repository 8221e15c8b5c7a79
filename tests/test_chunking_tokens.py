"""The fast paths of the chunker agree with what they replace: the default token counter's
(counted over bytes, non-ASCII characters replaced by ASCII ones of their class) with the
regex that defines it, on any text, sentence starts
with a plain lookbehind regex, and chunk ids with :class:`uuid.UUID`."""

from __future__ import annotations

import re
import uuid

from hypothesis import example, given, settings
from hypothesis import strategies as st

from chunking.chunker import _uuid5_str
from chunking.split import _sentence_starts
from chunking.tokens import _PIECE_RE, default_token_count

# Characters that exercise every class boundary: word characters, ASCII whitespace the regex
# knows (\x1c-\x1f included), punctuation and control characters, and non-ASCII letters,
# spaces, dashes, quotes and a combining mark (replaced by stand-ins).
ALPHABET = "ab_Z09 \t\n\r\x0b\x0c\x1c\x1f.,|-#\x00\x7féß\u00a0\u2009–’\u0301°µ\u3000漢"


def regex_count(text: str) -> int:
    return len(_PIECE_RE.findall(text))


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=80))
@example("")
@example("abcdef")  # 6 characters: one piece
@example("abcdefg")  # 7: two pieces
@example(" " + "x" * 13 + ".")  # 13 characters: three pieces, then one for the dot
def test_default_count_matches_regex(text: str) -> None:
    assert default_token_count(text) == regex_count(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_default_count_matches_regex_on_any_unicode(text: str) -> None:
    assert default_token_count(text) == regex_count(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=1200), min_size=1, max_size=4))
def test_default_count_of_long_words(lengths: list[int]) -> None:
    # Words long enough to run through the long-run needles, and past the last one.
    text = " ".join("w" * n for n in lengths) + "!"
    assert default_token_count(text) == regex_count(text) == sum(-(-n // 6) for n in lengths) + 1


def test_default_count_of_prose() -> None:
    text = "Discharge peaked at 12.5 m3/s on 3 April (gauge 4-B); the creek\u2019s bed held."
    assert default_token_count(text) == regex_count(text)
    assert default_token_count(text.replace("\u2019", "'")) == regex_count(
        text.replace("\u2019", "'")
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_chunk_id_is_the_uuid5_of_the_digest(digest: bytes) -> None:
    assert _uuid5_str(digest) == str(uuid.UUID(bytes=digest[:16], version=5))


# What a sentence gap is, stated plainly: whitespace after a stop and any closing quotes.
LOOKBEHIND_GAP = re.compile(r"(?<=[.!?;])[\"')\]”’]*\s+")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab.!?;\"')]”’ \n", max_size=40))
@example('He said "stop." Then: "go!" ) x')
def test_sentence_starts_match_the_lookbehind_definition(text: str) -> None:
    ends = [m.end() for m in LOOKBEHIND_GAP.finditer(text) if m.end() < len(text)]
    assert _sentence_starts(text) == [0, *ends]
