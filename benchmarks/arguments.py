"""
Argument types for the benchmarks' command lines: a value that no run can use is refused when the command is
read (argparse exits with status 2 and names the flag), not after the runs have started.
"""

import argparse


def whole_number(text: str, at_least: int) -> int:
    """``text`` as an int of at least ``at_least``, or an ArgumentTypeError that says what is allowed."""
    try:
        value = int(text)
    except ValueError:
        value = at_least - 1
    if value < at_least:
        raise argparse.ArgumentTypeError(f"must be a whole number >= {at_least}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A count of steps, seeds, workers, episodes or repeats: 1 or more."""
    return whole_number(text, at_least=1)


def non_negative_int(text: str) -> int:
    """A count that may be 0 (retries, steps before learning starts)."""
    return whole_number(text, at_least=0)


def fraction(text: str) -> float:
    """A share of one device, in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1], got {text!r}")
    return value
