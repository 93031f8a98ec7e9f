"""Lesson 11's concept diagram: LoRA, y = W x + (alpha / r) B A x, and the merge W' = W + (alpha / r) B A."""
from __future__ import annotations

from ._draw import arrow, box, canvas, finish, note


def lora_update():
    """W + BA: the frozen weight W beside two thin trainable matrices A (r x in) and B (out x r), their
    scaling alpha / r, the sum with W x, and the merge that folds the update into one matrix."""
    fig, ax = canvas(13.0, 6.4, title="LoRA: a frozen weight W plus a trainable low-rank update (alpha/r) B A")

    # input x and output y
    box(ax, 0.2, 2.6, 0.8, 1.2, "x\n(in)", "input")
    box(ax, 8.0, 2.6, 0.8, 1.2, "y\n(out)", "output")

    # frozen path: W, a big square (out x in)
    box(ax, 2.3, 3.6, 2.4, 2.4, "W\nout x in\nfrozen\n(no gradient)", "weights", fontsize=9)
    arrow(ax, (1.0, 3.5), (2.3, 4.8))
    arrow(ax, (4.7, 4.8), (6.55, 3.45))
    note(ax, 5.9, 4.55, "W x", fontsize=9)

    # trainable path: A (thin, r x in) then B (tall, out x r)
    box(ax, 1.8, 0.9, 1.6, 0.45, "A: r x in", "mlp", fontsize=8)
    box(ax, 4.1, 0.2, 0.45, 1.9, "B", "mlp", fontsize=8)
    note(ax, 4.7, 1.85, "out x r", fontsize=8, ha="left")
    arrow(ax, (1.0, 2.9), (1.8, 1.15))
    arrow(ax, (3.4, 1.12), (4.1, 1.12))
    note(ax, 2.6, 0.55, "random at start", fontsize=7.5)
    note(ax, 4.33, -0.05, "zero at start", fontsize=7.5)
    box(ax, 5.0, 0.85, 1.0, 0.55, "x alpha/r", "muted", fontsize=8)
    arrow(ax, (4.55, 1.12), (5.0, 1.12))
    arrow(ax, (6.0, 1.12), (6.75, 2.95))
    note(ax, 6.95, 1.75, "(alpha/r) B A x", fontsize=8, ha="left")

    # the sum
    ax.add_patch(__import__("matplotlib").patches.Circle((6.8, 3.2), 0.3, facecolor="white", edgecolor="#333333"))
    note(ax, 6.8, 3.2, "+", fontsize=13)
    arrow(ax, (7.1, 3.2), (8.0, 3.2))
    note(ax, 3.2, 2.8, "trainable: r (in + out) numbers\ninstead of in x out", fontsize=8, color="#2d6a3e")

    # the merge, on the right
    note(ax, 11.1, 5.6, "after training: merge", fontsize=10, fontweight="bold")
    box(ax, 9.7, 3.3, 1.3, 1.3, "W", "weights", fontsize=10)
    note(ax, 11.25, 3.95, "+", fontsize=13)
    box(ax, 11.5, 3.3, 1.3, 1.3, "(alpha/r)\nB A", "mlp", fontsize=8)
    arrow(ax, (11.25, 3.2), (11.25, 2.3))
    box(ax, 9.5, 0.8, 3.3, 1.4, "W' = W + (alpha/r) B A\none plain matrix:\nno extra cost", "weights", fontsize=8)
    note(ax, 11.25, 0.35, "unmerge: subtract it again", fontsize=7.5)
    return finish(fig)
