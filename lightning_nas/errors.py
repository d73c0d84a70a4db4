"""The one exception type for mistakes a user can fix (bad config values, missing data files), and
the declared ranges of numeric options.

The CLI prints its message as a single line and exits with code 2, without a traceback: a
researcher who mistyped a path needs the fix, not the stack.

A class whose constructor takes sizes, counts or rates declares their valid values once, in an
``ARGUMENT_RANGES`` mapping (argument name -> :data:`Range`); its constructor and the CLI (right
after parsing, before anything is built) both apply it with :func:`check_ranges`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

#: ``(test, what to give instead)``: ``test(value)`` is true for a valid value.
Range = tuple[Callable[[Any], bool], str]


class ConfigError(ValueError):
    """A configuration or input problem, with a message that says what is wrong and how to fix it."""


def at_least(minimum: float, *, null: bool = False, kind: str = "an integer") -> Range:
    """Values ``>= minimum`` (and ``None`` when ``null``)."""
    return (lambda v: (null and v is None) or v >= minimum), f"{kind} >= {minimum}" + (" or null" if null else "")


def above(bound: float, *, kind: str = "a number") -> Range:
    """Values ``> bound``."""
    return (lambda v: v > bound), f"{kind} > {bound}"


def fraction() -> Range:
    """Values in ``[0, 1)`` (dropout rates, momentum)."""
    return (lambda v: 0 <= v < 1), "a number in [0, 1)"


def check_ranges(section: str, ranges: Mapping[str, Range], values: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming ``<section>.<name>``, the value and the valid values for the
    first of ``values`` outside its range; names without a range, or absent from ``values``, pass."""
    for name, (valid, allowed) in ranges.items():
        if name not in values:
            continue
        value = values[name]
        try:
            ok = bool(valid(value))
        except TypeError:  # e.g. null where a number is needed
            ok = False
        if not ok:
            raise ConfigError(f"{section}.{name}: {value!r} is out of range; give {allowed}")
