"""Lesson 0: the three forms a model takes in the course, and how a bundled model reaches `load`."""
from __future__ import annotations

from ._draw import arrow, box, canvas, finish, note


def model_forms():
    """A config (a few dozen numbers) becomes a REAL model (plus trained weights), a FULL-SIZE shell on the
    meta device (shapes only), or a SCALED-DOWN copy (small sizes, random weights); below, the bundled files'
    path: GGUF file -> SHA-256 check -> converted once to a safetensors cache -> load."""
    fig, ax = canvas(12, 7.6, title="One architecture, three forms (every cell of the course says which it runs)",
                     figsize=(9.6, 6.2))
    box(ax, 3.6, 6.5, 4.8, 0.7, "config: layers, hidden size, heads, vocabulary ...", "input", fontsize=9)
    forms = [(0.2, "REAL pretrained", "config + trained weights", "slmcourse.load(name)",
              "real text, real embeddings,\nreal speed and memory", "weights"),
             (4.2, "FULL SIZE on meta", "config, shapes only: 0 bytes", "slmcourse.full_size(name)",
              "exact parameter counts,\nmodule tree, memory maths", "attention"),
             (8.2, "SCALED DOWN", "shrunken config + random weights", "slmcourse.scaled_down(name)",
              "shapes, masks, caches;\noutput is gibberish", "mlp")]
    for x, title, what, call, use, colour in forms:
        arrow(ax, (6.0, 6.5), (x + 1.8, 5.6), curve=0.0)
        box(ax, x, 4.6, 3.6, 1.0, f"{title}\n{what}", colour, fontsize=8.5)
        note(ax, x + 1.8, 4.3, call, fontsize=8, family="monospace")
        note(ax, x + 1.8, 3.65, use, fontsize=8)
    # how the bundled REAL weights arrive
    note(ax, 0.2, 2.75, "the bundled REAL models (SmolLM2, Gemma-3-270M in GGUF; MiniLM in safetensors):",
         fontsize=8.5, ha="left")
    steps = [("pip package\n(GGUF file)", "output"), ("SHA-256\nchecked", "norm"),
             ("converted once:\nsafetensors cache", "output"), ("load(): model\n+ tokenizer", "weights")]
    for i, (text, colour) in enumerate(steps):
        x = 0.3 + i * 3.0
        box(ax, x, 1.0, 2.4, 1.1, text, colour, fontsize=8.5)
        if i:
            arrow(ax, (x - 0.6, 1.55), (x, 1.55))
    note(ax, 6.0, 0.45, "GGUF is a container: each tensor stores its own type (SmolLM2's file: Q4_1, Q8_0, F32)", fontsize=8)
    return finish(fig)
