"""Mine a :class:`QueryLexicon` from catalog tables (the heuristics are listed in lexicon.py).

``build_lexicon(items, keywords, image_stats, encoder)`` is the one entry point. Every
threshold is a module constant, named in ``docs/query-understanding.md`` with how it was chosen.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pandas as pd

from engine.query.colours import (
    INTENSIFIERS,
    MODIFIERS,
    ColourTable,
    ciede2000,
    colour_table,
    parse_colour,
)
from engine.query.image_colours import ImageColourStats
from engine.query.lexicon import QueryLexicon, Term, catalog_items, price_stats
from engine.query.text import phrase, words

MAX_PHRASE = 3
MIN_SUPPORT_SHARE = 0.002  # a surface needs max(3, 0.2 % of the items) weighted uses
CATEGORY_PURITY = 0.85  # share of a title-final phrase's items in its majority category
CATEGORY_FINAL = 0.5  # share of the phrase's title uses that end the title
COLLOCATION = 0.8  # P(rest of phrase | its first word) for multi-word surfaces
COLOUR_RADIUS = 12.0  # CIEDE2000 radius of a colour cluster among item dominant colours
COLOUR_COHESION = 0.35  # share of a word's items inside its densest colour cluster
COLOUR_LIFT = 2.0  # ... relative to the share of all items inside that cluster
COLOUR_TABLE_DE = 30.0  # max CIEDE2000 (kL=2) between the cluster and the table's colour
COLOUR_MERGE_DE = 7.0  # colour terms closer than this are one colour
COLOUR_SAMPLE = 800  # items per word used to find the densest cluster (deterministic)
MATERIAL_BEFORE_NOUN = 0.7  # share of a word's title uses directly before the category noun
SYNONYM_OVERLAP = 0.6  # tag phrases put on the same items: |A & B| / min(|A|, |B|)
PATTERN_TEXT_SHARE = 0.35  # Wilson lower bound of the share of a title word's items whose top
#                            pattern tag is the group's (the most common one among its items) ..
PATTERN_TEXT_LIFT = 2.0  # ... and that share over the group's base rate
VOCABULARY_SIZE = 5000


class _Occurrences:
    """Where catalog phrases occur: title n-grams, description n-grams and tags per item."""

    def __init__(self, items: pd.DataFrame, keywords: pd.DataFrame | None):
        self.n = len(items)
        self.titles = [words(t) for t in items["title"]]
        self.title: dict[str, dict[int, float]] = defaultdict(dict)
        self.text: dict[str, dict[int, float]] = defaultdict(dict)  # title + description
        self.final: Counter = Counter()
        for i, (toks, desc) in enumerate(zip(self.titles, items["description"])):
            for n in range(1, MAX_PHRASE + 1):
                for j in range(len(toks) - n + 1):
                    g = " ".join(toks[j : j + n])
                    self.title[g][i] = 1.0
                    self.text[g][i] = 1.0
                if len(toks) >= n:
                    self.final[" ".join(toks[-n:])] += 1
            d = words(desc)
            for n in range(1, MAX_PHRASE + 1):
                for j in range(len(d) - n + 1):
                    self.text[" ".join(d[j : j + n])][i] = 1.0
        self.tags: dict[str, dict[int, float]] = defaultdict(dict)
        self.tag_source: dict[str, Counter] = defaultdict(Counter)
        # A tagger that says which field each tag is (one word per value): two tags of one
        # field on one item are alternatives, never synonyms.
        self.fielded = keywords is not None and "field" in keywords
        if keywords is not None and len(keywords):
            row_of = {item: r for r, item in enumerate(items["item_id"])}
            for item, kw, conf, src in zip(keywords["item_id"], keywords["keyword"],
                                           keywords["confidence"], keywords.get(
                                               "source", pd.Series([""] * len(keywords)))):
                r = row_of.get(item)
                p = phrase(str(kw))
                if r is None or not p:
                    continue
                c = float(conf) if pd.notna(conf) else 0.5
                self.tags[p][r] = max(self.tags[p].get(r, 0.0), c)
                self.tag_source[p][str(src)] += 1

    def items_of(self, p: str, *, tags: bool = True, text: bool = True) -> dict[int, float]:
        out: dict[int, float] = dict(self.text.get(p, {})) if text else {}
        if tags:
            for i, c in self.tags.get(p, {}).items():
                out[i] = max(out.get(i, 0.0), c)
        return out


def _overlap(a: dict[int, float], b: dict[int, float]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a.keys() & b.keys())
    return inter / min(len(a), len(b))


def _wilson_low(hits: int, n: int, z: float = 1.64) -> float:
    """Lower end of the Wilson score interval of a proportion (one-sided 95 %)."""
    if n == 0:
        return 0.0
    p = hits / n
    centre = p + z * z / (2 * n)
    margin = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - margin) / (1 + z * z / n))


def _group(cands: list[tuple[str, dict[int, float]]]) -> list[list[str]]:
    """Greedy synonym groups by item overlap; candidates come best supported first."""
    groups: list[tuple[list[str], dict[int, float]]] = []
    for p, occ in cands:
        for names, g_occ in groups:
            if _overlap(occ, g_occ) >= SYNONYM_OVERLAP:
                names.append(p)
                break
        else:
            groups.append(([p], occ))
    return [names for names, _ in groups]


# ----------------------------------------------------------------------------- category
def _mine_categories(items: pd.DataFrame, occ: _Occurrences, min_support: float,
                     brands: set[str]) -> list[Term]:
    cats = items["category"].to_numpy()
    values = [c for c, n in Counter(cats).most_common() if c]
    if not values:  # no merchant categories: the frequent title-final words stand in for them
        finals = Counter(t[-1] for t in occ.titles if t)
        values = [w for w, n in finals.most_common() if n >= min_support and w not in brands]
        cats = np.array([t[-1] if t else "" for t in occ.titles], dtype=object)
    surfaces: dict[str, dict[str, float]] = {v: {phrase(v): float((cats == v).sum())}
                                             for v in values}
    for g, n_final in occ.final.items():
        title_items = occ.title.get(g, {})
        if n_final < min_support or g in brands or not title_items:
            continue
        if n_final / len(title_items) < CATEGORY_FINAL:
            continue
        counts = Counter(cats[i] for i in title_items)
        best, n_best = counts.most_common(1)[0]
        if not best or n_best / len(title_items) < CATEGORY_PURITY:
            continue
        toks = g.split()
        first_uses = max(len(occ.title.get(toks[0], {})), 1)
        if len(toks) > 1 and len(title_items) / first_uses < COLLOCATION:
            continue
        surfaces[best].setdefault(g, float(n_best))
    terms = []
    for v in values:
        ordered = sorted(surfaces[v].items(), key=lambda kv: (-kv[1], kv[0]))
        main = phrase(v)
        ordered = [(main, surfaces[v][main])] + [kv for kv in ordered if kv[0] != main]
        terms.append(Term("category", v, [s for s, _ in ordered], [n for _, n in ordered],
                          evidence={"items": int((cats == v).sum())}))
    return terms


# ----------------------------------------------------------------------------- colour
def _colour_candidates(occ: _Occurrences, table: ColourTable) -> dict[str, dict[int, float]]:
    """Colour phrases (greedy longest table parse) in titles, descriptions and whole tags."""
    found: dict[str, dict[int, float]] = defaultdict(dict)
    starts = table.first_words | MODIFIERS.keys() | INTENSIFIERS
    for g, items in occ.text.items():
        toks = g.split()
        if toks[0] not in starts and not (len(toks) == 1 and parse_colour(toks, table)):
            continue
        cp = parse_colour(toks, table)
        if cp is not None and cp.n_words == len(toks):
            for i in items:
                found[g][i] = 1.0
    for p, items in occ.tags.items():
        cp = parse_colour(p.split(), table)
        if cp is not None and cp.n_words == len(p.split()):
            for i, c in items.items():
                found[p][i] = max(found[p].get(i, 0.0), c)
    # a word inside a longer colour phrase ("blue" in "navy blue") is not a use of that word
    for p in sorted(found, key=lambda s: -len(s.split())):
        toks = p.split()
        for n in range(1, len(toks)):
            for j in range(len(toks) - n + 1):
                sub = " ".join(toks[j : j + n])
                if sub in found:
                    for i in occ.text.get(p, {}):
                        if i not in occ.tags.get(sub, {}):
                            found[sub].pop(i, None)
    return found


def _densest(labs: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre of the densest CIEDE2000 ball among weighted Lab points, and its weight share."""
    d = ciede2000(labs[:, None, :], labs[None, :, :])
    near = d < COLOUR_RADIUS
    best = int(np.argmax(near @ w))
    centre = np.average(labs[near[best]], axis=0, weights=w[near[best]])
    inside = ciede2000(labs, centre) < COLOUR_RADIUS
    centre = np.average(labs[inside], axis=0, weights=w[inside])
    share = float(w[ciede2000(labs, centre) < COLOUR_RADIUS].sum() / w.sum())
    return centre, share


