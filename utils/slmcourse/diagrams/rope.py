"""Lesson 6's concept diagram: RoPE turns a 2-D pair of a query or key by an angle proportional to its position."""
from __future__ import annotations

import math

from ._draw import arrow, canvas, finish, note


def _circle(ax, cx: float, cy: float, r: float) -> None:
    points = [(cx + r * math.cos(2 * math.pi * t / 120), cy + r * math.sin(2 * math.pi * t / 120)) for t in range(121)]
    ax.plot([p[0] for p in points], [p[1] for p in points], color="#bbbbbb", lw=0.8, ls="--")


def rope_rotation(theta: float = 0.5, positions: int = 5):
    """Left: one pair (x1, x2) rotated by m * theta at positions m = 0..positions-1.

    Right: a query at m and a key at n, then both shifted by the same amount: the angle between
    them, (m - n) * theta, and so their dot product, does not change.
    """
    fig, ax = canvas(13.0, 7.6, title="RoPE: each pair of dimensions is rotated by position x theta")
    colours = ["#4c72b0", "#55a868", "#dd8452", "#8172b3", "#c44e52", "#937860", "#da8bc3"]
    # left panel: one vector at several positions
    cx, cy, r = 3.2, 4.0, 2.2
    _circle(ax, cx, cy, r)
    ax.plot([cx - r - 0.3, cx + r + 0.3], [cy, cy], color="#999999", lw=0.6)
    ax.plot([cx, cx], [cy - r - 0.3, cy + r + 0.3], color="#999999", lw=0.6)
    start = 0.15
    for m in range(positions):
        a = start + m * theta
        end = (cx + r * math.cos(a), cy + r * math.sin(a))
        colour = colours[m % len(colours)]
        arrow(ax, (cx, cy), end, color=colour)
        note(ax, cx + (r + 0.45) * math.cos(a), cy + (r + 0.35) * math.sin(a), f"m = {m}", fontsize=8, color=colour)
    note(ax, cx, 1.05, f"one pair (x1, x2) of a query or key vector,", fontsize=8.5)
    note(ax, cx, 0.65, f"at positions m = 0..{positions - 1}: turned by m x theta", fontsize=8.5)
    note(ax, cx, 0.25, f"(theta = {theta:g} rad here; each pair has its own theta)", fontsize=8.5)
    note(ax, cx + r + 0.05, cy - 0.2, "x1 axis", fontsize=8, ha="left")
    note(ax, cx - 0.1, cy - r - 0.25, "x2 axis", fontsize=8, ha="right")

    # right panel: query at m, key at n, and the pair shifted by 3 positions
    cx2, cy2, r2 = 9.9, 4.0, 2.2
    _circle(ax, cx2, cy2, r2)
    q0, k0 = 0.9, 0.1  # the pair's own angles before any rotation
    for (m, n), style, shade in (((2, 1), "-|>", "#4c72b0"), ((5, 4), "-|>", "#c44e52")):
        aq, ak = q0 + m * theta, k0 + n * theta
        arrow(ax, (cx2, cy2), (cx2 + r2 * math.cos(aq), cy2 + r2 * math.sin(aq)), color=shade, style=style)
        arrow(ax, (cx2, cy2), (cx2 + 0.75 * r2 * math.cos(ak), cy2 + 0.75 * r2 * math.sin(ak)), color=shade,
              style=style)
        note(ax, cx2 + (r2 + 0.5) * math.cos(aq), cy2 + (r2 + 0.35) * math.sin(aq), f"q at m = {m}", fontsize=8,
             color=shade)
        note(ax, cx2 + (0.75 * r2 + 0.55) * math.cos(ak), cy2 + (0.75 * r2 + 0.3) * math.sin(ak), f"k at n = {n}",
             fontsize=8, color=shade)
    note(ax, cx2, 1.05, "blue: q at 2, k at 1; red: both 3 positions later.", fontsize=8.5)
    note(ax, cx2, 0.65, "Both turned by 3 x theta more, so the angle between", fontsize=8.5)
    note(ax, cx2, 0.25, "them, and the score q . k, depend only on m - n", fontsize=8.5)
    return finish(fig)
