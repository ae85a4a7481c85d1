"""The result of interpreting a query: understood parts, filters, free text and notes.

:class:`Interpretation` is immutable; ``without(chip_id)`` gives a new one with one piece
removed (one-click removal on the pages), ``to_dict`` / ``from_dict`` round-trip through JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

SLOT_ORDER = ("brand", "colour", "pattern", "material", "category")


@dataclass(frozen=True)
class Part:
    """One understood piece of the query."""

    id: str  # "colour:red"; negated parts "not:colour:black"
    slot: str
    value: str  # the catalog term
    surface: str  # the query words it came from
    confidence: float
    how: str  # exact | fuzzy | semantic | colour-table
    negated: bool = False
    detail: str = ""  # e.g. "Delta E 6.1 to red", "cosine 0.47 to 'dotted'"
    lab: tuple[float, float, float] | None = None  # colours: the Lab asked for (shade kept)


@dataclass(frozen=True)
class Filters:
    price_min: float | None = None
    price_max: float | None = None
    price_text: str | None = None
    new_only: bool = False
    exclude: dict[str, list[str]] = field(default_factory=dict)  # slot (or "text") -> values


@dataclass(frozen=True)
class Interpretation:
    """What a query was understood as; immutable (``without`` returns a new one)."""

    query: str
    parts: tuple[Part, ...] = ()
    filters: Filters = Filters()
    free_text: tuple[str, ...] = ()
    excluded_text: tuple[str, ...] = ()  # negated words that matched nothing
    notes: tuple[str, ...] = ()

    # --------------------------------------------------------------- views
    def positive(self, slot: str | None = None) -> list[Part]:
        return [p for p in self.parts if not p.negated and (slot is None or p.slot == slot)]

    def value(self, slot: str) -> str | None:
        ps = self.positive(slot)
        return ps[0].value if ps else None

    @property
    def is_empty(self) -> bool:
        f = self.filters
        return not (self.parts or self.free_text or self.excluded_text or f.new_only
                    or f.price_min is not None or f.price_max is not None)

    @property
    def rewritten(self) -> str:
        """The query in catalog words ("red dotted backpack" + free words)."""
        out = []
        for slot in SLOT_ORDER:
            out.extend(p.value for p in self.positive(slot))
        out.extend(self.free_text)
        return " ".join(out)

    @property
    def clip_prompt(self) -> str:
        """A caption-like prompt: "a red dotted backpack" (free words only when nothing else)."""
        words_ = [p.value for slot in SLOT_ORDER if slot != "brand" for p in self.positive(slot)]
        if not words_:
            words_ = list(self.free_text)
        if not words_:
            return ""
        text = " ".join(words_)
        return ("an " if text[0] in "aeiou" else "a ") + text

    def chips(self) -> list[tuple[str, str]]:
        """(id, text) of every removable piece, in display order."""
        out: list[tuple[str, str]] = []
        for slot in ("colour", "category", "pattern", "material", "brand"):
            out.extend((p.id, p.value) for p in self.positive(slot))
        out.extend((f"text:{w}", f"“{w}”") for w in self.free_text)
        out.extend((p.id, f"not {p.value}") for p in self.parts if p.negated)
        out.extend((f"not:text:{w}", f"not “{w}”") for w in self.excluded_text)
        f = self.filters
        if f.price_min is not None or f.price_max is not None:
            out.append(("price", price_label(f.price_min, f.price_max)))
        if f.new_only:
            out.append(("new", "new arrivals"))
        return out

    def label(self) -> str:
        """"red · backpack · dotted · under $50" (empty when nothing was understood)."""
        return " · ".join(text for _, text in self.chips())

    def without(self, part_id: str) -> Interpretation:
        """A new interpretation without the piece ``part_id`` (a chip id)."""
        f = self.filters
        if part_id == "price":
            return replace(self, filters=replace(f, price_min=None, price_max=None,
                                                 price_text=None))
        if part_id == "new":
            return replace(self, filters=replace(f, new_only=False))
        if part_id.startswith("text:"):
            w = part_id[5:]
            return replace(self, free_text=tuple(x for x in self.free_text if x != w))
        if part_id.startswith("not:text:"):
            w = part_id[9:]
            rest = tuple(x for x in self.excluded_text if x != w)
            return replace(self, excluded_text=rest, filters=exclusions(f, self.parts, rest))
        parts = tuple(p for p in self.parts if p.id != part_id)
        if len(parts) == len(self.parts):
            raise KeyError(f"no part {part_id!r}; parts: {', '.join(i for i, _ in self.chips())}")
        return replace(self, parts=parts, filters=exclusions(f, parts, self.excluded_text))

    # --------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        return {
            "query": self.query,
            "label": self.label(),
            "rewritten": self.rewritten,
            "clip_prompt": self.clip_prompt,
            "parts": [asdict(p) for p in self.parts],
            "filters": asdict(self.filters),
            "free_text": list(self.free_text),
            "excluded_text": list(self.excluded_text),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Interpretation:
        f = d.get("filters", {})
        return cls(
            query=d.get("query", ""),
            parts=tuple(Part(**{**p, "lab": tuple(p["lab"]) if p.get("lab") else None})
                        for p in d.get("parts", [])),
            filters=Filters(f.get("price_min"), f.get("price_max"), f.get("price_text"),
                            bool(f.get("new_only")),
                            {k: list(v) for k, v in f.get("exclude", {}).items()}),
            free_text=tuple(d.get("free_text", [])),
            excluded_text=tuple(d.get("excluded_text", [])),
            notes=tuple(d.get("notes", [])),
        )


def price_label(lo: float | None, hi: float | None) -> str:
    def money(v: float) -> str:
        return f"${v:,.0f}" if float(v).is_integer() else f"${v:,.2f}"

    if lo is not None and hi is not None:
        return f"{money(lo)}–{money(hi)}"
    if hi is not None:
        return f"under {money(hi)}"
    return f"over {money(lo)}" if lo is not None else ""


def exclusions(f: Filters, parts: tuple[Part, ...], excluded_text: tuple[str, ...]) -> Filters:
    ex: dict[str, list[str]] = {}
    for p in parts:
        if p.negated and p.value not in ex.setdefault(p.slot, []):
            ex[p.slot].append(p.value)
    if excluded_text:
        ex["text"] = list(excluded_text)
    return replace(f, exclude={k: v for k, v in ex.items() if v})
