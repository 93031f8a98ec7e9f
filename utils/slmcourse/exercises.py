"""Self-checks for the lessons' "Your turn" exercises.

An exercise cell leaves the learner's answer in a variable that starts as `None`; the self-check cell
below it calls `check(answer, expected)`. It never raises: it prints whether the answer is missing,
right, or wrong (and, when wrong, how far off), so "Restart & Run All" always reaches the end.

    mqa_output = None            # your code here
    check(mqa_output, expected)  # -> "not answered yet: replace None with your code above"
"""
from __future__ import annotations

import math
from numbers import Number

import torch

NOT_YET = "not answered yet: replace None with your code above"


def _close(answer, expected, rtol: float, atol: float) -> tuple[bool, str]:
    if torch.is_tensor(expected):
        if not torch.is_tensor(answer):
            try:
                answer = torch.as_tensor(answer, dtype=expected.dtype)
            except (TypeError, ValueError, RuntimeError):
                return False, f"expected a tensor of shape {tuple(expected.shape)}, got {type(answer).__name__}"
        if answer.shape != expected.shape:
            return False, f"shape {tuple(answer.shape)}, expected {tuple(expected.shape)}"
        ok = torch.allclose(answer.to(expected.dtype), expected, rtol=rtol, atol=atol, equal_nan=False)
        if ok:
            return True, ""
        worst = (answer.to(expected.dtype) - expected).abs().max().item()
        return False, f"largest difference from the expected values: {worst:.3g}"
    if isinstance(expected, Number) and not isinstance(expected, bool):
        if isinstance(answer, bool) or not isinstance(answer, Number):
            return False, f"expected a number, got {type(answer).__name__}"
        if math.isclose(float(answer), float(expected), rel_tol=rtol, abs_tol=atol):
            return True, ""
        return False, f"got {answer:,}, which is not within {rtol:.0%} of the expected value"
    if answer == expected:
        return True, ""
    return False, f"got {answer!r}"


def check(answer, expected, rtol: float = 1e-4, atol: float = 1e-6, name: str = "your answer") -> bool:
    """Print a verdict on an exercise answer (None = not attempted); return True when it is right.

    Numbers and tensors are compared with a relative tolerance `rtol` (and absolute `atol`); anything
    else (strings, tuples, lists of ints) must be equal.
    """
    if answer is None:
        print(NOT_YET)
        return False
    ok, why = _close(answer, expected, rtol, atol)
    print(f"correct: {name} matches" if ok else f"not quite: {why}")
    return ok

from .checks import guard_public as _guard_public  # noqa: E402 - issue 20: typed arguments checked on entry

_guard_public(globals())