def _mine_colours(occ: _Occurrences, stats: ImageColourStats | None, min_support: float,
                  taken: set[str], brands: set[str], table: ColourTable,
                  rejected: dict) -> list[Term]:
    cands = _colour_candidates(occ, table)
    accepted: list[tuple[str, float, np.ndarray, dict]] = []
    valid = stats.valid if stats is not None else None
    for p, items in sorted(cands.items()):
        support = float(sum(items.values()))
        if p in brands:
            rejected[p] = "colour name used as a brand"
            continue
        if p in taken:
            rejected[p] = "colour name used as a category word"
            continue
        if support < min_support:
            continue
        table_lab = table.lab(parse_colour(p.split(), table).name) if p in table else \
            parse_colour(p.split(), table).labs
        if stats is None:  # no pixels: trust only the tagger's colour words
            if p in occ.tags:
                accepted.append((p, support, table_lab[0], {"grounded": "table"}))
            continue
        idx = np.array([i for i in items if valid[i]], dtype=np.intp)
        if len(idx) < min_support:
            rejected[p] = "too few readable images"
            continue
        w = np.array([items[i] for i in idx])
        if len(idx) > COLOUR_SAMPLE:  # deterministic subsample: every k-th item
            keep = np.linspace(0, len(idx) - 1, COLOUR_SAMPLE).astype(np.intp)
            idx, w = idx[keep], w[keep]
        labs = stats.dominant[idx].astype(np.float64)
        centre, cohesion = _densest(labs, w)
        base = float(np.mean(ciede2000(stats.dominant[valid], centre) < COLOUR_RADIUS))
        lift = cohesion / max(base, 1e-6)
        table_de = float(np.min(ciede2000(table_lab, centre, kL=2.0)))
        ev = {"support": round(support, 1), "cohesion": round(cohesion, 3),
              "lift": round(lift, 2), "table_de": round(table_de, 1)}
        if cohesion < COLOUR_COHESION or lift < COLOUR_LIFT:
            rejected[p] = f"images of its items do not share a colour {ev}"
        elif table_de > COLOUR_TABLE_DE:
            rejected[p] = f"images show a colour unlike the table's {ev}"
        else:
            accepted.append((p, support, centre, ev))
    accepted.sort(key=lambda a: (-a[1], a[0]))
    groups: list[list[tuple[str, float, np.ndarray, dict]]] = []
    for a in accepted:
        for g in groups:
            if float(ciede2000(a[2], g[0][2])) < COLOUR_MERGE_DE:
                g.append(a)
                break
        else:
            groups.append([a])
    terms = []
    for g in groups:
        sup = np.array([a[1] for a in g])
        lab = np.average(np.stack([a[2] for a in g]), axis=0, weights=sup)
        terms.append(Term("colour", g[0][0], [a[0] for a in g], [round(a[1], 1) for a in g],
                          lab=[round(float(x), 2) for x in lab],
                          evidence={a[0]: a[3] for a in g}))
    return terms


