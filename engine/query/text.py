"""Text helpers shared by the lexicon and the interpreter: one normalisation, words and n-grams.

Words are the lexical indexes' tokens (``engine.indexes.tokenize``: NFKC, accents folded,
lower-case, ``[a-z0-9]+``) but stop words are kept, so positions ("the word before the noun")
mean something. A phrase is its words joined by single spaces: ``T-Shirt`` -> ``t shirt``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from engine.indexes.tokenize import STOPWORDS, normalise_text

_WORD = re.compile(r"[a-z0-9]+")
_APOSTROPHE = re.compile(r"(?<=[a-z])['\u2019](?=[a-z])")

# Words that carry no search intent in a shopping query (on top of the lexical stop words).
QUERY_STOPWORDS = STOPWORDS | frozenset(
    {
        "anything", "everything", "items", "item", "products", "product", "stuff", "things",
        "thing", "sale", "buy", "find", "need", "would", "d", "m", "im", "id", "get", "got",
        "have", "has", "do", "does", "you", "your", "can", "could", "just", "really",
        "kind", "sort", "type", "one", "ones", "pair", "pairs", "piece", "nice", "good",
        "great", "lovely", "cool", "cute", "beautiful", "pretty", "awesome", "best", "gift",
        "present", "hi", "hello", "hey", "thanks", "thank", "pls", "plz", "kindly", "maybe",
        "perhaps", "also", "too", "very", "so", "there", "here", "what", "which", "who",
        "we", "us", "my", "mine", "myself", "am", "was", "were", "been", "being", "will",
        "shall", "should", "may", "might", "must", "let", "lets", "see", "view", "browse",
        "shop", "shopping", "order", "online", "store",
    }
)


def words(text: str) -> list[str]:
    """Normalised words of ``text`` (``I'd`` -> ``id``, ``T-Shirt`` -> ``t``, ``shirt``)."""
    return _WORD.findall(_APOSTROPHE.sub("", normalise_text(text)))


def phrase(text: str) -> str:
    """The normalised phrase of ``text``: its words joined by one space."""
    return " ".join(words(text))


def compact(p: str) -> str:
    """A phrase without spaces (``table lamp`` and ``tablelamp`` compare equal)."""
    return p.replace(" ", "")


def ngrams(tokens: list[str], max_n: int) -> Iterator[tuple[int, int, str]]:
    """(start, end, phrase) of every n-gram, longest first, then left to right."""
    for n in range(min(max_n, len(tokens)), 0, -1):
        for i in range(len(tokens) - n + 1):
            yield i, i + n, " ".join(tokens[i : i + n])
