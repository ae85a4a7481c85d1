"""Turn a typed query into an :class:`Interpretation` in the catalog's own words.

Order of work (each word is used by the first step that claims it):

1. clean the text (NFKC, accents, control characters and emoji dropped, ``MAX_CHARS``);
2. constraints: price, NEW and stop phrases (:mod:`engine.query.constraints`);
3. words; stop words and negation cues split them into segments (n-grams never cross them);
   at most ``MAX_WORDS`` content words are read;
4. **exact**: the longest n-grams (up to 3 words) that are lexicon surfaces, also without spaces
   ("tablelamp") and singular/plural variants ("dresses");
5. **colour-table**: colour phrases with modifiers (:func:`~engine.query.colours.parse_colour`)
   mapped to the nearest catalog colour by CIEDE2000 (kL = 2) to its image-grounded Lab;
6. **fuzzy**: remaining words not in the catalog vocabulary against every surface (rapidfuzz
   ratio >= ``FUZZY_MIN``, same first letter unless >= ``FUZZY_ANY``), then colour names;
7. **semantic**: remaining n-grams with a word the catalog does not use, against the surfaces of
   slots not yet filled (encoder cosine >= ``SEMANTIC_MIN[slot]``, ahead of the slot's next
   term by ``SEMANTIC_MARGIN``, not behind another slot's best surface by more than
   ``-SEMANTIC_CROSS``; a phrase must beat its words by ``SEMANTIC_PHRASE_GAIN``);
8. the rest is free text. A negation cue before a part turns it into an exclusion.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

import numpy as np
from rapidfuzz import fuzz, process

from engine.query.colours import (
    INTENSIFIERS,
    MODIFIERS,
    ColourTable,
    ciede2000,
    colour_table,
    parse_colour,
)
from engine.query.constraints import (
    BARRIER,
    NEGATION_PHRASES,
    NEGATION_WORDS,
    parse_constraints,
)
from engine.query.interpretation import Filters, Interpretation, Part, exclusions
from engine.query.lexicon import QueryLexicon
from engine.query.semantic import SemanticMatcher, WordVectors
from engine.query.text import QUERY_STOPWORDS, compact, words

MAX_CHARS = 1000
MAX_WORDS = 32
MAX_N = 3
COLOUR_MATCH_DE = 25.0  # CIEDE2000 (kL=2) from the phrase's colour to the nearest catalog colour
COLOUR_KL = 2.0
MODIFIER_SLACK = 12.0  # "dark green" keeps green unless another colour is this much closer
FUZZY_MIN, FUZZY_ANY = 85.0, 92.0
SWAP_CONF = 0.85  # a word read as a surface with two neighbouring letters swapped
FUZZY_COLOUR_MIN = 87.0
FUZZY_COLOUR_LEN = 6  # "seat" is not a typo of "sea", nor "pearl" of "pear"
SEMANTIC_MIN = {"category": 0.40, "pattern": 0.42, "material": 0.42, "colour": 0.56}
SEMANTIC_MARGIN = 0.03  # ahead of the slot's next term by this much
SEMANTIC_CROSS = -0.02  # and not behind the best surface of another slot by more than this
SEMANTIC_PHRASE_GAIN = 0.03  # a phrase must beat the best of its words by this much
PARTIAL_CONF = 0.8
_KEEP = re.compile(r"[^\w\s$€£.,+\-<>=~&'’%≤≥–]")


def swapped(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with exactly two neighbouring characters exchanged."""
    if len(a) != len(b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
    return (len(diff) == 2 and diff[1] == diff[0] + 1
            and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])


def _plural_variants(p: str) -> list[str]:
    last = p.split()[-1] if p else ""
    head = p[: len(p) - len(last)]
    out = []
    if last.endswith("ies") and len(last) > 4:
        out.append(head + last[:-3] + "y")
    if last.endswith("es") and len(last) > 4:
        out.append(head + last[:-2])
    if last.endswith("s") and len(last) > 3:
        out.append(head + last[:-1])
    else:
        out.append(head + last + "s")
    return out


@dataclass
class _Tok:
    word: str
    seg: int
    negated: bool = False
    used: bool = False


