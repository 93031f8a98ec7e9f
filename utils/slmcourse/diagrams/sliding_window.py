"""Lesson 5's concept diagram: how far information travels through stacked sliding-window layers."""
from __future__ import annotations

from ._draw import arrow, box, canvas, finish, note


def sliding_window_receptive_field(layers: int = 3, window: int = 3, seq: int = 10):
    """Layers x positions: the last token's window in each layer below, widening by window - 1 per layer.

    Each box is one token's hidden state in one layer; arrows show which states of the layer below
    a highlighted state reads (itself and the `window - 1` before it).
    """
    cell, gap_x, gap_y, left, base = 0.9, 0.25, 1.3, 2.5, 1.3
    width = left + seq * (cell + gap_x) + 0.3
    height = layers * gap_y + base + 0.8
    fig, ax = canvas(width, height, title=f"Stacked sliding windows (window W = {window}): "
                                          f"the reach grows by W - 1 = {window - 1} tokens per layer")
    last = seq - 1
    # which positions of each layer feed the last token of the top layer
    cone = {layers: {last}}
    for level in range(layers, 0, -1):
        cone[level - 1] = {j for p in cone[level] for j in range(max(0, p - window + 1), p + 1)}

    def centre(level: int, pos: int) -> tuple[float, float]:
        return left + pos * (cell + gap_x) + cell / 2, base + level * gap_y

    for level in range(layers + 1):
        y = base + level * gap_y
        note(ax, 0.1, y, "input tokens" if level == 0 else f"layer {level}", fontsize=9, ha="left")
        for pos in range(seq):
            x = left + pos * (cell + gap_x)
            lit = pos in cone[level]
            colour = ("highlight" if level == layers else "attention") if lit else "muted"
            box(ax, x, y - 0.25, cell, 0.5, str(pos), color=colour, fontsize=8)
    for level in range(1, layers + 1):
        for pos in cone[level]:
            top = centre(level, pos)
            for j in range(max(0, pos - window + 1), pos + 1):
                bottom = centre(level - 1, j)
                arrow(ax, (bottom[0], bottom[1] + 0.27), (top[0], top[1] - 0.27), color="#8a5a2b")
    first = min(cone[0])
    reach = layers * (window - 1) + 1
    note(ax, width / 2, 0.35,
         f"after {layers} layers token {last} draws on tokens {first}..{last}: "
         f"L x (W - 1) + 1 = {layers} x {window - 1} + 1 = {reach} tokens, though each layer reads only {window}",
         fontsize=9)
    return finish(fig)
