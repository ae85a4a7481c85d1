"""The synthetic world's vocabulary: categories, colours, patterns, materials and brands.

Every word a generator may write is listed here, split in two:

* ``words`` — used in titles, descriptions and the compact CLIP's training captions;
* ``held_out`` — used *only* by paraphrase evaluation queries, so that those queries use wording
  no model was trained on (otherwise the numbers flatter the model).

The lists are plain data; their order is part of the world's definition (changing it changes
the generated catalog, which the build detects through the config hash of ``VOCAB_VERSION``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

VOCAB_VERSION = 2


@dataclass(frozen=True)
class Term:
    """One attribute value with the words that may name it."""

    name: str
    words: tuple[str, ...]
    held_out: tuple[str, ...] = ()
    rgb: tuple[int, int, int] | None = None  # colours only
    extra: dict = field(default_factory=dict, compare=False, hash=False)


CATEGORIES: tuple[Term, ...] = (
    Term("t-shirt", ("t-shirt", "tee", "shirt"), ("top",)),
    Term("dress", ("dress", "frock"), ("gown",)),
    Term("sneakers", ("sneakers", "trainers", "running shoes"), ("kicks",)),
    Term("boots", ("boots", "ankle boots"), ("booties",)),
    Term("handbag", ("handbag", "purse", "tote bag"), ("clutch",)),
    Term("backpack", ("backpack", "rucksack"), ("knapsack",)),
    Term("hat", ("hat", "bucket hat"), ("cap",)),
    Term("mug", ("mug", "coffee mug", "cup"), ("beaker",)),
    Term("lamp", ("lamp", "table lamp"), ("light fixture",)),
    Term("chair", ("chair", "armchair"), ("seat",)),
    Term("umbrella", ("umbrella", "parasol"), ("brolly",)),
    Term("vase", ("vase", "flower vase"), ("urn",)),
)

# RGB values are far apart in colour space so that a colour named is a colour seen.
COLOURS: tuple[Term, ...] = (
    Term("red", ("red", "scarlet"), ("crimson",), rgb=(210, 30, 35)),
    Term("orange", ("orange", "tangerine"), ("amber",), rgb=(245, 130, 20)),
    Term("yellow", ("yellow", "lemon"), ("canary",), rgb=(245, 215, 30)),
    Term("green", ("green", "emerald"), ("verdant",), rgb=(40, 160, 60)),
    Term("teal", ("teal", "turquoise"), ("aqua",), rgb=(20, 150, 150)),
    Term("blue", ("blue", "cobalt"), ("azure",), rgb=(40, 100, 230)),
    Term("navy", ("navy", "navy blue"), ("midnight blue",), rgb=(20, 30, 100)),
    Term("purple", ("purple", "violet"), ("plum",), rgb=(130, 50, 170)),
    Term("pink", ("pink", "rose"), ("blush",), rgb=(245, 130, 185)),
    Term("brown", ("brown", "chocolate"), ("chestnut",), rgb=(120, 70, 30)),
    Term("black", ("black", "jet black"), ("ebony",), rgb=(20, 20, 20)),
    Term("white", ("white", "ivory"), ("snow",), rgb=(245, 245, 245)),
    Term("grey", ("grey", "gray"), ("slate",), rgb=(135, 135, 135)),
    Term("beige", ("beige", "sand"), ("khaki",), rgb=(215, 190, 145)),
)

PATTERNS: tuple[Term, ...] = (
    Term("solid", ("solid", "plain"), ("single-tone",)),
    Term("striped", ("striped", "stripes"), ("pinstripe",)),
    Term("dotted", ("polka dot", "dotted"), ("spotted",)),
    Term("checked", ("checked", "plaid"), ("gingham",)),
    Term("zigzag", ("zigzag", "chevron"), ("herringbone",)),
)

# Material/style: a non-visual attribute, named in text far more often than colour is.
MATERIALS: tuple[Term, ...] = (
    Term("cotton", ("cotton",), ("organic fibre",)),
    Term("leather", ("leather",), ("hide",)),
    Term("wool", ("wool", "woollen"), ("merino",)),
    Term("canvas", ("canvas",), ("duck cloth",)),
    Term("ceramic", ("ceramic", "stoneware"), ("porcelain",)),
    Term("recycled", ("recycled", "eco"), ("upcycled",)),
)

BRANDS: tuple[str, ...] = (
    "Northwind", "Acme", "Lumen", "Fable", "Brightside", "Kestrel", "Orbit", "Juniper",
    "Halcyon", "Meridian", "Quill", "Saffron", "Tidewater", "Vantage", "Wren", "Zephyr",
    "Alder", "Copperfield", "Driftwood", "Ember",
)

FIELDS: dict[str, tuple[Term, ...]] = {
    "category": CATEGORIES,
    "colour": COLOURS,
    "pattern": PATTERNS,
    "material": MATERIALS,
}

# Attributes the eye can see in the image; the others are only in the text.
VISUAL_FIELDS = ("category", "colour", "pattern")


def names(field_name: str) -> list[str]:
    """The attribute values of one field, in their canonical order."""
    return [t.name for t in FIELDS[field_name]]


def term(field_name: str, name: str) -> Term:
    """Look up one term by field and canonical name; the error lists the valid choices."""
    for t in FIELDS[field_name]:
        if t.name == name:
            return t
    raise KeyError(f"unknown {field_name} {name!r}; valid: {', '.join(names(field_name))}")
