"""The synthetic world's vocabulary: categories, colours, patterns, materials and brands.

Every word a generator may write is listed here. Each attribute value (a :class:`Term`) has:

* ``words`` — the catalog's words: titles, descriptions, logged search sessions, the tagger's
  keywords and the compact CLIP's training captions use these and nothing else;
* ``paraphrase`` — held-out synonyms used *only* by paraphrase evaluation queries;
* ``wild`` — what people type that the catalog never writes: colour names of the generic colour
  table (matplotlib's XKCD + CSS4 names) that land unambiguously on this world colour
  (CIEDE2000, ``engine.world.colour_names``), other names and spellings of product types, pattern
  words; used *only* by "wild" evaluation queries;
* ``typos`` — misspellings of catalog words (wild queries only);
* ``modifiers`` — colour phrases of the colour table made of a modifier and this colour's own
  catalog word ("hot pink"), kept only where they land on this colour (wild queries only; the
  one kind of wild wording that contains a catalog word).

Every list but ``words`` is a :class:`Split`: ``train`` words phrase the train and validation
queries, ``test`` words the test queries only, so a method tuned on train/val queries never saw a
test word. Rules (``tests/test_queries.py``): a word appears in one list of one value only; no
token of a test word is a token of a train word (modifiers: apart from their catalog colour
word); every value has at least two paraphrase test words; wild and typo words share no token with
any item's title or description, with ``words`` or with any other string the code ships (the
colour table aside). Materials are not visual and have no wild wording. No method may read any
list but ``words`` (only the query generator and the benchmark do).

The lists are plain data; their order is part of the world's definition (changing ``words``
changes the generated catalog; the build's world step hashes this file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

VOCAB_VERSION = 3
# The kinds of evaluation-only wording, each a Split of a Term.
EVAL_KINDS = ("paraphrase", "wild", "typos", "modifiers")


class Split(NamedTuple):
    """Evaluation-only words: ``train`` for train/validation queries, ``test`` for test ones."""

    train: tuple[str, ...] = ()
    test: tuple[str, ...] = ()

    def for_split(self, split: str) -> tuple[str, ...]:
        """The words a query of ``split`` ("train", "val" or "test") may use."""
        return self.test if split == "test" else self.train


def _s(train: str | tuple[str, ...] = (), test: str | tuple[str, ...] = ()) -> Split:
    def tup(x: str | tuple[str, ...]) -> tuple[str, ...]:
        return (x,) if isinstance(x, str) else tuple(x)

    return Split(tup(train), tup(test))


@dataclass(frozen=True)
class Term:
    """One attribute value with the words that may name it (see the module doc)."""

    name: str
    words: tuple[str, ...]
    paraphrase: Split = Split()
    wild: Split = Split()
    typos: Split = Split()
    modifiers: Split = Split()
    rgb: tuple[int, int, int] | None = None  # colours only
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def held_out_train(self) -> tuple[str, ...]:
        """Paraphrase words of train and validation queries."""
        return self.paraphrase.train

    @property
    def held_out_test(self) -> tuple[str, ...]:
        """Paraphrase words of test queries only."""
        return self.paraphrase.test

    @property
    def held_out(self) -> tuple[str, ...]:
        """Every paraphrase word (train/val and test)."""
        return (*self.paraphrase.train, *self.paraphrase.test)

    def evaluation_words(self) -> tuple[str, ...]:
        """Every evaluation-only word of this value: paraphrase, wild, typo and modifier."""
        return tuple(w for kind in EVAL_KINDS for part in getattr(self, kind) for w in part)


# fmt: off
CATEGORIES: tuple[Term, ...] = (
    Term("t-shirt", ("t-shirt", "tee", "shirt"),
         paraphrase=_s("top", ("crewneck", "v-neck")),
         wild=_s("tshirt", ("teeshirt", "tees")),
         typos=_s("shrit", "tshrit")),
    Term("dress", ("dress", "frock"),
         paraphrase=_s("gown", ("sundress", "pinafore")),
         wild=_s("midi", ("maxi", "dresses")),
         typos=_s("dres", "dresss")),
    Term("sneakers", ("sneakers", "trainers", "running shoes"),
         paraphrase=_s("kicks", ("plimsolls", "runners")),
         wild=_s("sneaker", ("sneaks", "tennies")),
         typos=_s("sneekers", ("sneakres", "snekaers"))),
    Term("boots", ("boots", "ankle boots"),
         paraphrase=_s("booties", ("chukkas", "wellingtons")),
         wild=_s("boot", "wellies"),
         typos=_s("booots", "botts")),
    Term("handbag", ("handbag", "purse", "tote bag"),
         paraphrase=_s("clutch", ("pocketbook", "wristlet")),
         wild=_s("crossbody", ("handbags", "purses")),
         typos=_s("handbga", ("hanbag", "hadnbag"))),
    Term("backpack", ("backpack", "rucksack"),
         paraphrase=_s("knapsack", ("haversack", "schoolbag")),
         wild=_s("back pack", ("daypack", "bookbag")),
         typos=_s("backpak", ("bakcpack", "bagpack"))),
    Term("hat", ("hat", "bucket hat"),
         paraphrase=_s("cap", ("beanie", "fedora")),
         wild=_s("hats", ("sunhat", "headwear")),
         typos=_s("hta", "hatt")),
    Term("mug", ("mug", "coffee mug", "cup"),
         paraphrase=_s("beaker", ("tankard", "stein")),
         wild=_s("mugs", "teacup"),
         typos=_s("mgu", "mugg")),
    Term("lamp", ("lamp", "table lamp"),
         paraphrase=_s("luminaire", ("sconce", "lantern")),
         wild=_s("lamps", ("nightlight", "lampshade")),
         typos=_s("lmap", "lapm")),
    Term("chair", ("chair", "armchair"),
         paraphrase=_s("seat", ("recliner", "wingback")),
         wild=_s("chairs", "armchairs"),
         typos=_s("chiar", "chari")),
    Term("umbrella", ("umbrella", "parasol"),
         paraphrase=_s("brolly", ("sunshade", "gamp")),
         wild=_s("umbrellas", "parasols"),
         typos=_s("umbrlla", ("umbrela", "umberella"))),
    Term("vase", ("vase", "flower vase"),
         paraphrase=_s("urn", ("amphora", "bouquet holder")),
         wild=_s((), "vases"),
         typos=_s("vsae", "vasse")),
)

# RGB values are far apart in colour space so that a colour named is a colour seen. Colour-table
# names that sound right but land elsewhere in this world are left out on purpose: crimson,
# burgundy, maroon and rust (between red and brown), salmon and coral (red/orange/pink), aqua and
# cyan (white), lilac and lavender (pink), dark green (black), light blue and light grey (white),
# dark purple (navy), khaki (beige/yellow), cobalt (blue/navy), slate (blue).
COLOURS: tuple[Term, ...] = (
    Term("red", ("red", "scarlet"), rgb=(210, 30, 35),
         paraphrase=_s("crimson", ("carmine", "rouge")),
         wild=_s(("cherry", "strawberry"), ("ruby", "raspberry")),
         typos=_s("scarlett", "scralet"),
         modifiers=_s("bright red", ("neon red", "pastel red"))),
    Term("orange", ("orange", "tangerine"), rgb=(245, 130, 20),
         paraphrase=_s("mandarin", ("clementine", "marmalade")),
         wild=_s("mango", "pumpkin"),
         typos=_s("ornage", ("oragne", "tangerene")),
         modifiers=_s("bright orange", ("pale orange", "dusty orange"))),
    Term("yellow", ("yellow", "lemon"), rgb=(245, 215, 30),
         paraphrase=_s("canary", ("daffodil", "buttercup")),
         wild=_s(("sunflower", "banana"), ("mustard", "dandelion")),
         typos=_s("yelow", ("yellwo", "lemmon")),
         modifiers=_s("bright yellow", ("pale yellow", "pastel yellow"))),
    Term("green", ("green", "emerald"), rgb=(40, 160, 60),
         paraphrase=_s("verdant", ("malachite", "clover")),
         wild=_s(("grass", "fern"), ("sage", "jade")),
         typos=_s("gren", ("grean", "emrald")),
         modifiers=_s("vivid green", ("olive green", "kelly green"))),
    Term("teal", ("teal", "turquoise"), rgb=(20, 150, 150),
         paraphrase=_s("peacock", ("lagoon", "mallard")),
         wild=_s("petrol", ("ocean", "dark aqua")),
         typos=_s("teel", ("turqoise", "tael")),
         modifiers=_s("dull teal", ("dark turquoise", "dusty teal"))),
    Term("blue", ("blue", "cobalt"), rgb=(40, 100, 230),
         paraphrase=_s("cerulean", ("bluebell", "delft")),
         wild=_s("cornflower", "periwinkle"),
         typos=_s("bleu", ("blu", "cobolt")),
         modifiers=_s("bright blue", ("electric blue", "cool blue"))),
    Term("navy", ("navy", "navy blue"), rgb=(20, 30, 100),
         paraphrase=_s("inky", ("admiral", "prussian")),
         wild=_s("marine", "midnight"),
         typos=_s("navey", "nvay"),
         modifiers=_s((), "dark navy")),
    Term("purple", ("purple", "violet"), rgb=(130, 50, 170),
         paraphrase=_s("mulberry", ("damson", "blackcurrant")),
         wild=_s("grape", "amethyst"),
         typos=_s("purpel", ("pruple", "violett")),
         modifiers=_s("bright purple", ("dusty purple", "neon purple"))),
    Term("pink", ("pink", "rose"), rgb=(245, 130, 185),
         paraphrase=_s("flamingo", ("fuchsia", "candyfloss")),
         wild=_s("bubblegum", "carnation"),
         typos=_s("pnik", "pinkk"),
         modifiers=_s("baby pink", ("hot pink", "dusty pink"))),
    Term("brown", ("brown", "chocolate"), rgb=(120, 70, 30),
         paraphrase=_s("toffee", ("walnut", "espresso")),
         wild=_s("cocoa", "chestnut"),
         typos=_s("brwon", ("borwn", "chocolat")),
         modifiers=_s("warm brown", "medium brown")),
    Term("black", ("black", "jet black"), rgb=(20, 20, 20),
         paraphrase=_s("ebony", ("onyx", "obsidian")),
         wild=_s((), "charcoal"),
         typos=_s("balck", ("blakc", "blak")),
         modifiers=_s("almost black", ())),
    Term("white", ("white", "ivory"), rgb=(245, 245, 245),
         paraphrase=_s("chalk", ("alabaster", "pearl")),
         wild=_s("ice", "snow"),
         typos=_s("whtie", ("wihte", "ivroy")),
         modifiers=_s((), "off white")),
    Term("grey", ("grey", "gray"), rgb=(135, 135, 135),
         paraphrase=_s("pewter", ("ash", "graphite")),
         wild=_s((), "steel"),
         typos=_s("gery", ("graey", "grya")),
         modifiers=_s("warm grey", ("cool grey", "medium grey"))),
    Term("beige", ("beige", "sand"), rgb=(215, 190, 145),
         paraphrase=_s("oatmeal", ("biscuit", "ecru")),
         wild=_s("camel", ("tan", "taupe")),
         typos=_s("biege", ("beidge", "baige")),
         modifiers=_s((), "dark beige")),
)

PATTERNS: tuple[Term, ...] = (
    Term("solid", ("solid", "plain"),
         paraphrase=_s("single-tone", ("self-coloured", "unicolour")),
         wild=_s("patternless", "unpatterned"),
         typos=_s("plian", "soild")),
    Term("striped", ("striped", "stripes"),
         paraphrase=_s("pinstripe", ("banded", "candy stripe")),
         wild=_s(("stripy", "pinstriped"), "breton"),
         typos=_s("stripped", "stirped")),
    Term("dotted", ("polka dot", "dotted"),
         paraphrase=_s("spotted", ("dotty", "pin spot")),
         wild=_s("spotty", ("polkadot", "pindot")),
         typos=_s("doted", "dottted")),
    Term("checked", ("checked", "plaid"),
         paraphrase=_s("gingham", ("chequered", "windowpane")),
         wild=_s("tartan", ("checkered", "houndstooth")),
         typos=_s("checkd", "chekked")),
    Term("zigzag", ("zigzag", "chevron"),
         paraphrase=_s("herringbone", ("sawtooth", "fishbone")),
         wild=_s("zigzagged", "zig zag"),
         typos=_s("zigzg", ("zizag", "chevorn"))),
)

# Material/style: a non-visual attribute, named in text far more often than colour is.
MATERIALS: tuple[Term, ...] = (
    Term("cotton", ("cotton",), paraphrase=_s("organic fibre", ("poplin", "calico"))),
    Term("leather", ("leather",), paraphrase=_s("hide", ("suede", "nubuck"))),
    Term("wool", ("wool", "woollen"), paraphrase=_s("merino", ("lambswool", "cashmere"))),
    Term("canvas", ("canvas",), paraphrase=_s("duck cloth", ("sailcloth", "tent fabric"))),
    Term("ceramic", ("ceramic", "stoneware"),
         paraphrase=_s("porcelain", ("earthenware", "pottery"))),
    Term("recycled", ("recycled", "eco"), paraphrase=_s("upcycled", ("reclaimed", "repurposed"))),
)
# fmt: on

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
