"""The one tokeniser shared by every lexical method (BM25, TF-IDF, keyword matching)."""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "i",
        "i'd",
        "in",
        "is",
        "it",
        "like",
        "looking",
        "me",
        "of",
        "on",
        "or",
        "our",
        "please",
        "search",
        "show",
        "some",
        "something",
        "stuff",
        "that",
        "the",
        "this",
        "to",
        "want",
        "with",
    ]
)


def normalise_text(text: str) -> str:
    """NFKC-normalise, lower-case and fold accents (``Café`` -> ``cafe``)."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens without stop words (``t-shirt`` -> ``t``, ``shirt``)."""
    return [t for t in _TOKEN.findall(normalise_text(text)) if t not in STOPWORDS]
