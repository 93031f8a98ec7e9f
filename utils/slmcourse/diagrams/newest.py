"""Lesson 7's concept diagram: three ways the newest small models change the decoder block."""
from __future__ import annotations

from ._draw import PALETTE, arrow, box, canvas, finish, note


def newest_ideas(experts: int = 8, chosen: tuple[int, ...] = (2, 5)):
    """Mixture of experts (a router sends each token to k of E MLPs), multi-head latent attention (the cache
    holds one small latent per token, expanded to every head's K and V), and a recurrent layer (a fixed
    state updated token by token, instead of a cache that grows with the context)."""
    fig, ax = canvas(19.5, 7.2, title="Three newer ideas: route to few experts, cache a latent, or keep a fixed state",
                     figsize=(13.5, 5.0))
    # --- 1. mixture of experts
    note(ax, 3.0, 6.8, "1. Mixture of experts", fontsize=9.5, weight="bold")
    box(ax, 2.2, 0.4, 1.6, 0.7, "token x", color="input")
    box(ax, 2.0, 1.6, 2.0, 0.7, "router: top-k", color="highlight")
    arrow(ax, (3.0, 1.1), (3.0, 1.6))
    step = 6.0 / experts
    for e in range(experts):
        on = e in chosen
        box(ax, 0.1 + e * step, 3.2, step * 0.8, 1.0, f"E{e}", color="mlp" if on else "muted", fontsize=7.5)
        if on:
            arrow(ax, (3.0, 2.3), (0.1 + e * step + step * 0.4, 3.2), color=PALETTE["highlight"])
            arrow(ax, (0.1 + e * step + step * 0.4, 4.2), (3.0, 4.9), color=PALETTE["mlp"])
    box(ax, 1.6, 4.9, 2.8, 0.7, "weighted sum", color="output")
    note(ax, 3.0, 2.75, f"k={len(chosen)} of {experts} run", fontsize=7.5)
    # --- 2. multi-head latent attention
    x0 = 6.9
    note(ax, x0 + 2.8, 6.8, "2. Multi-head latent attention", fontsize=9.5, weight="bold")
    box(ax, x0 + 1.9, 0.4, 1.8, 0.7, "token x", color="input")
    box(ax, x0 + 0.2, 1.8, 2.6, 0.8, "latent c (rank r)", color="cache")
    box(ax, x0 + 3.2, 1.8, 2.2, 0.8, "RoPE key", color="cache")
    arrow(ax, (x0 + 2.5, 1.1), (x0 + 1.5, 1.8), "down", fontsize=7)
    arrow(ax, (x0 + 3.1, 1.1), (x0 + 4.3, 1.8))
    note(ax, x0 + 4.7, 0.75, "cached per token:\nc and the RoPE key", fontsize=7.5, color=PALETTE["cache"])
    for h in range(4):
        box(ax, x0 + 0.1 + h * 1.4, 4.1, 1.2, 0.8, f"K,V h{h}", color="attention", fontsize=7)
        arrow(ax, (x0 + 1.5, 2.6), (x0 + 0.7 + h * 1.4, 4.1), color="#777777")
    note(ax, x0 + 1.2, 3.55, "up", fontsize=7)
    note(ax, x0 + 2.8, 5.4, "every head's K and V rebuilt from c", fontsize=7.5)
    # --- 3. recurrent layer
    x0 = 13.6
    note(ax, x0 + 2.9, 6.8, "3. Recurrent layer (DeltaNet, Mamba-2)", fontsize=9.5, weight="bold")
    for i in range(3):
        cx = x0 + 0.3 + i * 2.0
        box(ax, cx, 0.4, 1.3, 0.7, f"token {i + 1}", color="input", fontsize=7.5)
        box(ax, cx, 2.4, 1.3, 1.3, f"S{i + 1}", color="cache")
        arrow(ax, (cx + 0.65, 1.1), (cx + 0.65, 2.4))
        box(ax, cx, 4.5, 1.3, 0.7, f"out {i + 1}", color="output", fontsize=7.5)
        arrow(ax, (cx + 0.65, 3.7), (cx + 0.65, 4.5))
        if i:
            arrow(ax, (cx - 0.7, 3.05), (cx, 3.05), color=PALETTE["cache"])
    note(ax, x0 + 2.9, 5.95, "one same-size state S, updated per token:\nmemory does not grow with the context",
         fontsize=7.5, color=PALETTE["cache"])
    return finish(fig)
