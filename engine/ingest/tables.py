"""Read a user's catalog and interactions files and validate them into PixelMatch's tables.

Catalog columns (case-insensitive; the first alias found is used): ``id``, ``title`` and
``image`` are required; ``description``, ``category``, ``price``, ``brand``, ``colour``,
``pattern``, ``material`` and ``keywords`` (separated by ``;``, ``|`` or ``,``) are optional, and
any other column is kept as an attribute. Interactions: ``user``, ``item``, ``event``,
``timestamp`` are required, ``query`` is optional.

What happens to each problem (every one is counted in the report):

==========================  ===============================================================
duplicate item id           later rows skipped (the first row wins)
empty id                    row skipped
empty title                 fixed from the description's first words, else the row is skipped
bad price (text, < 0, inf)  fixed: treated as missing
missing price               fixed: the catalog's median price (1.0 when no prices at all)
image missing / unreadable  row skipped (see :mod:`engine.ingest.images`)
image path outside folder   row skipped (``../`` and absolute paths are refused)
unknown item in events      event skipped
bad timestamp / empty user  event skipped
no usable rows left         refused
==========================  ===============================================================
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from engine.ingest.derive import known_event
from engine.ingest.report import IngestError, ValidationReport

CATALOG_COLUMNS = {
    "item_id": ("id", "item_id", "product_id", "sku"),
    "title": ("title", "name", "product_name"),
    "image": ("image", "image_path", "image_file", "filename", "file"),
    "description": ("description", "desc", "body"),
    "category": ("category", "product_type", "type"),
    "price": ("price",),
    "brand": ("brand", "vendor", "maker"),
    "colour": ("colour", "color"),
    "pattern": ("pattern",),
    "material": ("material",),
    "keywords": ("keywords", "tags"),
}
REQUIRED_CATALOG = ("item_id", "title", "image")
INTERACTION_COLUMNS = {
    "user_id": ("user", "user_id", "customer_id", "anonymous_user_id"),
    "item_id": ("item", "item_id", "product_id", "photo_id"),
    "event": ("event", "event_type", "conversion_type", "action"),
    "timestamp": ("timestamp", "time", "ts", "date", "converted_at"),
    "query": ("query", "search_query", "keyword", "search"),
}
REQUIRED_INTERACTIONS = ("user_id", "item_id", "event", "timestamp")
_READERS = {".csv": ",", ".tsv": "\t", ".txt": "\t"}


def read_table(path: Path, what: str) -> pd.DataFrame:
    """A CSV/TSV/Parquet file (optionally gzipped) as strings; IngestError when unreadable."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(f"The {what} file {path} does not exist.")
    suffixes = [s.lower() for s in path.suffixes]
    kind = (
        suffixes[-2]
        if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1
        else (suffixes[-1] if suffixes else "")
    )
    try:
        if kind in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        elif kind in _READERS:
            with warnings.catch_warnings():  # rows longer than the header lose data: refuse
                warnings.simplefilter("error", pd.errors.ParserWarning)
                df = pd.read_csv(
                    path,
                    sep=_READERS[kind],
                    dtype=str,
                    keep_default_na=False,
                    on_bad_lines="error",
                    index_col=False,
                )
        else:
            raise IngestError(
                f"The {what} file {path.name} has an unsupported type; use .csv, .tsv or "
                ".parquet (optionally .gz)."
            )
    except IngestError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise IngestError(f"The {what} file {path.name} is empty.") from exc
    except (
        pd.errors.ParserError,
        pd.errors.ParserWarning,
        UnicodeDecodeError,
        ValueError,
        OSError,
    ) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IngestError(f"The {what} file {path.name} could not be read: {first}") from exc
    except Exception as exc:  # pyarrow raises its own error types on corrupt Parquet
        raise IngestError(f"The {what} file {path.name} is not a valid table ({exc}).") from exc
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _rename(
    df: pd.DataFrame,
    spec: dict[str, tuple[str, ...]],
    required: tuple[str, ...],
    what: str,
    report: ValidationReport,
) -> pd.DataFrame:
    lower = {c.lower(): c for c in df.columns}
    mapping = {}
    for target, aliases in spec.items():
        found = next((lower[a] for a in aliases if a in lower), None)
        if found is not None:
            mapping[found] = target
    missing = [c for c in required if c not in mapping.values()]
    if missing:
        wanted = "; ".join(f"{c} (any of: {', '.join(spec[c])})" for c in missing)
        report.refuse(
            "missing_column",
            what,
            f"required column(s) missing: {wanted}. Found: {', '.join(df.columns)}",
            missing,
        )
        raise IngestError(f"The {what} file is missing required column(s): {wanted}.", report)
    out = df.rename(columns=mapping)
    return out.loc[:, ~out.columns.duplicated()]


