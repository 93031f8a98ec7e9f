"""Lesson 3's concept diagram: text -> tokens -> model -> logits -> filters -> a token, looped, with the KV cache."""
from __future__ import annotations

from ._draw import arrow, box, canvas, finish, note


def generation_loop():
    """The generation loop: tokenize, one forward pass, filter the last position's logits, pick, append, repeat.

    The KV cache (below the model) keeps every earlier token's keys and values, so each later step
    feeds only the newest token.
    """
    fig, ax = canvas(15, 6.3, title="Generation: one token per trip round the loop")
    y, h = 3.6, 1.2
    box(ax, 0.2, y, 1.9, h, '"The sky\nis"', color="input", fontsize=9)
    box(ax, 2.7, y, 1.9, h, "tokenizer\n→ ids\n[504, 6376, 314]", color="norm", fontsize=7.5)
    box(ax, 5.2, y, 2.0, h, "model\n(one forward\npass)", color="weights", fontsize=8.5)
    box(ax, 7.8, y, 2.0, h, "logits of the\nlast position\n(49,152 scores)", color="output", fontsize=7.5)
    box(ax, 10.4, y, 2.2, h, "filters\nrep. penalty → T\n→ top-k → top-p", color="attention", fontsize=7.5)
    box(ax, 13.1, y, 1.7, h, "pick\nargmax or\nrandom draw", color="mlp", fontsize=7.5)
    for x0, x1 in ((2.1, 2.7), (4.6, 5.2), (7.2, 7.8), (9.8, 10.4), (12.6, 13.1)):
        arrow(ax, (x0, y + h / 2), (x1, y + h / 2))
    # the loop back: the new token is appended and fed again
    arrow(ax, (13.95, y + h), (6.2, y + h), curve=0.2, color="#c44e52")
    note(ax, 10.1, 6.05, "append the chosen token's id, feed it, repeat until a stop token or the length limit",
         fontsize=8, color="#c44e52")
    # the KV cache
    box(ax, 4.3, 0.9, 3.2, 1.4, "KV cache\nkeys & values of every\nearlier token, every layer", color="cache",
        fontsize=7.5)
    arrow(ax, (5.9, y), (5.9, 2.4), style="<|-|>")
    note(ax, 6.9, 3.0, "reads / appends", fontsize=7)
    note(ax, 2.2, 1.7, "without a cache:\nstep t re-reads all\nn + t tokens", fontsize=7.5, color="#555555")
    note(ax, 11.0, 1.7, "with the cache: step t feeds 1 token;\nthe cache grows by 2 × layers × KV heads\n"
         "× head dim numbers per token", fontsize=7.5, color="#555555")
    note(ax, 11.5, 3.25, "greedy skips T, top-k, top-p", fontsize=7, color="#555555")
    return finish(fig)
