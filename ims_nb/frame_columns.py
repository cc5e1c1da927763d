"""Typed pandas columns from lists of wire values (text, numbers, UTC times, flags, tags), through Arrow when it can."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import chain
from typing import Any, Final

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

# The pandas dtypes the converters give (the frames' column lists name them too).
_STRING: Final = "string"
_INT: Final = "Int64"
_BOOL: Final = "boolean"
_FLOAT: Final = "float64"
_UTC_TIME: Final = "datetime64[ns, UTC]"
_OBJECT: Final = "object"

_TAG_SEPARATOR: Final = ","
_FLAG_WORDS: Final = {"true": True, "false": False}
_STRING_KINDS: Final = frozenset({str, type(None)})  # the value types Arrow converts exactly as pandas does
_FLAG_KINDS: Final = frozenset({bool, type(None)})
_ISO8601: Final = "ISO8601"
# Instants a datetime64[ns] can hold; anything outside becomes NaT.
_EARLIEST: Final = pd.Timestamp("1677-09-22", tz="UTC")
_LATEST: Final = pd.Timestamp("2262-04-11", tz="UTC")
_INT64_LIMIT: Final = 2.0**63


def _text(values: list[Any], *, blank: str | None = "", default: str | None = None) -> Any:
    """A string array; None/NaN become <NA>, other non-strings their ``str()`` (bytes are decoded as UTF-8).

    ``blank`` is what an empty string becomes (``None``: <NA>); ``default``, when given, replaces <NA> as well.
    """
    strings = _arrow_strings(values)
    if strings is not None:  # the wire's case, all in Arrow
        pa, pc = _arrow()
        empty = pc.equal(strings, "") if blank != "" else None
        if empty is not None and pc.any(empty).as_py():
            strings = pc.if_else(empty, pa.scalar(blank, strings.type), strings)
        if default is not None and strings.null_count:
            strings = pc.fill_null(strings, default)
        return pd.StringDtype().__from_arrow__(strings)
    try:
        array = pd.array(values, dtype=_STRING)
    except UnicodeDecodeError:  # pandas decodes bytes strictly: decode them here, replacing what is not UTF-8
        array = pd.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values], _STRING)
    if blank != "":
        array[(array == "").to_numpy(dtype=bool, na_value=False)] = pd.NA if blank is None else blank
    if default is not None:
        array[array.isna()] = default
    return array


@cache
def _arrow() -> Any:
    """``(pyarrow, pyarrow.compute)``, or None without pyarrow (the ``parquet`` extra): then pandas converts alone."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
        import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        return None
    return pa, pc


def _arrow_strings(values: list[Any]) -> Any:
    """An Arrow string array when every value is a str or None (the wire's case: twice as fast as pandas'
    per-value checks), else None: other values are left to pandas, which gives the documented conversions."""
    arrow = _arrow()
    if arrow is None or not set(map(type, values)) <= _STRING_KINDS:  # Arrow would also decode bytearrays
        return None
    return arrow[0].array(values, type=arrow[0].large_string())


def _numbers(values: list[Any]) -> Any:
    """Masked numbers from strings or numbers; booleans and anything unparsable become <NA>."""
    cleaned = [None if isinstance(value, bool) else value for value in values]
    return pd.to_numeric(pd.Series(cleaned, dtype=_OBJECT), errors="coerce", dtype_backend="numpy_nullable")


def _integers(values: list[Any]) -> Any:
    """Int64 from integer text or whole numbers; anything else (fractions, out of int64 range) becomes <NA>."""
    kinds = set(map(type, values))
    if kinds == {str} or kinds == {int}:  # the usual case: try the exact, fast parse first
        try:
            return pd.array(np.array(values, dtype=np.int64), dtype=_INT)
        except (ValueError, OverflowError):
            pass
    numbers = _numbers(values)
    if numbers.dtype == _INT:
        return numbers.array
    floats = numbers.astype("Float64")
    whole = ((floats % 1 == 0) & (floats.abs() < _INT64_LIMIT)).fillna(False)
    return floats.where(whole).astype(_INT).array


def _floats(values: list[Any]) -> Any:
    return _numbers(values).to_numpy(dtype=_FLOAT, na_value=np.nan)


def _utc_times(values: list[Any]) -> Any:
    """UTC instants from ISO 8601 text (``2018-09-06T14:03:27Z``, ``2024-11-06T06:46:51.929Z``); else NaT."""
    texts = values if set(map(type, values)) <= _STRING_KINDS else [v if isinstance(v, str) else None for v in values]
    times = pd.to_datetime(texts, utc=True, format=_ISO8601, errors="coerce")
    in_range = (times >= _EARLIEST) & (times <= _LATEST)
    return times.where(in_range).as_unit("ns").array


def _flags(values: list[Any], absent: bool | None) -> Any:
    """Booleans from real bools, 0/1 or "true"/"false" in any case; absent/null -> ``absent``; else <NA>."""
    arrow = _arrow()
    if arrow is not None and set(map(type, values)) <= _FLAG_KINDS:  # the wire's case (Arrow takes numpy bools)
        pa, pc = arrow
        flags = pa.array(values, type=pa.bool_())
        if absent is not None and flags.null_count:
            flags = pc.fill_null(flags, absent)
        return pd.BooleanDtype().__from_arrow__(flags)
    return pd.array([value if value is True or value is False else _flag(value, absent) for value in values], _BOOL)


def _flag(value: Any, absent: bool | None) -> bool | None:
    if value is None:
        return absent
    if isinstance(value, str):
        return _FLAG_WORDS.get(value.strip().lower())
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    return None


def _tag_lists(values: list[Any]) -> Any:
    """An object array of tag lists: a record's own list when it holds only strings, else a new list.

    Sharing the record's list (rather than copying 20,000 of them) keeps the garbage collector quiet on large
    listings, which measured 20-30 ms per 20,000 freshly parsed records.
    """
    lists = [value if type(value) is list else _tag_list(value) for value in values]
    if not set(map(type, chain.from_iterable(lists))) <= {str}:  # a stray non-string: normalise every row
        lists = [_tag_list(value) for value in lists]
    return _objects(lists)


def _tag_list(value: Any) -> list[str]:
    """Tags as a new list of strings: a list/tuple is copied, a string is split on commas, anything else is []."""
    if isinstance(value, list | tuple):
        return [tag if isinstance(tag, str) else str(tag) for tag in value if tag is not None]
    if isinstance(value, str):
        return [tag.strip() for tag in value.split(_TAG_SEPARATOR) if tag.strip()]
    return []


def _objects(items: Sequence[Any]) -> Any:
    """A 1-D object array holding ``items`` as they are (lists and dicts are not unpacked)."""
    return np.fromiter(items, dtype=_OBJECT, count=len(items))
