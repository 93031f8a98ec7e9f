"""Lesson 9's concept diagram: the quantization grid, a real axis mapped onto integer codes."""
from __future__ import annotations

from ._draw import PALETTE, arrow, box, canvas, finish, note


def quantization_grid(bits: int = 3):
    """Zero-point (asymmetric) quantization of a few real values onto 2**bits integer codes.

    Top: the real axis from lo = min(x, 0) to hi = max(x, 0), cut into 2**bits - 1 steps of size s;
    bottom: the codes 0 .. 2**bits - 1. Each value goes to its nearest grid point; 0.0 lands exactly on
    the zero point z. A second, shorter strip shows absmax (symmetric) for comparison.
    """
    levels = 2 ** bits
    lo, hi = -1.0, 2.5                                   # the example range (min and max of the group)
    step = (hi - lo) / (levels - 1)
    zero = round(-lo / step)
    left, right = 2.0, 11.5
    y_real, y_code = 5.2, 2.6

    def xpos(value: float) -> float:
        return left + (value - lo) / (hi - lo) * (right - left)

    fig, ax = canvas(13.0, 7.0, title=f"Zero-point quantization with {bits} bits: a real axis mapped to "
                                      f"{levels} integer codes")
    # the real axis and its grid points
    ax.plot([left - 0.4, right + 0.4], [y_real, y_real], color="#333333", linewidth=1.2)
    note(ax, left - 0.6, y_real, "real\nvalues x", ha="right", fontsize=8)
    for k in range(levels):
        gx = xpos((k - zero) * step)                     # code k stands for (k - z) * s
        ax.plot([gx, gx], [y_real - 0.12, y_real + 0.12], color=PALETTE["weights"], linewidth=1.5)
        ax.plot([gx, gx], [y_code + 0.45, y_real - 0.15], color="#bbbbbb", linewidth=0.8, linestyle=":")
        colour = "highlight" if k == zero else "muted"
        box(ax, gx - 0.32, y_code - 0.3, 0.64, 0.6, str(k), color=colour, fontsize=9, rounded=False)
    note(ax, left - 0.6, y_code, "integer\ncodes q", ha="right", fontsize=8)
    note(ax, xpos(lo), y_real + 0.55, f"lo = min(x, 0)\n= {lo}", fontsize=8)
    note(ax, xpos(hi), y_real + 0.55, f"hi = max(x, 0)\n= {hi}", fontsize=8)
    note(ax, xpos(0.0), y_real + 0.55, "0.0", fontsize=8, color=PALETTE["highlight"])
    # one step, labelled s
    a, b = xpos((4 - zero) * step), xpos((5 - zero) * step)
    arrow(ax, (a, y_real - 0.45), (b, y_real - 0.45), style="<|-|>", color=PALETTE["weights"])
    note(ax, (a + b) / 2, y_real - 0.75, f"s = (hi - lo) / {levels - 1}", fontsize=8, color=PALETTE["weights"])
    # a few values, each rounded to its nearest grid point
    for value in (-0.9, 0.62, 1.95):
        q = round(value / step) + zero
        vx, gx = xpos(value), xpos((q - zero) * step)
        ax.plot([vx], [y_real], marker="o", color=PALETTE["attention"], markersize=6)
        arrow(ax, (vx, y_real + 0.02), (gx, y_code + 0.32), color=PALETTE["attention"], curve=0.0)
        note(ax, vx, y_real + 1.15, f"x = {value}", fontsize=7.5, color=PALETTE["attention"])
    note(ax, xpos(0.0), y_code - 0.65, f"zero point z = round(-lo / s) = {zero}: the code for 0.0",
         fontsize=8, color=PALETTE["highlight"])
    # the formulas
    note(ax, 6.5, 1.25, "quantize:  q = clamp(round(x / s) + z, 0, 2^b - 1)      "
                         "de-quantize:  x' = (q - z) * s      error |x - x'| <= s / 2", fontsize=8.5)
    note(ax, 6.5, 0.7, "absmax (symmetric) instead:  z = 0,  s = max|x| / (2^(b-1) - 1),  "
                        "codes -(2^(b-1) - 1) .. 2^(b-1) - 1", fontsize=8.5, color="#555555")
    note(ax, 6.5, 0.2, "a real format stores one s (and z) per group of weights, e.g. 32", fontsize=8.5,
         color="#555555")
    return finish(fig)
