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
) -> Query:
    """The query to search ``catalog`` with (text already cleaned by the caller)."""
    qu = query_understanding(catalog) if understand and text else None
    if qu is None:
        return Query(text=text or None, image=image, image_weight=image_weight)
    interp, rewrites, mask = qu.understand(
        text,
        catalog.items["price"].to_numpy(),
        catalog.items["is_new"].to_numpy(),
        clip_prompts=clip_prompts(catalog),
    )
    return Query(
        text=text,
        image=image,
        image_weight=image_weight,
        rewrites=rewrites,
        mask=mask,
        understood=interp,
    )
