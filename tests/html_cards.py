"""Reading the HTML product cards (``pages/card_html.py``) back out of an AppTest run."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from streamlit.testing.v1 import AppTest

_CARD = re.compile(r'<div class="pm-card"(?: data-item="([^"]*)")?>(.*?)</div>', re.S)
_TITLE = re.compile(r'<p class="pm-title">(?:(\d+)\. )?(.*?)(<span class="pm-new">NEW</span>)?</p>')
_META = re.compile(r'<p class="pm-meta">(.*?)</p>')
_SCORE = re.compile(r" · score (-?[\d.]+)$")


@dataclass(frozen=True)
class ShownCard:
    """One card as shown: its rank (ranked grids only), title (unescaped), badge and score."""

    rank: int | None
    title: str
    is_new: bool
    score: float | None
    raw: str  # the card's HTML, as sent to the browser


def card_html_blocks(at: AppTest) -> list[str]:
    """The HTML of every card on the page, in page order."""
    return [m.group(2) for h in at.html for m in _CARD.finditer(h.value)]


def ranked_item_ids(at: AppTest) -> list[str]:
    """Item ids of a ranked result grid's cards (their ``data-item``), in order."""
    ids = []
    for h in at.html:
        for m in _CARD.finditer(h.value):
            title = _TITLE.search(m.group(2))
            if title and title.group(1):
                assert int(title.group(1)) == len(ids) + 1, "ranks must run 1, 2, 3..."
                ids.append(html.unescape(m.group(1) or ""))
    return ids


def shown_cards(at: AppTest) -> list[ShownCard]:
    """Every card on the page, parsed."""
    out = []
    for raw in card_html_blocks(at):
        title = _TITLE.search(raw)
        meta = _META.search(raw)
        score = _SCORE.search(meta.group(1)) if meta else None
        assert title, raw
        out.append(ShownCard(
            rank=int(title.group(1)) if title.group(1) else None,
            title=html.unescape(title.group(2)),
            is_new=bool(title.group(3)),
            score=float(score.group(1)) if score else None,
            raw=raw,
        ))
    return out


def ranked_titles(at: AppTest) -> list[str]:
    """Titles of a ranked result grid, in order (its ranks checked to run 1, 2, 3...)."""
    cards = [c for c in shown_cards(at) if c.rank is not None]
    assert [c.rank for c in cards] == list(range(1, len(cards) + 1))
    return [c.title for c in cards]


def ranked_scores(at: AppTest) -> list[float]:
    """Scores of a ranked result grid, in order."""
    return [c.score for c in shown_cards(at) if c.rank is not None and c.score is not None]
