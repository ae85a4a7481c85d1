"""Query understanding: what a typed query means in the catalog's own words.

Build time (one step, see ``docs/query-understanding.md`` for the integration)::

    stats = compute_image_colour_stats(image_paths)            # per-item Lab colour statistics
    lexicon = build_lexicon(items, keywords, stats, encoder)   # catalog-mined terms + vectors
    attrs = build_item_attributes(items, keywords, lexicon, stats)
    words = WordVectors.build(encoder, query_word_list(lexicon, logged_queries))
    save_artifacts(folder, lexicon, stats, attrs, words)

Query time::

    qu = QueryUnderstanding.load(folder, encoder)               # once per catalog
    interp = qu.interpret("crimson knapsack with spots under $50")
    interp.label()            # "red · handbag · dotted · under $50"
    lexical_query(interp, qu.lexicon), dense_query(interp), clip_prompt(interp)
    filter_mask(interp, price, is_new, qu.attributes), attribute_scores(interp, qu.attributes)

``engine.query.interpret`` is the module (its function: ``from engine.query.interpret import
interpret``). Nothing here imports ``engine.world`` or reads the items' truth columns (a test
enforces it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.query.image_colours import ImageColourStats, compute_image_colour_stats
from engine.query.interpret import Interpreter
from engine.query.interpretation import Filters, Interpretation, Part
from engine.query.lexicon import QueryLexicon
from engine.query.mining import build_lexicon
from engine.query.rewrite import (
    ItemAttributes,
    attribute_scores,
    build_item_attributes,
    clip_prompt,
    dense_query,
    filter_mask,
    item_features,
    lexical_query,
    query_features,
)
from engine.query.semantic import WordVectors, query_word_list

__all__ = [
    "Filters", "ImageColourStats", "Interpretation", "Interpreter", "ItemAttributes", "Part",
    "QueryLexicon", "QueryUnderstanding", "WordVectors", "attribute_scores",
    "build_item_attributes", "build_lexicon", "clip_prompt", "compute_image_colour_stats",
    "dense_query", "describe", "filter_mask", "item_features", "lexical_query",
    "query_features", "query_word_list", "save_artifacts",
]


def save_artifacts(folder: Path, lexicon: QueryLexicon, stats: ImageColourStats | None = None,
                   attributes: ItemAttributes | None = None,
                   words: WordVectors | None = None) -> None:
    """Write every query-understanding artifact into one folder (JSON, .npy, .npz; no pickle)."""
    folder.mkdir(parents=True, exist_ok=True)
    lexicon.save(folder)
    for part in (stats, attributes, words):
        if part is not None:
            part.save(folder)


@dataclass
class QueryUnderstanding:
    """The artifacts of one catalog, loaded for serving, and its interpreter."""

    lexicon: QueryLexicon
    attributes: ItemAttributes | None
    interpreter: Interpreter

    @classmethod
    def load(cls, folder: Path, encoder=None) -> QueryUnderstanding:
        lexicon = QueryLexicon.load(folder)
        words = WordVectors.load(folder) if (folder / "query_words.json").exists() else None
        attrs = (ItemAttributes.load(folder)
                 if (folder / "query_item_attributes.json").exists() else None)
        return cls(lexicon, attrs, Interpreter(lexicon, encoder, words))

    def interpret(self, text: object) -> Interpretation:
        return self.interpreter.interpret(text)

    def rewrites(self, interp: Interpretation, *, clip_prompts: bool = False) -> dict[str, str]:
        """The text each kind of method searches with (empty when nothing was understood, so
        methods keep the typed text): ``lexical`` catalog words and synonyms, ``dense`` the
        query in catalog words, ``clip`` a caption-like prompt (``clip_prompts``, for pretrained
        CLIPs) or the dense text (the compact CLIP shares the SBERT encoder)."""
        if not interp.positive():
            return {}
        dense = dense_query(interp)
        return {
            "lexical": lexical_query(interp, self.lexicon),
            "dense": dense,
            "clip": (clip_prompt(interp) or dense) if clip_prompts else dense,
        }

    def mask(self, interp: Interpretation, price, is_new):
        """The items the query's constraints allow, or None when nothing filters."""
        return filter_mask(interp, price, is_new, self.attributes)

    def understand(self, text: object, price, is_new, *, clip_prompts: bool = False):
        """``(interpretation, rewrites, mask)`` of one query: everything a search needs."""
        interp = self.interpret(text)
        return interp, self.rewrites(interp, clip_prompts=clip_prompts), self.mask(
            interp, price, is_new
        )


def describe(interp: Interpretation) -> str:
    """A few lines for the CLI's ``interpret`` command (``--json`` prints ``to_dict()``)."""
    lines = [f"understood as: {interp.label() or '(nothing)'}"]
    for p in interp.parts:
        sign = "not " if p.negated else ""
        lines.append(f"  {p.slot:8s} {sign}{p.value:14s} from '{p.surface}' ({p.how}, "
                     f"confidence {p.confidence:.2f}{'; ' + p.detail if p.detail else ''})")
    if interp.free_text:
        lines.append(f"  free text: {' '.join(interp.free_text)}")
    f = interp.filters
    if f.price_min is not None or f.price_max is not None:
        lines.append(f"  price: {f.price_min if f.price_min is not None else '-'} .. "
                     f"{f.price_max if f.price_max is not None else '-'} ('{f.price_text}')")
    if f.new_only:
        lines.append("  new arrivals only")
    lines.append(f"  rewritten: {interp.rewritten or '(empty)'}")
    lines.append(f"  CLIP prompt: {interp.clip_prompt or '(empty)'}")
    lines.extend(f"  note: {n}" for n in interp.notes)
    return "\n".join(lines)
