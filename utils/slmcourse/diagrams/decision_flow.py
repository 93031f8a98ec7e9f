"""Lesson 14's concept diagram: choosing a model as filter-then-rank (task -> tuning -> licence -> memory -> speed -> rank)."""
from __future__ import annotations

from ._draw import arrow, box, canvas, finish, note


def decision_flow():
    """The chooser's decision flow: each catalogue card goes through five checks, the survivors are ranked.

    A card that fails a check drops out with its reason (the tool keeps every reason); the ones that
    pass everything are ordered by parameter count, a stated proxy for quality (nothing is measured).
    """
    fig, ax = canvas(20.6, 6.4, title="Choosing a model: filter on every constraint, then rank the survivors",
                     figsize=(13, 4.4))
    steps = [  # (title, question, where the answer comes from)
        ("task", "built for it?", "family +\napplications"),
        ("tuning", "chat / instruct\nfor a chat task?", "model card:\nbase · instruct · chat"),
        ("licence", "allows this use?", "permissive · share-alike\n· custom · non-commercial"),
        ("memory fit", "weights + KV cache\n≤ usable memory?", "real format: Q4_K_M\n5.43 bits/weight"),
        ("speed", "ms per token\n≤ budget?", "bandwidth ÷ bytes\nper token (L12)"),
    ]
    w, h, gap, y = 2.6, 1.5, 0.7, 3.1
    box(ax, 0.1, y + 0.15, 1.1, 1.2, "catalogue\ncards", color="input", fontsize=8.5)
    x = 1.7
    arrow(ax, (1.2, y + h / 2), (x, y + h / 2))
    for i, (title, question, source) in enumerate(steps):
        box(ax, x, y, w, h, f"{i + 1}. {title}\n{question}", color="attention" if i == 1 else "weights",
            fontsize=8.5)
        note(ax, x + w / 2, y + h + 0.6, source, fontsize=8, color="#555555")
        # a failing card drops out with its reason
        arrow(ax, (x + w / 2, y), (x + w / 2, 1.75), color="#c44e52")
        note(ax, x + w / 2, 1.45, "no", fontsize=7.5, color="#c44e52")
        nxt = x + w + gap
        arrow(ax, (x + w, y + h / 2), (nxt, y + h / 2), text="yes" if i < 4 else "")
        x = nxt
    box(ax, x, y, 2.3, h, "6. rank\nlargest first\n(params: a proxy)", color="mlp", fontsize=8.5)
    box(ax, 1.7, 0.2, x - 1.7 - gap, 0.95, "rejected, each with the reason it failed "
        "(a base model never heads a chat or instruction task)", color="muted", fontsize=9)
    return finish(fig)
