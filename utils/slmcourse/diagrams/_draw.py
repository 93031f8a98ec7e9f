"""Drawing primitives shared by the concept diagrams: a blank canvas, labelled boxes, arrows, notes.

Coordinates are in data units of a canvas of the given width and height (no axes shown), so a
diagram is laid out like on graph paper.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

PALETTE = {
    "input": "#e8eef7", "weights": "#4c72b0", "attention": "#dd8452", "mlp": "#55a868",
    "norm": "#c7c7c7", "cache": "#8172b3", "output": "#f2e2c4", "highlight": "#c44e52", "muted": "#eeeeee",
}


def canvas(width: float, height: float, title: str | None = None, figsize: tuple[float, float] | None = None):
    """A figure with one axis spanning [0, width] x [0, height], no ticks or frame. Returns (fig, ax)."""
    if figsize is None:
        scale = 7.5 / max(width, 1e-9)
        figsize = (7.5, max(1.5, height * scale))
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=11)
    return fig, ax


def box(ax, x: float, y: float, w: float, h: float, text: str = "", color: str = "input",
        fontsize: float = 9, text_color: str | None = None, alpha: float = 1.0, rounded: bool = True):
    """A filled, labelled rectangle with its lower-left corner at (x, y). `color` is a PALETTE key or a colour."""
    face = PALETTE.get(color, color)
    style = "round,pad=0.02,rounding_size=0.08" if rounded else "square,pad=0"
    patch = FancyBboxPatch((x, y), w, h, boxstyle=style, facecolor=face, edgecolor="#333333",
                           linewidth=0.8, alpha=alpha)
    ax.add_patch(patch)
    if text:
        dark = face in (PALETTE["weights"], PALETTE["attention"], PALETTE["mlp"], PALETTE["cache"],
                        PALETTE["highlight"])
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize,
                color=text_color or ("white" if dark else "black"))
    return patch


def arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str = "", color: str = "#333333",
          fontsize: float = 8, curve: float = 0.0, style: str = "-|>"):
    """An arrow from start to end, optionally curved (`curve`, the arc's radius) and labelled at its middle."""
    patch = FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=10, color=color, linewidth=1.0,
                            connectionstyle=f"arc3,rad={curve}")
    ax.add_patch(patch)
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, text, fontsize=fontsize, ha="center",
                va="bottom", color=color)
    return patch


def note(ax, x: float, y: float, text: str, fontsize: float = 8, **kwargs):
    """Free text at (x, y) (centred unless `ha`/`va` say otherwise)."""
    kwargs.setdefault("ha", "center")
    kwargs.setdefault("va", "center")
    return ax.text(x, y, text, fontsize=fontsize, **kwargs)


def grid(ax, x: float, y: float, values, cell: float = 0.4, cmap: str = "Blues", labels: bool = False,
         fmt: str = "{:.0f}", vmin=None, vmax=None):
    """A matrix drawn as coloured squares, row 0 at the top, lower-left corner at (x, y)."""
    import numpy as np

    data = np.asarray(values, dtype=float)
    rows, cols = data.shape
    ax.imshow(data, cmap=cmap, extent=(x, x + cols * cell, y, y + rows * cell), vmin=vmin, vmax=vmax,
              origin="upper", interpolation="nearest", aspect="auto")
    if labels:
        for r in range(rows):
            for c in range(cols):
                ax.text(x + (c + 0.5) * cell, y + (rows - r - 0.5) * cell, fmt.format(data[r, c]),
                        ha="center", va="center", fontsize=7)
    return ax


def finish(fig):
    """Tight layout; returns the figure (what every diagram function returns)."""
    fig.tight_layout()
    return fig
