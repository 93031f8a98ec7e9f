"""Lesson 12: the prefill/decode timeline of generation with a KV cache."""
from __future__ import annotations

from ._draw import arrow, box, canvas, finish, note


def prefill_decode_timeline(prompt_tokens: int = 5, decode_steps: int = 3):
    """Prefill reads the whole prompt in one pass (time to first token); then each decode step reads all the
    weights and the growing KV cache to produce one token (time per output token)."""
    width, height = 15.0, 7.2
    fig, ax = canvas(width, height, title="Generation with a KV cache: one prefill, then one token per step")
    # time axis
    arrow(ax, (0.4, 0.6), (14.6, 0.6))
    note(ax, 14.3, 0.25, "time", fontsize=8)
    # prefill: the prompt tokens side by side, processed together
    px, pw = 0.5, 4.4
    tok_w = (pw - 0.2) / prompt_tokens
    for i in range(prompt_tokens):
        box(ax, px + 0.1 + i * tok_w, 5.3, tok_w - 0.08, 0.6, f"t{i + 1}", color="input", fontsize=8)
    note(ax, px + pw / 2, 6.25, f"prompt: {prompt_tokens} tokens, all at once", fontsize=8)
    box(ax, px, 3.6, pw, 1.3, "prefill: one forward pass\nreads all weights once,\nmany tokens per read",
        color="weights", fontsize=8)
    arrow(ax, (px + pw / 2, 5.25), (px + pw / 2, 4.95))
    box(ax, px, 2.2, pw, 0.9, f"KV cache filled: {prompt_tokens} tokens", color="cache", fontsize=8)
    arrow(ax, (px + pw / 2, 3.55), (px + pw / 2, 3.15))
    # the TTFT bracket
    ax.plot([px, px + pw], [1.2, 1.2], color="#c44e52", linewidth=2)
    note(ax, px + pw / 2, 1.5, "time to first token (TTFT)", fontsize=8, color="#c44e52")
    # decode steps: each takes the previous token as its only input and appends one token to the cache
    sx, sw, gap = 5.5, 2.5, 0.55
    arrow(ax, (px + pw, 4.6), (sx + 0.7, 5.55), curve=-0.3)
    for k in range(decode_steps):
        x = sx + k * (sw + gap)
        box(ax, x + 0.7, 5.3, sw - 1.4, 0.6, f"new {k + 1}", color="output", fontsize=8)
        arrow(ax, (x + sw / 2, 5.25), (x + sw / 2, 4.95))
        box(ax, x, 3.6, sw, 1.3, "decode step:\nALL weights\n+ KV cache read", color="attention", fontsize=8)
        arrow(ax, (x + sw / 2, 3.55), (x + sw / 2, 3.15), style="<|-|>")
        box(ax, x, 2.2, sw, 0.9, f"cache: {prompt_tokens + k + 1} tokens", color="cache", fontsize=8)
        ax.plot([x + 0.05, x + sw - 0.05], [1.2, 1.2], color="#4c72b0", linewidth=2)
        if k < decode_steps - 1:
            arrow(ax, (x + sw, 4.6), (x + sw + gap + 0.7, 5.55), curve=-0.3)
    note(ax, sx + (decode_steps * (sw + gap) - gap) / 2, 1.5,
         "one output token per step: time per token = bytes read / bandwidth + overhead",
         fontsize=8, color="#4c72b0")
    note(ax, sx + (decode_steps * (sw + gap) - gap) / 2, 6.6,
         "each output token is the next step's only input", fontsize=8)
    return finish(fig)
