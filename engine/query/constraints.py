"""Constraints in a query: price, NEW and negation cues, and stop phrases; found by patterns.

Supported price forms (``$``, ``€``, ``£``, "dollars", "usd", "bucks", "k" for thousands):

* upper bound — "under $50", "below 50", "less than 50", "cheaper than 50", "up to 50",
  "max 50", "at most 50", "no more than 50", "not more than 50", "within 50", "< 50",
  "<= 50", "50 or less", "50 and under", "50 max";
* lower bound — "over $50", "above 50", "more than 50", "at least 50", "min 50",
  "from $50" (without "to"), "> 50", ">= 50", "50+", "50 or more", "50 and up";
* range — "between 20 and 40", "from 20 to 40", "20-40", "$20 - $40", "20 to 40 dollars";
* around — "around $50", "about 50", "approximately 50", "roughly 50", "~50" (+/- 20 %);
* a bare amount with a currency sign or word ("$30", "30 dollars") is read as "up to";
* words — "cheap", "cheapest", "inexpensive", "affordable", "budget", "bargain", "low cost"
  (up to the catalog's 25th price percentile, per category when one is understood);
  "expensive", "luxury", "premium", "high end", "pricey" (from the 75th percentile).

NEW: "new", "new arrivals", "new in", "just in", "just arrived", "latest", "newest",
"recently added", "brand new" (so "new arrivals" is a filter, not free text).

Negation cues (handled by the interpreter on the words that follow): "not", "no", "non",
"without", "except", "excluding", "exclude", "anything but", "other than", "but not",
"minus"; "non-leather" is "non" + "leather".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUM = r"(\d{1,7}(?:[.,]\d{1,2})?)\s*(k)?"
_CUR_BEFORE = r"(?:[$€£]|usd\s*|eur\s*|gbp\s*)?"
_CUR_AFTER = r"(?:\s*(?:dollars?|usd|bucks|euros?|eur|pounds?|gbp|quid|[$€£]))?"
AMOUNT = _CUR_BEFORE + r"\s*" + _NUM + _CUR_AFTER
_B = r"(?<![\w$€£])"  # word start (a currency sign may follow)
_E = r"(?![\w])"

_UPPER = (r"under|below|less\s+than|cheaper\s+than|lower\s+than|up\s+to|max(?:imum)?|at\s+most|"
          r"no\s+more\s+than|not\s+more\s+than|within|<=?|≤|for\s+less\s+than|tops")
_LOWER = r"over|above|more\s+than|at\s+least|min(?:imum)?|greater\s+than|>=?|≥|starting\s+at"
_AROUND = r"around|about|approximately|approx|roughly|circa|~|near|close\s+to"

_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("range", re.compile(_B + r"between\s+" + AMOUNT + r"\s+(?:and|to|-|&)\s+" + AMOUNT + _E)),
    ("range", re.compile(_B + r"(?:from\s+)?" + AMOUNT + r"\s*(?:-|–|to)\s*" + AMOUNT + _E)),
    ("max", re.compile(_B + r"(?:" + _UPPER + r")\s*" + AMOUNT + _E)),
    ("min", re.compile(_B + r"(?:" + _LOWER + r")\s*" + AMOUNT + _E)),
    ("around", re.compile(_B + r"(?:" + _AROUND + r")\s*" + AMOUNT + _E)),
    ("max", re.compile(_B + AMOUNT + r"\s*(?:or\s+less|or\s+under|and\s+under|and\s+below|max)"
                       + _E)),
    ("min", re.compile(_B + AMOUNT + r"\s*(?:\+|or\s+more|and\s+up|and\s+above|or\s+over|"
                       r"minimum)(?![\w])")),
    ("min", re.compile(_B + r"from\s+" + AMOUNT + _E)),
    ("max", re.compile(_B + r"(?:[$€£]\s*" + _NUM + r"|" + _NUM
                       + r"\s*(?:dollars?|usd|bucks|euros?|pounds?|quid))" + _E)),
]
CHEAP = re.compile(r"\b(?:cheap(?:est|er)?|inexpensive|affordable|budget|bargains?|low[\s-]cost|"
                   r"low[\s-]priced|on\s+a\s+budget|economical)\b")
EXPENSIVE = re.compile(r"\b(?:expensive|luxury|luxurious|premium|high[\s-]end|pricey|upscale|"
                       r"designer)\b")
NEW = re.compile(r"\b(?:brand[\s-]new|new\s+arrivals?|new\s+in|new\s+releases?|just\s+in|"
                 r"just\s+arrived|latest(?:\s+arrivals?)?|newest|recently\s+added|new)\b")
# Phrases with no search intent: courtesy, "for my sister", "i'd like", "show me".
STOP_PHRASES = re.compile(
    r"\b(?:(?:as\s+a\s+)?(?:gift|present)s?\s+for\s+(?:my|a|an|the|our)?\s*\w+|"
    r"for\s+(?:my|a|an|the|our)\s+(?:little\s+|big\s+|older\s+|younger\s+|best\s+)?"
    r"(?:sister|brother|mom|mum|mother|dad|father|wife|husband|partner|girlfriend|boyfriend|"
    r"friend|son|daughter|kid|kids|child|children|grandma|grandmother|grandpa|grandfather|"
    r"aunt|uncle|niece|nephew|cousin|boss|colleague|coworker|teacher|family|baby|nan|gran)s?|"
    r"for\s+(?:him|her|me|myself|them|us)|"
    r"i\s*'?\s*d\s+(?:really\s+)?(?:like|love)|i\s+would\s+(?:really\s+)?(?:like|love)|"
    r"i\s+(?:really\s+)?(?:want|need)(?:\s+to\s+(?:buy|find|see|get))?|"
    r"(?:can|could)\s+you\s+(?:please\s+)?(?:show|find|get)(?:\s+me)?|"
    r"do\s+you\s+(?:have|sell|carry)|are\s+there|is\s+there|"
    r"show\s+me|looking\s+for|i\s*'?\s*m\s+looking\s+for|in\s+search\s+of|searching\s+for|"
    r"search\s+for|on\s+the\s+hunt\s+for|help\s+me\s+find|"
    r"stuff\s+that\s+is|things\s+that\s+are|something\s+that\s+is|anything\s+that\s+is|"
    r"that\s+is|which\s+is|that\s+are|for\s+sale|a\s+pair\s+of|pairs?\s+of|"
    r"please|thanks|thank\s+you)\b"
)
NEGATION_WORDS = frozenset({"not", "no", "non", "without", "except", "excluding", "exclude",
                            "minus", "nothing"})
NEGATION_PHRASES = re.compile(r"\b(?:anything\s+but|other\s+than|but\s+not|apart\s+from|"
                              r"rather\s+than|instead\s+of)\b")
BARRIER = " ; "


@dataclass
class Constraints:
    """Price bounds, NEW, the surface text of each, and the text left for the interpreter."""

    price_min: float | None = None
    price_max: float | None = None
    price_words: str | None = None  # "cheap" / "expensive": bound filled from the catalog later
    price_text: str | None = None  # the surface ("under $50")
    new_only: bool = False
    new_text: str | None = None
    text: str = ""  # the query with constraint and stop phrases replaced by barriers
    stop_phrases: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _amount(num: str, k: str | None) -> float:
    value = float(num.replace(",", "."))
    return value * 1000 if k else value


def parse_constraints(text: str) -> Constraints:
    """Find price, NEW and stop phrases in ``text`` (already lower-cased and NFKC-normalised)."""
    out = Constraints()
    t = " " + text + " "
    for kind, pat in _PATTERNS:
        m = pat.search(t)
        if not m:
            continue
        g = [x for x in m.groups()]
        if kind == "range":
            lo, hi = sorted((_amount(g[0], g[1]), _amount(g[2], g[3])))
            out.price_min, out.price_max = lo, hi
        elif kind == "max":
            num, k = (g[0], g[1]) if g[0] is not None else (g[2], g[3])
            out.price_max = _amount(num, k)
        elif kind == "min":
            out.price_min = _amount(g[0], g[1])
        else:
            v = _amount(g[0], g[1])
            out.price_min, out.price_max = round(v * 0.8, 2), round(v * 1.2, 2)
        out.price_text = m.group(0).strip()
        t = t[: m.start()] + BARRIER + t[m.end():]
        break
    if out.price_min is not None and out.price_max is not None and out.price_min > out.price_max:
        out.price_min, out.price_max = out.price_max, out.price_min
    for pat, word in ((CHEAP, "cheap"), (EXPENSIVE, "expensive")):
        m = pat.search(t)
        if m:
            if out.price_text is None:
                out.price_words, out.price_text = word, m.group(0)
            t = t[: m.start()] + BARRIER + t[m.end():]
            break
    m = NEW.search(t)
    if m:
        out.new_only, out.new_text = True, m.group(0)
        t = t[: m.start()] + BARRIER + t[m.end():]
    for m in reversed(list(STOP_PHRASES.finditer(t))):
        out.stop_phrases.insert(0, m.group(0))
        t = t[: m.start()] + BARRIER + t[m.end():]
    out.text = t
    return out
