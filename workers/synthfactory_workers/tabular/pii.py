"""Fake personal data: realistic values from Faker, never a value of the source.

The source's values are kept only as keyed 64-bit digests, so a fitted model's artifacts
do not hold them in clear; a fake value whose digest matches is drawn again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from typing import Any

#: Faker methods per kind of personal data
FAKERS: dict[str, Callable[[Any], str]] = {
    "name": lambda f: f.name(),
    "first_name": lambda f: f.first_name(),
    "last_name": lambda f: f.last_name(),
    "email": lambda f: f.safe_email(),
    "phone": lambda f: f.phone_number(),
    "address": lambda f: f.address().replace("\n", ", "),
    "ssn": lambda f: f.ssn(),
    "ip_address": lambda f: f.ipv4_private(),
}
#: redraws allowed per value before giving up (a locale too small to avoid the source)
MAX_REDRAWS = 100


def new_salt() -> str:
    return os.urandom(16).hex()


def digest(value: object, salt: str) -> str:
    text = str(value).strip().lower()
    return hashlib.blake2b(text.encode(), key=bytes.fromhex(salt), digest_size=8).hexdigest()


def digests(values: Iterable[object], salt: str) -> list[str]:
    return sorted({digest(v, salt) for v in values if v is not None and v == v})


def check_locale(locale: str) -> None:
    """ConfigError unless Faker knows ``locale``."""
    from faker.config import AVAILABLE_LOCALES

    from synthfactory.errors import ConfigError

    if locale not in AVAILABLE_LOCALES:
        close = [x for x in AVAILABLE_LOCALES if x.split("_")[0] == locale.split("_")[0]]
        raise ConfigError(
            f"generator.pii_locale: Faker has no locale {locale!r}",
            fix=f"use one of {close or ['en_US', 'en_GB', 'de_DE', 'fr_FR']}",
        )


def fake_values(
    kind: str, n: int, seed: int, locale: str, forbidden: set[str], salt: str
) -> list[str]:
    """``n`` fake values of ``kind``, deterministic from ``seed``, none in the source."""
    from faker import Faker

    from synthfactory.errors import ConfigError

    if kind not in FAKERS:
        raise ConfigError(f"unknown kind of personal data {kind!r}", fix=f"use {sorted(FAKERS)}")
    try:
        fake = Faker(locale)
    except AttributeError:
        raise ConfigError(
            f"Faker has no locale {locale!r}", fix="use a Faker locale such as en_US or de_DE"
        ) from None
    fake.seed_instance(seed)
    make = FAKERS[kind]
    out: list[str] = []
    for _ in range(n):
        for _ in range(MAX_REDRAWS):
            value = make(fake)
            if digest(value, salt) not in forbidden:
                break
        else:
            raise ConfigError(
                f"could not draw a fake {kind} that is not in the source",
                fix="use another pii_locale",
            )
        out.append(value)
    return out
