"""Lessons 1 and 2: a Llama-family decoder with its parameter shares, and the three transformer families."""
from __future__ import annotations

from ..catalogue import get
from ._draw import PALETTE, arrow, box, canvas, finish, grid, note


def llama_parts(name: str = "smollm2-135m") -> dict[str, int]:
    """Parameters per part of a catalogued Llama-family decoder, from its config (the formula of lesson 1)."""
    c = get(name).config
    d, V, I, L = c["hidden_size"], c["vocab_size"], c["intermediate_size"], c["num_hidden_layers"]
    H = c["num_attention_heads"]
    G = c.get("num_key_value_heads") or H
    h = c.get("head_dim") or d // H
    return {"embeddings": V * d,
            "attention": L * (d * H * h + 2 * d * G * h + H * h * d),
            "mlp": L * 3 * d * I,
            "norms": L * 2 * d + d,
            "head": 0 if c.get("tie_word_embeddings") else V * d}


def _millions(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.1f}k"


def decoder_block(model: str = "smollm2-135m"):
    """A Llama-family decoder (embedding, L x [norm, attention, norm, MLP], final norm, LM head), each part
    labelled with its formula and its parameters and share for `model` (SmolLM2-135M by default)."""
    card = get(model)
    c = card.config
    parts = llama_parts(model)
    total = sum(parts.values())
    tied = bool(c.get("tie_word_embeddings"))
    G = c.get("num_key_value_heads") or c["num_attention_heads"]

    def share(part: str) -> str:
        if parts[part] == 0:
            return "no parameters of its own"
        pct = 100 * parts[part] / total
        return f"{_millions(parts[part])} = {pct:.1f}%" if pct >= 1 else f"{_millions(parts[part])} = {pct:.2f}%"

    fig, ax = canvas(11, 12.4, title=f"A Llama-family decoder and where its parameters live: {card.name} "
                                      f"({total:,} parameters)", figsize=(8.5, 9.6))
    x, w = 1.0, 4.2
    box(ax, x, 11.2, w, 0.6, "token ids (one integer per token)", "input")
    box(ax, x, 10.0, w, 0.8, "embedding table  V x d", "weights")
    arrow(ax, (x + w / 2, 11.2), (x + w / 2, 10.8))
    # the repeated block
    box(ax, x - 0.3, 3.6, w + 0.6, 5.9, "", "muted")
    note(ax, x + w + 0.15, 9.25, f"x L = {card.layers} layers", fontsize=9, ha="right", fontweight="bold")
    arrow(ax, (x + w / 2, 10.0), (x + w / 2, 8.85))
    box(ax, x + 0.6, 8.35, w - 1.2, 0.5, "RMSNorm  (d)", "norm")
    box(ax, x, 6.95, w, 1.0, f"attention: W_q d x Hh,\nW_k, W_v d x Gh (G = {G}), W_o Hh x d", "attention", fontsize=8.5)
    arrow(ax, (x + w / 2, 8.35), (x + w / 2, 7.95))
    note(ax, x + w / 2 + 0.15, 6.7, "+ residual (add the block input)", fontsize=8, ha="left")
    box(ax, x + 0.6, 5.95, w - 1.2, 0.5, "RMSNorm  (d)", "norm")
    arrow(ax, (x + w / 2, 6.95), (x + w / 2, 6.45))
    box(ax, x, 4.55, w, 1.0, "gated MLP: gate, up d x I,\ndown I x d", "mlp", fontsize=8.5)
    arrow(ax, (x + w / 2, 5.95), (x + w / 2, 5.55))
    note(ax, x + w / 2 + 0.15, 4.3, "+ residual", fontsize=8, ha="left")
    arrow(ax, (x + w / 2, 4.55), (x + w / 2, 3.1))
    box(ax, x + 0.6, 2.6, w - 1.2, 0.5, "final RMSNorm  (d)", "norm")
    box(ax, x, 1.3, w, 0.8, "LM head  d x V" + ("  (= embedding, tied)" if tied else ""),
        "weights" if not tied else "output")
    arrow(ax, (x + w / 2, 2.6), (x + w / 2, 2.1))
    box(ax, x, 0.1, w, 0.6, "logits: a score per vocabulary entry", "input")
    arrow(ax, (x + w / 2, 1.3), (x + w / 2, 0.7))
    if tied:
        ax.plot([x, 0.35, 0.35, x], [10.4, 10.4, 1.7, 1.7], color=PALETTE["highlight"], linewidth=1.2)
        note(ax, 0.15, 6.2, "tied: one matrix, used twice", fontsize=7.5, color=PALETTE["highlight"], rotation=90)
    # the parameter shares, right-hand column
    rx = 6.5
    note(ax, rx, 11.5, f"V = {c['vocab_size']:,}, d = {c['hidden_size']}, I = {c['intermediate_size']},\n"
                       f"H = {c['num_attention_heads']} query heads of h = {c.get('head_dim') or c['hidden_size'] // c['num_attention_heads']}, "
                       f"G = {G} KV heads", fontsize=8.5, ha="left")
    rows = [(10.4, "embeddings", "V x d"), (7.45, "attention", "L (2dHh + 2dGh)"), (5.05, "mlp", "L x 3dI"),
            (2.85, "norms", "(2L + 1) d"),
            (1.7, "head", "V x d" if not tied else "0 (tied: counted once)")]
    colours = {"embeddings": "weights", "attention": "attention", "mlp": "mlp", "norms": "norm", "head": "output"}
    for y, part, formula in rows:
        box(ax, rx, y - 0.3, 0.35, 0.6, "", colours[part])
        note(ax, rx + 0.5, y, f"{part}: {formula}\n{share(part)}", fontsize=8.5, ha="left")
    return finish(fig)