# ----------------------------------------------------------------------------- material
def _mine_materials(occ: _Occurrences, min_support: float, nouns: set[str],
                    taken: set[str], brand_words: set[str]) -> list[Term]:
    before: Counter = Counter()
    for toks in occ.titles:
        for n in range(min(MAX_PHRASE, len(toks) - 1), 0, -1):
            if " ".join(toks[-n:]) in nouns:
                before[toks[-n - 1]] += 1
                break
    cands = []
    for w, k in before.items():
        uses = len(occ.title.get(w, {}))
        if (k < min_support or k / max(uses, 1) < MATERIAL_BEFORE_NOUN or w in taken
                or w in brand_words or w.isdigit() or len(w) < 3):
            continue
        cands.append((w, occ.items_of(w)))
    # the tagger's main word names the group ("recycled", not its weaker synonym "eco")
    cands.sort(key=lambda c: (-sum(occ.tags.get(c[0], {}).values()), -sum(c[1].values()), c[0]))
    terms = []
    for names in _group(cands):
        sup = [round(sum(occ.items_of(p).values()), 1) for p in names]
        terms.append(Term("material", names[0], names, sup,
                          evidence={"before_noun": {p: before[p] for p in names}}))
    return terms


# ----------------------------------------------------------------------------- pattern
def _mine_patterns(occ: _Occurrences, min_support: float, taken: set[str],
                   brand_words: set[str], stop: frozenset[str]) -> list[Term]:
    cands = []
    for p, items in occ.tags.items():
        toks = p.split()
        if (p in taken or sum(items.values()) < min_support or all(t in stop for t in toks)
                or any(t in brand_words for t in toks) or occ.tag_source[p].get("catalog")):
            continue
        cands.append((p, items))
    cands.sort(key=lambda c: (-sum(c[1].values()), c[0]))
    taken_words = {w for p in taken for w in p.split()}
    # Each item's most confident pattern tag: what the tagger thinks the item shows.
    top: dict[int, tuple[float, str]] = {}
    for p, items in cands:
        for i, c in items.items():
            if c > top.get(i, (0.0, ""))[0]:
                top[i] = (c, p)
    groups = _group(cands) if not occ.fielded else [[p] for p, _ in cands]
    group_items = [{i for i, (_, p) in top.items() if p in names} for names in groups]
    base = [len(g) / max(occ.n, 1) for g in group_items]
    extra: list[list[str]] = [[] for _ in groups]
    for g, t_items in occ.title.items():
        if (" " in g or g in taken_words or any(g in names for names in groups) or g in stop
                or g in brand_words or len(t_items) < min_support or len(g) < 3 or g.isdigit()):
            continue
        hits = [len(t_items.keys() & items) for items in group_items]
        if not hits:
            continue
        j = int(np.argmax(hits))  # the pattern most of the word's items are tagged with
        low = _wilson_low(hits[j], len(t_items))
        if low >= PATTERN_TEXT_SHARE and low >= PATTERN_TEXT_LIFT * base[j]:
            extra[j].append(g)
    terms = []
    for names, g_items, more in zip(groups, group_items, extra):
        surfaces = names + sorted(set(more) - set(names))
        sup = [round(sum(occ.items_of(p).values()), 1) for p in surfaces]
        terms.append(Term("pattern", names[0], surfaces, sup,
                          evidence={"items": len(g_items), "from_titles": sorted(more)}))
    return terms


