"""Lesson 4's concept diagram: which key/value head each query head reads, in MHA, GQA and MQA."""
from __future__ import annotations

from ._draw import arrow, box, canvas, finish, note

_GROUP_COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#8172b3", "#c44e52", "#937860", "#da8bc3", "#8c8c8c"]


def gqa_grouping(query_heads: int = 8, layouts: tuple[tuple[str, int], ...] = (("MHA", 8), ("GQA", 2), ("MQA", 1))):
    """Query heads (top row) and the key/value heads they share (bottom row), side by side.

    With H query heads and G KV heads, query head h reads KV head h // (H / G): G = H is multi-head
    attention, G = 1 multi-query, anything between grouped-query. The cache holds only the G KV heads.
    """
    panel, gap = 6.0, 0.6
    width = len(layouts) * panel + (len(layouts) - 1) * gap
    fig, ax = canvas(width, 5.4, title="Query heads sharing key/value heads: the KV cache holds only the bottom row",
                     figsize=(12, 3.6))
    for p, (name, kv_heads) in enumerate(layouts):
        x0 = p * (panel + gap)
        group = query_heads // kv_heads
        note(ax, x0 + panel / 2, 4.95, f"{name}: {query_heads} query heads, {kv_heads} KV head{'s' * (kv_heads > 1)}",
             fontsize=8.5, weight="bold")
        step = panel / query_heads
        qw = step * 0.8
        for h in range(query_heads):
            colour = _GROUP_COLOURS[(h // group) % len(_GROUP_COLOURS)]
            box(ax, x0 + h * step + 0.05, 3.5, qw, 0.75, f"q{h}", color=colour, fontsize=7, text_color="white")
        kv_step = panel / kv_heads
        kw = min(kv_step * 0.8, 2.4)
        for gidx in range(kv_heads):
            colour = _GROUP_COLOURS[gidx % len(_GROUP_COLOURS)]
            cx = x0 + gidx * kv_step + kv_step / 2
            box(ax, cx - kw / 2, 1.0, kw, 0.85, "K,V" if kv_heads > 4 else f"K,V head {gidx}", color=colour,
                fontsize=7, text_color="white")
            for h in range(gidx * group, (gidx + 1) * group):
                qx = x0 + h * step + 0.05 + qw / 2
                arrow(ax, (cx, 1.85), (qx, 3.5), color=colour, style="-")
        cache = f"cache: {kv_heads}/{query_heads} of MHA's" if kv_heads < query_heads else "cache: one K,V per query head"
        note(ax, x0 + panel / 2, 0.45, cache, fontsize=8, color="#333333")
    return finish(fig)
