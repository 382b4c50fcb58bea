"""Validators for one params.yaml value each: every failure is a ParamError naming the full key.

params.py checks the study's shared keys with them; each model file checks its own group.
"""
from __future__ import annotations

import numbers

from .errors import ParamError


def fail(key: str, message: str, value) -> None:
    raise ParamError(f"params.yaml: {key} {message}, got {value!r}")


def section(raw: dict, key: str, prefix: str = "") -> dict:
    value = raw.get(key)
    if not isinstance(value, dict):
        fail(prefix + key, "must be a mapping", value)
    return value


def integer(group: dict, key: str, prefix: str, low: int = 1, high: int | None = None, optional=False):
    value = group.get(key)
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (
            high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        fail(prefix + key, f"must be an integer {bound}", value)
    return int(value)


def number(group: dict, key: str, prefix: str, low: float, high: float, low_open=False, high_open=False,
           optional=False):
    value = group.get(key)
    if optional and value is None:
        return None
    if isinstance(value, str) and _reads_as_number(value):
        if "e" in value.lower():
            fail(prefix + key, f"is the string {value!r}, not a number (YAML reads exponent notation as a number "
                 f"only with a dot and a signed exponent): write {float(value):.1e}", value)
        fail(prefix + key, f"is the string {value!r}, not a number: remove its quotes", value)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        fail(prefix + key, f"must be a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}",
             value)
    return float(value)


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def boolean(group: dict, key: str, prefix: str) -> bool:
    value = group.get(key)
    if not isinstance(value, bool):
        fail(prefix + key, "must be true or false", value)
    return value


def choice(group: dict, key: str, prefix: str, choices) -> str:
    value = group.get(key)
    if value not in choices:
        fail(prefix + key, f"must be one of {', '.join(choices)}", value)
    return value


def listing(group: dict, key: str, prefix: str, parse) -> tuple:
    values = group.get(key)
    if not isinstance(values, list) or not values:
        fail(prefix + key, "must be a non-empty list", values)
    return tuple(parse({key: value}, key, prefix) for value in values)