# ----------------------------------------------------------------------------- entry point
def build_lexicon(items: pd.DataFrame, keywords: pd.DataFrame | None = None,
                  image_stats: ImageColourStats | None = None, encoder=None, *,
                  min_support: float | None = None,
                  table: ColourTable | None = None) -> QueryLexicon:
    """Mine the query lexicon of a catalog (see the lexicon module doc for the heuristics).

    ``items`` may hold any columns: only :data:`~engine.query.lexicon.CATALOG_COLUMNS` are
    read. ``image_stats`` rows follow ``items`` rows. ``encoder`` (anything with
    ``encode(list[str])``) gives the surfaces' vectors; without it semantic matching is off.
    """
    from engine.indexes.tokenize import STOPWORDS

    items = catalog_items(items)
    if image_stats is not None and len(image_stats) != len(items):
        raise ValueError(f"image colour statistics have {len(image_stats)} rows for "
                         f"{len(items)} items")
    table = table or colour_table()
    min_support = float(min_support or max(3, round(MIN_SUPPORT_SHARE * len(items))))
    occ = _Occurrences(items, keywords)
    brands = {phrase(b) for b in items["brand"].unique() if phrase(b)}
    brand_words = {w for b in brands for w in b.split()}
    rejected: dict[str, str] = {}

    categories = _mine_categories(items, occ, min_support, brands)
    nouns = {s for t in categories for s in t.surfaces}
    colours = _mine_colours(occ, image_stats, min_support, nouns, brands, table, rejected)
    colour_words = {s for t in colours for s in t.surfaces}
    materials = _mine_materials(occ, min_support, nouns, nouns | colour_words, brand_words)
    taken = nouns | colour_words | {s for t in materials for s in t.surfaces} | brands
    patterns = _mine_patterns(occ, min_support, taken, brand_words, STOPWORDS)
    brand_terms = [
        Term("brand", b, [phrase(b)], [float((items["brand"] == b).sum())])
        for b, _ in Counter(items["brand"]).most_common() if phrase(b)
    ]
    df: Counter = Counter()
    for g, its in occ.text.items():
        if " " not in g:
            df[g] = len(its)
    vocabulary = dict(df.most_common(VOCABULARY_SIZE))
    lex = QueryLexicon(
        terms=categories + colours + patterns + materials + brand_terms,
        price=price_stats(items),
        vocabulary=vocabulary,
        rejected=rejected,
        n_items=len(items),
    )
    if encoder is not None:
        lex.encode_surfaces(encoder)
    return lex
