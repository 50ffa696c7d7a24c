"""Personal data in a source table: which columns hold it (declared, or detected by name
and values). Column types are ``synthfactory.column_detection``'s."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

PII_NAMES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(^|_)(e_?mail|mail)(_?address)?$", re.I), "email"),
    (re.compile(r"(^|_)(phone|mobile|cell|tel|telephone|fax)(_?(number|no))?$", re.I), "phone"),
    (re.compile(r"(^|_)(first_?name|given_?name|forename)$", re.I), "first_name"),
    (re.compile(r"(^|_)(last_?name|surname|family_?name)$", re.I), "last_name"),
    (re.compile(r"^(full_?|customer_?|person_?|patient_?|contact_?)?name$", re.I), "name"),
    (re.compile(r"(^|_)(street_?)?address$|(^|_)street$", re.I), "address"),
    (re.compile(r"(^|_)(ssn|social_security(_number)?)$", re.I), "ssn"),
    (re.compile(r"(^|_)ip(_?address)?$", re.I), "ip_address"),
]
PII_VALUES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^[\w.%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"), "email"),
    (re.compile(r"^\d{3}-\d{2}-\d{4}$"), "ssn"),
    (re.compile(r"^\d{1,3}(\.\d{1,3}){3}$"), "ip_address"),
    (
        re.compile(
            r"^(?=(?:\D*\d){7})(\+\d{1,3}[ .-]?)?(\(\d{2,4}\)[ .-]?)?\d{2,4}"
            r"([ .-]?\d{2,4}){1,3}(x\d+)?$"
        ),
        "phone",
    ),
    (
        re.compile(
            r"^\d+[A-Za-z]? [\w .'-]+\b(St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Ln|Lane|"
            r"Dr|Drive|Ct|Court|Way|Pl|Place|Sq|Square|Ter|Terrace|Pkwy|Parkway)\b",
            re.I,
        ),
        "address",
    ),
    (re.compile(r"^[A-Z][a-z'-]+( [A-Z]\.)?( [A-Z][a-z'-]+){1,2}$"), "name"),
]
#: share of a column's sampled values that must match a pattern
PII_MATCH_SHARE = 0.8


def detect_pii(
    df: pd.DataFrame,
    declared: dict[str, str] | None = None,
    detect: bool = True,
    skip: set[str] | None = None,
) -> dict[str, str]:
    """Columns holding personal data -> what they hold (name, email, phone, address, ...).

    Declared columns always count; with ``detect`` a string column also counts when its
    name says so or when most of its values look like emails, phone numbers, US SSNs, IP
    addresses, street addresses or (mostly distinct) personal names. Columns in ``skip``
    (those whose type the spec sets) are never detected.
    """
    import pandas as pd

    found = dict(declared or {})
    if not detect:
        return found
    for name in df.columns:
        if name in found or name in (skip or set()):
            continue
        series = df[name]
        if not (pd.api.types.is_string_dtype(series.dtype) or series.dtype == object):
            continue
        kind = next((k for pattern, k in PII_NAMES if pattern.search(str(name))), None)
        values = series.dropna().astype(str).str.strip()
        values = values[values != ""].head(1000)
        if kind is None and len(values):
            for pattern, candidate in PII_VALUES:
                share = values.map(lambda v, p=pattern: bool(p.match(v))).mean()
                if share < PII_MATCH_SHARE:
                    continue
                if candidate == "name" and values.nunique() < 0.5 * len(values):
                    continue  # a handful of repeated capitalised words is a category
                kind = candidate
                break
        if kind is not None:
            found[str(name)] = kind
    return found
