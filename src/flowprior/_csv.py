"""``pandas.read_csv`` that reads back exactly the doubles that were written."""

from __future__ import annotations

from typing import Any

import pandas as pd


def _exact_options() -> dict[str, str]:
    """pandas < 3.1: the default C parser can be one unit in the last place off (3556 of 10 000
    random doubles written by ``to_csv``); ``float_precision="round_trip"`` reads them exactly.
    From 3.1 on the default parser is exact and the option is deprecated."""
    major, minor = (int(part) for part in pd.__version__.split(".")[:2])
    return {"float_precision": "round_trip"} if (major, minor) < (3, 1) else {}


EXACT = _exact_options()


def read_csv(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """:func:`pandas.read_csv` with exact float parsing (see :func:`_exact_options`)."""
    return pd.read_csv(*args, **EXACT, **kwargs)