def _text(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str).str.strip()


def validate_catalog(df: pd.DataFrame, report: ValidationReport) -> pd.DataFrame:
    """The catalog with canonical columns; skipped and fixed rows are counted in ``report``."""
    report.counts["catalog rows read"] = len(df)
    if df.empty:
        report.refuse("empty_file", "catalog", "the catalog file has no rows")
        raise IngestError("The catalog file has no rows.", report)
    df = _rename(df, CATALOG_COLUMNS, REQUIRED_CATALOG, "catalog", report)
    for col in (
        "item_id",
        "title",
        "image",
        "description",
        "category",
        "brand",
        "colour",
        "pattern",
        "material",
        "keywords",
    ):
        df[col] = _text(df[col]) if col in df else ""

    empty_id = df["item_id"] == ""
    report.add(
        "empty_id",
        "catalog",
        "skipped",
        "rows without an id were skipped (row numbers shown)",
        [str(i + 2) for i in np.flatnonzero(empty_id)],
    )
    df = df[~empty_id]
    dup = df["item_id"].duplicated(keep="first")
    report.add(
        "duplicate_id",
        "catalog",
        "skipped",
        "duplicate ids: the first row of each id was kept, later rows skipped",
        df.loc[dup, "item_id"].tolist(),
    )
    df = df[~dup].copy()

    no_title = df["title"] == ""
    fixable = no_title & (df["description"] != "")
    report.add(
        "empty_title",
        "catalog",
        "fixed",
        "empty titles were filled with the first words of the description",
        df.loc[fixable, "item_id"].tolist(),
    )
    df.loc[fixable, "title"] = df.loc[fixable, "description"].map(_first_words)
    unfixable = no_title & ~fixable
    report.add(
        "empty_title",
        "catalog",
        "skipped",
        "rows with neither a title nor a description were skipped",
        df.loc[unfixable, "item_id"].tolist(),
    )
    df = df[~unfixable].copy()
    df["price"] = _prices(df, report)
    report.counts["catalog rows kept (before images)"] = len(df)
    return df.reset_index(drop=True)


def _first_words(text: str, n: int = 8) -> str:
    words = text.split()
    return " ".join(words[:n]) + ("…" if len(words) > n else "")


