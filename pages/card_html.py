"""Product cards as HTML (``st.html``) instead of five or six Streamlit elements per card.

For you shows 30 recommendation cards and 20 search cards, a search page 15 to 50, and each
Streamlit element costs the browser a React component, its CSS-in-JS styles and, for text, a
Markdown parse on every rerun. Cards without a widget are plain HTML: one element per column
(For you) or per grid (text, image and multimodal search, whose "More like this" is one picker
above the grid). A card with an "Open" button (the catalog explorer) is one HTML element and its
button inside a bordered container. Every catalog string is HTML-escaped here; images are inline
``data:`` thumbnails, and a card names its product in ``data-item``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

STYLE = """<style>
.pm-cards{display:flex;flex-direction:column;gap:.6rem}
.pm-card{border:1px solid rgba(49,51,63,.2);border-radius:.5rem;padding:.75rem 1rem}
.pm-card img{display:block;width:var(--pm-img,120px);height:auto;border-radius:.25rem}
.pm-grid{display:grid;grid-template-columns:repeat(var(--pm-cols,5),minmax(0,1fr));gap:1rem}
.pm-grid .pm-card img{width:100%}
.pm-title{font-weight:600;margin:.45rem 0 .15rem;line-height:1.35}
.pm-new{background:rgba(255,164,33,.18);color:#9a5b00;border-radius:.3rem;font-size:.75rem;
padding:.05rem .35rem;margin-left:.3rem;font-weight:600}
.pm-meta,.pm-why{color:rgba(49,51,63,.65);font-size:.85rem;line-height:1.4;margin:.1rem 0}
.pm-meta em{font-style:italic}
.pm-history{display:flex;gap:.75rem;flex-wrap:wrap}
.pm-history figure{margin:0;width:90px}
.pm-history img{display:block;width:90px;height:90px;object-fit:cover;border-radius:.25rem}
.pm-history figcaption{color:rgba(49,51,63,.65);font-size:.85rem;margin-top:.3rem}
.pm-query{margin:0;max-width:100%}
.pm-query img{display:block;width:100%;height:auto;border-radius:.25rem}
.pm-query figcaption{color:rgba(49,51,63,.65);font-size:.85rem;margin-top:.3rem;text-align:center}
</style>"""


@dataclass(frozen=True)
class Card:
    """What one card shows; every field is plain text (escaped when rendered)."""

    image_uri: str
    title: str
    price: str
    truth_label: str = ""
    attributes: tuple[str, ...] = ()
    is_new: bool = False
    score: float | None = None
    why: str | None = None
    rank: int | None = None  # shown before the title ("3. Title") in a ranked result grid
    item_id: str = ""  # the product's id, as the card's ``data-item`` (for tests and automation)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _img(uri: str, title: str, *, tooltip: bool = False) -> str:
    """An ``<img>`` for an inline ``data:image/`` URI; "" for anything else (a path the browser
    cannot read, a remote URL it must not fetch)."""
    if not uri.startswith("data:image/"):
        return ""
    tip = f' title="{_e(title)}"' if tooltip else ""
    return f'<img src="{_e(uri)}" alt="{_e(title)}"{tip}>'


def card_html(card: Card) -> str:
    """One card: image, title (with its rank and a NEW badge), price and attributes, score,
    reason."""
    img = _img(card.image_uri, card.title)
    badge = '<span class="pm-new">NEW</span>' if card.is_new else ""
    meta = _e(card.price)
    if card.attributes:
        meta += f" · <em>{_e(card.truth_label)}:</em> " + " · ".join(
            _e(a) for a in card.attributes
        )
    if card.score is not None:
        meta += f" · score {card.score:.4f}"
    why = f'<p class="pm-why">Why: {_e(card.why)}</p>' if card.why else ""
    rank = f"{card.rank}. " if card.rank is not None else ""
    item = f' data-item="{_e(card.item_id)}"' if card.item_id else ""
    return (f'<div class="pm-card"{item}>{img}<p class="pm-title">{rank}{_e(card.title)}{badge}</p>'
            f'<p class="pm-meta">{meta}</p>{why}</div>')


def cards_html(cards: list[Card], *, image_px: int = 120) -> str:
    """A column of cards with its style, ready for ``st.html``."""
    body = "".join(card_html(c) for c in cards)
    return f'{STYLE}<div class="pm-cards" style="--pm-img:{int(image_px)}px">{body}</div>'


def grid_html(cards: list[Card], *, columns: int = 5) -> str:
    """Rows of ``columns`` framed cards, each image as wide as its column, ready for ``st.html``."""
    body = "".join(card_html(c) for c in cards)
    return f'{STYLE}<div class="pm-grid" style="--pm-cols:{max(1, int(columns))}">{body}</div>'


def history_html(events: list[tuple[str, str, str]]) -> str:
    """A row of a user's recent events, ready for ``st.html``: (image URI, title, event) each,
    the image titled with the product and captioned with what the user did."""
    figures = []
    for uri, title, event in events:
        figures.append(f"<figure>{_img(uri, title, tooltip=True)}"
                       f"<figcaption>{_e(event)}</figcaption></figure>")
    return f'{STYLE}<div class="pm-history">{"".join(figures)}</div>'


def figure_html(uri: str, caption: str, *, width_px: int = 220) -> str:
    """One image with a caption under it (the image pages' query image), ready for ``st.html``."""
    return (f'{STYLE}<figure class="pm-query" style="width:{int(width_px)}px">'
            f"{_img(uri, caption)}<figcaption>{_e(caption)}</figcaption></figure>")