def _cell_lines(ax, x, y, rows, cols, cell):
    for r in range(rows + 1):
        ax.plot([x, x + cols * cell], [y + r * cell] * 2, color="white", linewidth=0.8)
    for c in range(cols + 1):
        ax.plot([x + c * cell] * 2, [y, y + rows * cell], color="white", linewidth=0.8)


def three_families():
    """Decoder-only, encoder and encoder-decoder: which tokens a position may attend to, and what comes out."""
    import numpy as np

    causal = np.tril(np.ones((5, 5)))
    full = np.ones((5, 5))
    fig, ax = canvas(12, 6.4, title="Three transformer families: same block, different attention and output",
                     figsize=(9.6, 5.4))
    cols = [(0.3, "decoder-only", "causal self-attention:\neach token sees earlier tokens",
             causal, "logits for the NEXT token\nat every position -> generates", "e.g. SmolLM2, Mistral, Gemma"),
            (4.3, "encoder", "bidirectional self-attention:\nevery token sees every token",
             full, "one vector per token\n(no vocabulary) -> embeddings", "e.g. BERT, DistilBERT, ALBERT, MiniLM"),
            (8.3, "encoder-decoder", "encoder bidirectional; decoder causal\n+ cross-attention to the encoder",
             causal, "logits for the next OUTPUT token,\ngiven the whole input", "e.g. T5, FLAN-T5")]
    for x, name, attention, mask, output, examples in cols:
        box(ax, x, 5.4, 3.4, 0.6, name, "weights", fontsize=10)
        note(ax, x + 1.7, 4.85, attention, fontsize=8)
        grid(ax, x + 0.95, 2.3, mask, cell=0.3, cmap="Oranges", vmin=0, vmax=1.4)
        _cell_lines(ax, x + 0.95, 2.3, 5, 5, 0.3)
        note(ax, x + 0.8, 3.05, "query", fontsize=7, rotation=90)
        note(ax, x + 1.7, 2.1, "key (attended to)", fontsize=7)
        if name == "encoder-decoder":
            grid(ax, x + 2.65, 2.3, full[:, :3], cell=0.3, cmap="Blues", vmin=0, vmax=1.4)
            _cell_lines(ax, x + 2.65, 2.3, 5, 3, 0.3)
            note(ax, x + 3.1, 3.95, "cross to\nencoder", fontsize=7)
            note(ax, x + 1.7, 3.95, "decoder self", fontsize=7)
        box(ax, x, 0.75, 3.4, 0.95, output, "output", fontsize=8)
        arrow(ax, (x + 1.7, 2.0), (x + 1.7, 1.7))
        note(ax, x + 1.7, 0.35, examples, fontsize=7.5, style="italic")
    return finish(fig)
