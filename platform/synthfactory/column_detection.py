"""Column types detected from a table's data: every detection rule lives here, over the
one vocabulary (the spec's ``ColumnType``: numerical, categorical, boolean, datetime, id,
text; a declared ``column_types`` entry always wins).

Two readers, two rule sets, on purpose:

- **What the synthesizers model** (``detect_types``): a boolean dtype (or 0/1 numbers, or
  true/false text) is boolean, a datetime dtype datetime, other numbers numerical unless
  whole, unique and named like an id; text is an id when unique and named like one (or
  unique identifier-looking values in 20 rows or more), free text when mostly distinct and
  long, else categorical.
- **What SDMetrics-comparable reports score** (SDV's ``Metadata.detect_from_dataframe``,
  which SDMetrics' users feed it): integer codes are categorical (``integer_coded``), and
  ids (``id_columns``: an ``id`` word in the name, the first primary-key candidate) and
  personal-data names are not scored. ``metrics.tabular.quality`` reads these.

They differ where modelling and scoring want different things: a survey's 1..5 codes are
scored as categories (as SDMetrics would), yet modelled as bounded whole numbers, which
differential privacy can release without a public list of values (modelled as categories,
``year`` in the penguins table would need one, or be suppressed); merging them changes
either the rows or the SDMetrics-pinned scores (measured 2026-12-06: DP penguins specs fail
preflight; the relational bank's merchants -> transactions cardinality shape similarity
drops from >= 0.75 to 0.60).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

ColumnTypes = dict[str, str]
ID_NAME = re.compile(r"(^|_)(id|uuid|key|ref)$", re.IGNORECASE)
#: an identifier-looking value: no spaces, at least one digit (ACC-00042, 9f1c-..., u123)
ID_VALUE = re.compile(r"^(?=.*\d)[\w-]{1,64}$")
#: SDV's metadata detection: integer codes with at most this many distinct values (and at
#: most a tenth of the rows) are categorical, on tables of more than MIN_ROWS_TO_DETECT rows
MAX_CODES = 10
MIN_ROWS_TO_DETECT = 5
#: SDV's detection gives personal-data sdtypes (not scored) to columns whose cleaned name
#: contains one of these, or has one of PII_WORDS as a word
PII_IN_NAME = (
    "phonenumber", "email", "firstname", "lastname", "countrycode", "stateabbr",
    "postalcode", "zipcode", "postcode", "streetaddress", "line1", "secondaryaddress",
    "line2", "latitude", "longitude", "ipv4", "ipv6", "ipaddress", "macaddress",
    "useragent", "iban", "swift", "creditcardnumber", "license",
)  # fmt: skip
PII_WORDS = frozenset({"ssn", "administativeunit", "state", "province", "city", "vin"})


# -- what the synthesizers model ----------------------------------------------------------
def detect_column_type(name: str, series: pd.Series) -> str:
    """numerical, categorical, boolean, datetime, id or text."""
    import pandas as pd

    values = series.dropna()
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "datetime"
    unique = values.nunique()
    if pd.api.types.is_numeric_dtype(series.dtype):
        is_int = pd.api.types.is_integer_dtype(series.dtype) or bool(
            len(values) and (values == values.round()).all()
        )
        if is_int and ID_NAME.search(name) and unique == len(values):
            return "id"
        if is_int and 0 < unique <= 2 and set(values.unique()) <= {0, 1}:
            return "boolean"
        return "numerical"
    if len(values) and set(values.astype(str).str.lower().unique()) <= {"true", "false"}:
        return "boolean"
    if len(values) and unique == len(values):
        if ID_NAME.search(name):
            return "id"
        if len(values) >= 20 and values.astype(str).str.match(ID_VALUE).all():
            return "id"
    if len(values) and unique > 0.5 * len(values) and values.astype(str).str.len().mean() > 30:
        return "text"
    return "categorical"


def detect_types(df: pd.DataFrame, overrides: ColumnTypes | None = None) -> ColumnTypes:
    """Every column's type for the synthesizers: the declared one, else the detected one."""
    overrides = overrides or {}
    return {c: overrides.get(c) or detect_column_type(str(c), df[c]) for c in df.columns}


# -- what SDMetrics-comparable reports score (SDV's detection) ------------------------------
def integer_coded(series: pd.Series) -> bool:
    """SDV's rule for a numeric column that is categorical: more than 5 rows, whole and
    non-negative non-null values, at most ``min(round(rows / 10), 10)`` distinct ones."""
    import pandas as pd

    if len(series) <= MIN_ROWS_TO_DETECT or pd.api.types.is_datetime64_any_dtype(series.dtype):
        return False
    values = pd.to_numeric(series, errors="coerce").astype(float).dropna()
    if values.empty:
        return False
    whole = bool((values == values.round()).all()) and bool((values >= 0).all())
    return whole and values.nunique() <= min(round(len(series) / 10), MAX_CODES)


def id_name(name: str) -> bool:
    """SDV's id-by-name rule: ``id`` is one of the name's words (split at spaces, ``-`` and
    ``_``; a single word at its capitals when it mixes cases: user_id, ID, userId)."""
    return "id" in words(name)


def words(name: str) -> list[str]:
    """A column name's lower-case words, as SDV splits them: at spaces, ``-`` and ``_``; a
    single word at its capitals when it mixes cases."""
    parts = name.replace(" ", "_").replace("-", "_").split("_")
    if len(parts) == 1:
        mixed = name.upper() != name and name[1:].lower() != name[1:]
        parts = (re.findall("[A-Z][^A-Z]*", name) if mixed else []) or [name]
    return [w.lower() for w in parts]


def _key_candidate(series: pd.Series, named: bool) -> bool:
    """Whether SDV's detection could make ``series`` the primary key: unique and no nulls;
    then an id name, or more than 5 rows of whole non-negative numbers or of strings."""
    import pandas as pd

    if series.isna().any() or not series.is_unique:
        return False
    if named:
        return True
    if len(series) <= MIN_ROWS_TO_DETECT or pd.api.types.is_bool_dtype(series.dtype):
        return False
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return False
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = pd.to_numeric(series, errors="coerce").astype(float)
        return bool((values == values.round()).all() and (values >= 0).all())
    return True


def personal_name(name: str) -> bool:
    """SDV's personal-data-by-name rule: the name, lower-cased with everything but letters
    and digits removed, contains one of ``PII_IN_NAME``, or one of its words (``id_name``'s
    split) is one of ``PII_WORDS``."""
    cleaned = re.sub(r"[^a-z0-9]", "", name.lower())
    if any(part in cleaned for part in PII_IN_NAME):
        return True
    return any(w in PII_WORDS for w in words(name))


def id_columns(real: pd.DataFrame, columns: list[str]) -> list[str]:
    """The columns SDV's metadata detection gives an sdtype SDMetrics does not score: ids
    (an id name, and the first primary-key candidate in table order, ``_key_candidate``)
    and personal data by name (``personal_name``: an email, a postcode, a latitude...)."""
    personal = [c for c in columns if personal_name(str(c))]
    columns = [c for c in columns if c not in personal]
    named = [c for c in columns if id_name(str(c))]
    first = next((c for c in columns if _key_candidate(real[c], c in named)), None)
    return [*personal, *named, *([first] if first is not None and first not in named else [])]
