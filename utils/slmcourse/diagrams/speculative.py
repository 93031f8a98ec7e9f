"""Lesson 13: speculative decoding - a draft proposes k tokens, the target checks them in one pass."""
from __future__ import annotations

from ._draw import arrow, box, canvas, finish, note


def speculative_round(k: int = 4, accepted: int = 2):
    """One round: the draft proposes k tokens one by one; the target reads all k in ONE forward pass,
    keeps the longest agreeing prefix and adds its own token at the first disagreement."""
    width, height = 15.0, 7.6
    fig, ax = canvas(width, height, title="Speculative decoding: draft k tokens cheaply, verify them in one pass")
    tw = 1.25
    box(ax, 0.3, 5.6, 2.6, 0.8, "context so far", color="input", fontsize=8)
    # the draft's proposals, one small step each
    note(ax, 1.6, 4.55, "draft model\n(small, cheap):\nk steps", fontsize=8)
    for i in range(k):
        x = 3.3 + i * (tw + 0.25)
        box(ax, x, 5.6, tw, 0.8, f"d{i + 1}", color="highlight", fontsize=9)
        if i:
            arrow(ax, (x - 0.25, 6.0), (x, 6.0))
    arrow(ax, (2.9, 6.0), (3.3, 6.0))
    # the one target pass
    x0, x1 = 3.3, 3.3 + k * (tw + 0.25) - 0.25
    box(ax, x0, 3.7, x1 - x0, 1.1, "target model: ONE pass over\nall k proposals",
        color="weights", fontsize=8)
    for i in range(k):
        x = 3.3 + i * (tw + 0.25) + tw / 2
        arrow(ax, (x, 5.55), (x, 4.85))
        arrow(ax, (x, 3.65), (x, 2.95))
    # verdicts
    for i in range(k):
        x = 3.3 + i * (tw + 0.25)
        if i < accepted:
            box(ax, x, 2.1, tw, 0.8, f"d{i + 1} ok", color="output", fontsize=8)
        elif i == accepted:
            box(ax, x, 2.1, tw, 0.8, "target's\ntoken", color="attention", fontsize=8)
        else:
            box(ax, x, 2.1, tw, 0.8, "dropped", color="muted", fontsize=8)
    note(ax, 1.6, 2.5, "verdict", fontsize=8)
    note(ax, 7.0, 1.0,
         f"this round: {accepted} accepted + 1 from the target = {accepted + 1} tokens for one target pass",
         fontsize=8)
    # the rules, to the right
    rx = x1 + 0.5
    note(ax, rx, 5.6, "greedy: keep d_i while it equals\nthe target's argmax; the output is\n"
         "exactly the target's own", fontsize=8, ha="left")
    note(ax, rx, 3.6, "sampling: keep d_i with probability\nmin(1, p(d_i) / q(d_i)); else draw\n"
         "from max(0, p - q), renormalised:\nthe output follows p exactly", fontsize=8, ha="left")
    note(ax, rx, 1.75, "then drop the cache entries\nof the dropped proposals", fontsize=8, ha="left")
    return finish(fig)
