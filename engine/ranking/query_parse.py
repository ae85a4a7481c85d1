"""Find the attribute values a query names, using the catalog vocabulary (never held-out words).

A re-ranker may only know the words a catalog team would have written down; the held-out
synonyms exist to test generalisation, so they are deliberately not recognised here.
"""

from __future__ import annotations

from functools import lru_cache

from engine.indexes.tokenize import tokenize
from engine.world import vocab

MAX_WORDS = 3


@lru_cache(maxsize=1)
def _lexicon() -> dict[str, tuple[str, str]]:
    """Normalised phrase -> (field, canonical value)."""
    out: dict[str, tuple[str, str]] = {}
    for field_name, terms in vocab.FIELDS.items():
        for t in terms:
            for word in (t.name, *t.words):
                key = " ".join(tokenize(word))
                if key:
                    out.setdefault(key, (field_name, t.name))
    return out


def parse_attributes(text: str) -> dict[str, str]:
    """``{"colour": "red", "category": "sneakers"}`` for "red trainers"; longest phrases first."""
    tokens = tokenize(text)
    used = [False] * len(tokens)
    found: dict[str, str] = {}
    lex = _lexicon()
    for n in range(MAX_WORDS, 0, -1):
        for i in range(len(tokens) - n + 1):
            if any(used[i : i + n]):
                continue
            hit = lex.get(" ".join(tokens[i : i + n]))
            if hit and hit[0] not in found:
                found[hit[0]] = hit[1]
                used[i : i + n] = [True] * n
    return found
