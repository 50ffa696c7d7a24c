"""The column vocabulary's value keys: ``key`` is exactly ``json.dumps(value, default=str)``
(the keys decide category order and matches, so a cheaper spelling must not change one)."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from synthfactory_workers.tabular.column_types import key


class Count(enum.IntEnum):
    ONE = 1


class Text(str):
    pass


VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -5,
    10**30,
    1.5,
    -0.0,
    1e300,
    5e-324,
    0.1 + 0.2,
    float("nan"),
    float("inf"),
    -float("inf"),
    "a",
    'é"\n\t\\',
    "\u2028\U0001f600",
    Text("sub"),
    Count.ONE,
    [1, "x", None],
    {"a": 1},
    (1, 2),
    datetime.date(2020, 1, 2),
    decimal.Decimal("1.1"),
    np.int64(5),
    np.float64(2.5),
    np.bool_(True),
    pd.Timestamp("2020-01-01"),
]


@pytest.mark.parametrize("value", VALUES, ids=[repr(v)[:20] for v in VALUES])
def test_key_is_json_dumps_with_str_default(value: Any) -> None:
    assert key(value) == json.dumps(value, default=str)