def _prices(df: pd.DataFrame, report: ValidationReport) -> pd.Series:
    if "price" not in df:
        return pd.Series(1.0, index=df.index)
    raw = _text(df["price"]).str.replace(r"^[$€£]\s*", "", regex=True)
    price = pd.to_numeric(raw, errors="coerce")
    bad = (raw != "") & (price.isna() | ~np.isfinite(price) | (price < 0))
    report.add(
        "bad_price",
        "catalog",
        "fixed",
        "prices that are not a non-negative number were treated as missing",
        [f"{i}: {v!r}" for i, v in zip(df.loc[bad, "item_id"], df.loc[bad, "price"])],
    )
    price = price.where(~bad)
    missing = price.isna()
    fill = float(price.median()) if (~missing).any() else 1.0
    report.add(
        "missing_price",
        "catalog",
        "fixed",
        f"missing prices were set to the catalog's median ({fill:g})",
        df.loc[missing & ~bad, "item_id"].tolist(),
    )
    return price.fillna(fill).clip(lower=0.01).astype(float)


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Unix seconds from epoch numbers (s or ms) or date strings; NaN where unparseable."""
    text = _text(values)
    num = pd.to_numeric(text, errors="coerce")
    out = num.where(num < 1e11, num / 1000.0)  # epoch milliseconds
    dates = pd.to_datetime(text.where(num.isna()), errors="coerce", utc=True, format="mixed")
    secs = (dates - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    return out.fillna(secs)


def validate_interactions(
    df: pd.DataFrame,
    item_ids: set[str],
    report: ValidationReport,
    skipped_items: set[str] | None = None,
) -> pd.DataFrame:
    """Canonical interactions (``user_id, item_id, event, timestamp, query``); bad rows counted."""
    report.counts["interaction rows read"] = len(df)
    if df.empty:
        report.refuse("empty_file", "interactions", "the interactions file has no rows")
        raise IngestError("The interactions file has no rows.", report)
    df = _rename(df, INTERACTION_COLUMNS, REQUIRED_INTERACTIONS, "interactions", report)
    for col in ("user_id", "item_id", "event", "query"):
        df[col] = _text(df[col]) if col in df else ""
    df["event"] = df["event"].str.lower().replace("", "view")
    df["query"] = df["query"].map(normalize_query)
    unknown_event = ~df["event"].map(known_event)
    report.add(
        "unknown_event",
        "interactions",
        "fixed",
        "event types other than view/click/cart/like/purchase/download were counted as views",
        df.loc[unknown_event, "event"].unique().tolist(),
        count=int(unknown_event.sum()),
    )
    ts = parse_timestamps(df["timestamp"])
    bad_ts = ts.isna()
    report.add(
        "bad_timestamp",
        "interactions",
        "skipped",
        "events whose timestamp is neither a Unix time nor a date were skipped",
        [
            f"row {i + 2}: {v!r}"
            for i, v in zip(np.flatnonzero(bad_ts), df.loc[bad_ts, "timestamp"])
        ],
    )
    no_user = (df["user_id"] == "") & ~bad_ts
    report.add(
        "empty_user",
        "interactions",
        "skipped",
        "events without a user were skipped",
        [f"row {i + 2}" for i in np.flatnonzero(no_user)],
    )
    df = df.assign(timestamp=ts)[~bad_ts & ~no_user]
    skipped_items = skipped_items or set()
    dropped = df["item_id"].isin(skipped_items)
    report.add(
        "skipped_item",
        "interactions",
        "skipped",
        "events on items skipped above (no image, no title, ...) were skipped",
        df.loc[dropped, "item_id"].unique().tolist(),
        count=int(dropped.sum()),
    )
    unknown = ~df["item_id"].isin(item_ids) & ~dropped
    report.add(
        "unknown_item",
        "interactions",
        "skipped",
        "events on items that are not in the catalog were skipped",
        df.loc[unknown, "item_id"].unique().tolist(),
        count=int(unknown.sum()),
    )
    df = df[~dropped & ~unknown].copy()
    df["timestamp"] = df["timestamp"].round().astype("int64")
    report.counts["interaction rows kept"] = len(df)
    if df.empty:
        report.refuse(
            "no_events_left", "interactions", "no usable events are left after the problems above"
        )
        raise IngestError("No usable interactions are left; see the report.", report)
    return df[["user_id", "item_id", "event", "timestamp", "query"]].reset_index(drop=True)


def normalize_query(text: str) -> str:
    """Lower-case, single-spaced query text (so logged queries group by what was typed)."""
    return re.sub(r"\s+", " ", str(text)).strip().lower()


def split_keywords(items: pd.DataFrame) -> pd.DataFrame:
    """The catalog's own ``keywords`` column as an (item_id, keyword, confidence) table."""
    rows = [
        (item, kw.strip().lower())
        for item, text in zip(items["item_id"], items["keywords"])
        for kw in re.split(r"[;|,]", text)
        if kw.strip()
    ]
    out = pd.DataFrame(rows, columns=["item_id", "keyword"]).drop_duplicates()
    return out.assign(confidence=1.0, source="catalog").reset_index(drop=True)
