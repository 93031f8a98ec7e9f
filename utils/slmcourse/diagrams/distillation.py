"""Lesson 8's concept diagram: the distillation pipeline with temperature.

The same tokens go through a frozen teacher and a trainable student. Both sets of logits are divided
by the temperature T and softened; the teacher's are cut to its top k plus one "rest" bucket; the KL
divergence between the two, times T^2, is the soft term. The student's own logits at T = 1 against
the next token of the text give the hard term. Only the student receives gradients.
"""
from __future__ import annotations

from ._draw import arrow, box, canvas, finish, note


def distillation_pipeline(temperature: float = 2.0, k: int = 32, alpha: float = 0.5):
    """Teacher -> softmax(z/T) -> top-k + rest -> KL x T^2 <- softmax(z/T) <- student, plus the hard-label path."""
    fig, ax = canvas(15.0, 7.6, title="Knowledge distillation: soft targets at temperature T, plus the hard label",
                     figsize=(11.5, 5.9))
    # the input
    box(ax, 0.2, 3.2, 2.0, 1.2, "tokens of\nthe text", color="input")
    # teacher path (top)
    box(ax, 2.9, 5.6, 2.4, 1.2, "teacher\n(frozen)", color="weights")
    box(ax, 6.0, 5.6, 2.6, 1.2, f"softmax(z / T)\nT = {temperature:g}", color="attention")
    box(ax, 9.3, 5.6, 2.5, 1.2, f"top {k} + 'rest'\n({k + 1} buckets)", color="output")
    # student path (middle)
    box(ax, 2.9, 3.2, 2.4, 1.2, "student\n(trained)", color="mlp")
    box(ax, 6.0, 3.2, 2.6, 1.2, f"softmax(z / T)\nT = {temperature:g}", color="attention")
    box(ax, 9.3, 3.9, 2.5, 1.2, "KL(teacher || student)\n× T²", color="highlight", fontsize=8.5)
    # hard-label path (bottom)
    box(ax, 6.0, 0.8, 2.6, 1.2, "softmax(z)\nT = 1", color="muted")
    box(ax, 9.3, 0.8, 2.5, 1.2, "cross-entropy", color="highlight")
    box(ax, 6.0, 0.05, 2.6, 0.6, "hard label: next token y", color="input", fontsize=8)
    # the loss
    box(ax, 12.4, 2.35, 2.4, 1.6, f"loss =\nα·T²·KL\n+ (1 − α)·CE\n(α = {alpha:g})", color="output", fontsize=8.5)

    arrow(ax, (2.2, 4.0), (2.9, 6.0))
    arrow(ax, (2.2, 3.8), (2.9, 3.8))
    arrow(ax, (5.3, 6.2), (6.0, 6.2))
    arrow(ax, (8.6, 6.2), (9.3, 6.2))
    arrow(ax, (10.55, 5.6), (10.55, 5.1))
    arrow(ax, (5.3, 3.8), (6.0, 3.8))
    arrow(ax, (8.6, 3.9), (9.3, 4.3))
    arrow(ax, (5.3, 3.5), (6.0, 1.5))
    arrow(ax, (8.6, 1.4), (9.3, 1.4))
    arrow(ax, (8.6, 0.35), (9.6, 0.8))
    arrow(ax, (11.8, 4.5), (12.4, 3.5))
    arrow(ax, (11.8, 1.4), (12.4, 2.7))
    # gradients flow to the student only
    arrow(ax, (12.4, 2.6), (4.6, 3.2), color="#c44e52")
    note(ax, 9.6, 2.45, "gradients flow back to the student only", fontsize=8, color="#c44e52")
    note(ax, 4.1, 7.15, "run once over the corpus;\nits top-k targets are stored", fontsize=8)
    return finish(fig)
