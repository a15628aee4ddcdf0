"""Argument checks shared by the data set modules (errors name the argument)."""

import numbers

import numpy as np


def check_int(name, value, minimum=None, maximum=None):
    """Returns `value` as a Python int, or raises naming `name` and the value.

    Args:
        name: str. The argument's name, quoted in the error message.
        value: the argument's value. Booleans are rejected.
        minimum: int or None. Smallest allowed value. Defaults to None.
        maximum: int or None. Largest allowed value. Defaults to None.

    Returns:
        `int(value)`.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer. Received: {name}={value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: {name}={value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be <= {maximum}. Received: {name}={value!r}")
    return int(value)


def check_float(name, value, low=None, high=None, low_inclusive=True):
    """Returns `value` as a float in the given range, or raises naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number. Received: {name}={value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite. Received: {name}={value!r}")
    if low is not None:
        if low_inclusive and value < low:
            raise ValueError(f"`{name}` must be >= {low}. Received: {name}={value!r}")
        if not low_inclusive and value <= low:
            raise ValueError(f"`{name}` must be > {low}. Received: {name}={value!r}")
    if high is not None and value > high:
        raise ValueError(f"`{name}` must be <= {high}. Received: {name}={value!r}")
    return value


def check_seed(seed):
    """Checks a synthetic data set's seed: a non-negative integer."""
    return check_int("seed", seed, minimum=0)


def as_generator(seed):
    """Turns `seed` (None, int >= 0 or `np.random.Generator`) into a Generator.

    A Generator is used as is (and advanced by the caller's draws), so a
    pipeline can thread one Generator through several samplers.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(check_int("seed", seed, minimum=0))


def check_choice(name, value, choices):
    """Raises unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {sorted(choices)}. Received: {name}={value!r}"
        )
    return value


def check_columns(df, columns, argument="df"):
    """Raises `KeyError`-free `ValueError` when `df` lacks any of `columns`."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(
            f"`{argument}` is missing the column(s) {missing}. "
            f"Received columns: {list(df.columns)}"
        )