class Interpreter:
    """Interprets queries against one lexicon; holds the caches (build once per catalog)."""

    def __init__(self, lexicon: QueryLexicon, encoder=None, words: WordVectors | None = None,
                 table: ColourTable | None = None):
        self.lexicon = lexicon
        self.table = table or colour_table()
        self.matcher = SemanticMatcher(lexicon, words, encoder)
        idx, labs = lexicon.colour_labs()
        self.colour_idx, self.colour_lab = idx, labs
        self.fuzzy_choices = [compact(s) for _, s in lexicon.surface_rows]
        self.colour_names = list(self.table.names)

    # ------------------------------------------------------------------ pieces
    def _colour_match(self, labs: np.ndarray) -> tuple[int, float, float] | None:
        """(term index, best Delta E, second best Delta E) of the nearest catalog colour."""
        if not self.colour_idx:
            return None
        d = ciede2000(np.asarray(labs)[:, None, :], self.colour_lab[None, :, :],
                      kL=COLOUR_KL).min(0)
        order = np.argsort(d)
        second = float(d[order[1]]) if len(order) > 1 else float("inf")
        return self.colour_idx[int(order[0])], float(d[order[0]]), second

    def _swap_of(self, word: str) -> int | None:
        """The surface row that ``word`` (4+ letters) spells with two neighbouring letters
        swapped, keeping its first letter ("vsae" → vase); None when there is none. Indel
        similarity scores such a swap at most 75 % on a four-letter word, under FUZZY_MIN."""
        if len(word) < 4:
            return None
        for j, choice in enumerate(self.fuzzy_choices):
            if len(choice) == len(word) and choice[0] == word[0] and swapped(word, choice):
                return j
        return None

    def _part(self, t_idx: int, surface: str, conf: float, how: str, negated: bool,
              detail: str = "", lab: np.ndarray | None = None) -> Part:
        term = self.lexicon.terms[t_idx]
        pid = ("not:" if negated else "") + term.key
        if lab is None and term.lab is not None:
            lab = np.asarray(term.lab)
        lab_t = None if lab is None else tuple(round(float(x), 2) for x in lab)
        return Part(pid, term.slot, term.value, surface, round(float(conf), 3), how, negated,
                    detail, lab_t)

    # ------------------------------------------------------------------ main
    def interpret(self, text: object) -> Interpretation:
        notes: list[str] = []
        raw = text if isinstance(text, str) else ""
        if not isinstance(text, str) and text is not None:
            notes.append("The query was not text; it was ignored.")
        clean = "".join(" " if unicodedata.category(c)[0] in "CS" and c not in "$€£<>=~+%≤≥"
                        else c for c in unicodedata.normalize("NFKC", raw))
        if len(clean) > MAX_CHARS:
            notes.append(f"Only the first {MAX_CHARS} characters were read.")
            clean = clean[:MAX_CHARS]
        clean = _KEEP.sub(" ", clean.lower())
        cons = parse_constraints(clean)
        body = NEGATION_PHRASES.sub(" not ", cons.text)

        toks: list[_Tok] = []
        seg, negate, content = 0, False, 0
        dropped = 0
        for chunk in re.split(r"[;,.!?()\[\]{}/|:]+|\s+(?:and|or|&|but)\s+",
                              body.replace(BARRIER, ";")):
            seg += 1
            for w in words(chunk):
                if w in NEGATION_WORDS:
                    negate, seg = True, seg + 1
                    continue
                if w in QUERY_STOPWORDS:
                    seg += 1
                    continue
                if content >= MAX_WORDS:
                    dropped += 1
                    continue
                toks.append(_Tok(w, seg, negate))
                negate = False
                content += 1
        if dropped:
            notes.append(f"Only the first {MAX_WORDS} words were read ({dropped} more ignored).")

        parts: list[Part] = []
        filled: set[str] = set()

        def spans(max_n: int):
            for n in range(min(max_n, len(toks)), 0, -1):
                for i in range(len(toks) - n + 1):
                    span = toks[i : i + n]
                    if any(t.used for t in span) or span[0].seg != span[-1].seg:
                        continue
                    yield i, n, " ".join(t.word for t in span)

        def claim(i: int, n: int) -> bool:
            for t in toks[i : i + n]:
                t.used = True
            return toks[i].negated

        lex = self.lexicon

        def colour_pass(multi_only: bool) -> None:
            """Colour phrases from the colour table (multi-word ones first: "sky blue")."""
            for i in range(len(toks)):
                if toks[i].used:
                    continue
                run = []
                for t in toks[i:]:
                    if t.used or t.seg != toks[i].seg:
                        break
                    run.append(t.word)
                cp = parse_colour(run, self.table)
                if cp is None or (multi_only and (cp.n_words < 2 or " ".join(
                        run[: cp.n_words]) in lex.exact)):
                    continue
                surface = " ".join(run[: cp.n_words])
                hit = self._colour_match(cp.labs)
                if hit is None:
                    notes.append(f"'{surface}' is a colour, but the catalog has no colour terms.")
                    continue
                t_idx, d1, d2 = hit
                head = cp.name.split()[-1]
                base_idx = lex.exact.get(head) if (cp.modifiers or head != cp.name) else None
                if (base_idx is not None and base_idx != t_idx
                        and lex.terms[base_idx].slot == "colour"):
                    d_base = float(ciede2000(cp.labs, np.asarray(lex.terms[base_idx].lab),
                                             kL=COLOUR_KL).min())
                    if d_base <= d1 + MODIFIER_SLACK:  # "light blue" stays blue unless far off
                        t_idx, d1, d2 = base_idx, d_base, max(d1, d_base)
                if d1 > COLOUR_MATCH_DE:
                    near = lex.terms[t_idx].value
                    notes.append(f"'{surface}' is a colour the catalog does not carry (nearest:"
                                 f" {near}, Delta E {d1:.0f}); kept as free text.")
                    continue
                conf = 0.5 * (1 - d1 / COLOUR_MATCH_DE) + 0.5 * min(1.0, (d2 - d1) / max(d2,
                                                                                       1e-9))
                neg = claim(i, cp.n_words)
                shade = f" ({cp.text})" if cp.modifiers else ""
                parts.append(self._part(t_idx, surface, max(conf, 0.05), "colour-table", neg,
                                        f"Delta E {d1:.1f} to {lex.terms[t_idx].value}{shade}",
                                        lab=cp.labs.mean(0)))
                filled.add("colour")

        colour_pass(multi_only=True)
        # exact (and compact / plural variants)
        for i, n, g in list(spans(MAX_N)):
            if any(t.used for t in toks[i : i + n]):
                continue
            t_idx, conf = lex.exact.get(g), 1.0
            if t_idx is None:
                t_idx, conf = lex.compact_index.get(compact(g)), 0.95
            if t_idx is None:
                for v in _plural_variants(g):
                    t_idx = lex.exact.get(v, lex.compact_index.get(compact(v)))
                    if t_idx is not None:
                        conf = 0.95
                        break
            if t_idx is not None:
                if (lex.terms[t_idx].slot == "colour" and i > 0 and not toks[i - 1].used
                        and toks[i - 1].seg == toks[i].seg
                        and (toks[i - 1].word in MODIFIERS or toks[i - 1].word in INTENSIFIERS)):
                    continue  # "light blue": the colour pass reads the whole phrase
                neg = claim(i, n)
                parts.append(self._part(t_idx, g, conf, "exact", neg))
                filled.add(lex.terms[t_idx].slot)

        # a word used in the catalog only inside one term's phrase ("tote" of "tote bag")
        for i, t in enumerate(toks):
            if not t.used and t.word in lex.partial:
                t_idx, surface = lex.partial[t.word]
                neg = claim(i, 1)
                parts.append(self._part(t_idx, t.word, PARTIAL_CONF, "exact", neg,
                                        f"part of '{surface}'"))
                filled.add(lex.terms[t_idx].slot)

        colour_pass(multi_only=False)

        vocab = lex.vocabulary
        known = self.matcher.words.index if self.matcher.words is not None else {}
        # fuzzy: typos and variants of surfaces, then of colour names
        for i, n, g in list(spans(2)):
            if any(t.used for t in toks[i : i + n]) or len(compact(g)) < 4:
                continue
            if all(t.word in vocab or t.word.isdigit() or t.word in known
                   or t.word in MODIFIERS for t in toks[i : i + n]):
                continue  # a real word is not a typo
            c = compact(g)
            hit = process.extractOne(c, self.fuzzy_choices, scorer=fuzz.ratio,
                                     score_cutoff=FUZZY_MIN)
            if hit is not None and (hit[1] >= FUZZY_ANY or hit[0][0] == c[0]):
                t_idx, surface = lex.surface_rows[hit[2]]
                neg = claim(i, n)
                parts.append(self._part(t_idx, g, hit[1] / 100, "fuzzy", neg,
                                        f"{hit[1]:.0f} % like '{surface}'"))
                filled.add(lex.terms[t_idx].slot)
                continue
            swap = self._swap_of(c) if n == 1 else None
            if swap is not None:  # two neighbouring letters typed the wrong way round
                t_idx, surface = lex.surface_rows[swap]
                neg = claim(i, n)
                parts.append(self._part(t_idx, g, SWAP_CONF, "fuzzy", neg,
                                        f"'{surface}' with two letters swapped"))
                filled.add(lex.terms[t_idx].slot)
                continue
            if n == 1 and self.colour_idx and len(g) >= FUZZY_COLOUR_LEN:
                hit = process.extractOne(g, self.colour_names, scorer=fuzz.ratio,
                                         score_cutoff=FUZZY_COLOUR_MIN)
                if hit is not None and hit[0][0] == g[0] and hit[1] < 100:
                    m = self._colour_match(self.table.lab(hit[0]))
                    if m is not None and m[1] <= COLOUR_MATCH_DE:
                        neg = claim(i, n)
                        parts.append(self._part(m[0], g, hit[1] / 100 * 0.9, "fuzzy", neg,
                                                f"read as the colour '{hit[0]}'"))
                        filled.add("colour")

        # semantic: words the catalog does not use, against slots not yet filled
        cands = [(i, n, g) for i, n, g in spans(MAX_N)
                 if any(t.word not in vocab for t in toks[i : i + n])
                 and not all(t.word.isdigit() for t in toks[i : i + n])]
        open_slots = [s for s in ("category", "pattern", "material", "colour") if s not in filled]
        if cands and open_slots and self.matcher.enabled:
            vecs = self.matcher.vectors([g for _, _, g in cands])
            scored = []
            for i, n, g in cands:
                if g not in vecs:
                    continue
                v, _ = vecs[g]
                for slot in open_slots:
                    if slot == "colour" and parse_colour(g.split(), self.table) is not None:
                        continue
                    best = self.matcher.best(v, slot)
                    if best is None:
                        continue
                    t_idx, surface, sim, second = best
                    if (sim >= SEMANTIC_MIN[slot] and sim - second >= SEMANTIC_MARGIN
                            and sim - self.matcher.best_other(v, slot) >= SEMANTIC_CROSS):
                        scored.append((sim, n, i, g, slot, t_idx, surface))
            # a phrase must beat each of its words on its own ("light fixture" does; "spotted
            # brolly", a mean of two unrelated words, does not beat "spotted")
            word_best: dict[int, float] = {}
            for sim, n, i, *_ in scored:
                if n == 1:
                    word_best[i] = max(word_best.get(i, -1.0), sim)
            scored = [s for s in scored if s[1] == 1 or s[0] >= max(
                (word_best.get(k, -1.0) for k in range(s[2], s[2] + s[1])), default=-1.0)
                + SEMANTIC_PHRASE_GAIN]
            for sim, n, i, g, slot, t_idx, surface in sorted(scored, key=lambda s: (-s[0], -s[1])):
                if slot in filled or any(t.used for t in toks[i : i + n]):
                    continue
                neg = claim(i, n)
                parts.append(self._part(t_idx, g, sim, "semantic", neg,
                                        f"cosine {sim:.2f} to '{surface}'"))
                filled.add(slot)

        free = tuple(dict.fromkeys(t.word for t in toks if not t.used and not t.negated))
        excluded = tuple(dict.fromkeys(t.word for t in toks if not t.used and t.negated))
        parts_t = tuple(_dedupe(parts))

        price_min, price_max = cons.price_min, cons.price_max
        if cons.price_words:
            cat = next((p.value for p in parts_t if p.slot == "category" and not p.negated), None)
            stats = lex.price.get("by_category", {}).get(cat) if cat else None
            stats = stats or lex.price.get("all") or {}
            if cons.price_words == "cheap" and "q25" in stats:
                price_max = float(stats["q25"])
            elif cons.price_words == "expensive" and "q75" in stats:
                price_min = float(stats["q75"])
            else:
                notes.append(f"'{cons.price_text}' was ignored: the catalog has no prices.")
        filters = exclusions(Filters(price_min, price_max, cons.price_text, cons.new_only),
                              parts_t, excluded)
        interp = Interpretation(raw, parts_t, filters, free, excluded, tuple(notes))
        if not toks and not interp.parts:
            if interp.is_empty:
                if not raw.strip():
                    msg = "The query is empty."
                elif not re.search(r"[^\W_]", clean):
                    msg = "Nothing to search for: the query has no words (only symbols or emoji)."
                else:
                    msg = "Nothing to search for: the query has only stop words."
                interp = replace(interp, notes=interp.notes + (msg,))
            else:
                interp = replace(interp, notes=interp.notes + (
                    "Only filters were given; results are ranked without a text query.",))
        return interp


def _dedupe(parts: list[Part]) -> list[Part]:
    seen: dict[str, Part] = {}
    for p in parts:
        if p.id not in seen or p.confidence > seen[p.id].confidence:
            seen[p.id] = p
    order = {s: k for k, s in enumerate(("colour", "category", "pattern", "material", "brand"))}
    return sorted(seen.values(), key=lambda p: (p.negated, order.get(p.slot, 9)))


_CACHE: dict[tuple[int, int, int], Interpreter] = {}


def interpret(text: object, lexicon: QueryLexicon, encoder=None,
              words: WordVectors | None = None) -> Interpretation:
    """Interpret ``text`` against ``lexicon`` (one cached :class:`Interpreter` per lexicon)."""
    key = (id(lexicon), id(encoder), id(words))
    it = _CACHE.get(key)
    if it is None or it.lexicon is not lexicon:
        if len(_CACHE) > 8:
            _CACHE.clear()
        it = _CACHE[key] = Interpreter(lexicon, encoder, words)
    return it.interpret(text)
