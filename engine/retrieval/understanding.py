"""Turning typed text into a :class:`Query`: what it was understood as, the text each kind of
method searches with, and the items its constraints allow.

A catalog built without the query step (or ``understand=False``) searches the typed text as it
is. The compact CLIP shares the SBERT encoder, so it gets the dense rewrite; a pretrained CLIP
gets a caption-like prompt.
"""

from __future__ import annotations

from typing import Any

from engine.components import query_understanding
from engine.retrieval.base import Query


def clip_prompts(catalog) -> bool:
    """Whether the catalog's CLIP is a pretrained one (prompts) rather than the compact one."""
    info = catalog.manifest.get("steps", {}).get("clip", {}).get("info", {})
    return bool(info) and not info.get("trained", True)


def make_query(
    catalog,
    text: str | None = None,
    image: Any = None,
    image_weight: float = 0.5,
    *,
    understand: bool = True,
    drop: tuple[str, ...] = (),
) -> Query:
    """The query to search ``catalog`` with (text already cleaned by the caller).

    ``drop`` lists pieces of the interpretation to leave out (chip ids, see
    ``Interpretation.chips``): a person removed them with one click.
    """
    qu = query_understanding(catalog) if understand and text else None
    if qu is None:
        return Query(text=text or None, image=image, image_weight=image_weight)
    interp = qu.interpret(text)
    for piece in drop:
        try:
            interp = interp.without(piece)
        except KeyError:
            continue  # no longer in this interpretation (the text changed): nothing to drop
    price, is_new = catalog.items["price"].to_numpy(), catalog.items["is_new"].to_numpy()
    rewrites = qu.rewrites(interp, clip_prompts=clip_prompts(catalog))
    mask = qu.mask(interp, price, is_new)
    return Query(
        text=text,
        image=image,
        image_weight=image_weight,
        rewrites=rewrites,
        mask=mask,
        understood=interp,
    )
