"""Lesson 10's concept diagram: how one test item becomes a verdict, and verdicts become an accuracy with an interval.

An item is formatted into a prompt (optionally with solved examples first, optionally through the chat
template). A multiple-choice item is scored by the log-probability of each option after the prompt
(summed, or divided by the option's length), and the best option is the prediction; a free-form item is
answered by greedy generation and the number is extracted and compared exactly. Every item ends as 1 or 0;
their mean is the accuracy, the bootstrap over items gives its interval, and two models on the same items
are compared item by item.
"""
from __future__ import annotations

from ._draw import arrow, box, canvas, finish, note


def evaluation_pipeline():
    """Item -> prompt -> (log-likelihood of each option | generate + extract) -> 0/1 per item -> accuracy, CI, paired test."""
    fig, ax = canvas(15.0, 7.4, title="Evaluating a language model: from one item to an accuracy with an interval",
                     figsize=(11.5, 5.7))
    box(ax, 0.2, 3.0, 2.2, 1.4, "test item\nquestion +\ngold answer", color="input", fontsize=8.5)
    box(ax, 3.0, 3.0, 2.6, 1.4, "prompt\n(k solved examples,\nchat template?)", color="attention", fontsize=8.5)
    # multiple choice path
    box(ax, 6.3, 5.0, 3.3, 1.5, "log P(option | prompt)\nfor each option:\nsum, or sum / length", color="weights",
        fontsize=8.5)
    box(ax, 10.2, 5.2, 2.0, 1.1, "argmax\n= prediction", color="mlp", fontsize=8.5)
    # generative path
    box(ax, 6.3, 0.9, 3.3, 1.5, "greedy generation\n'The answer is 68.'\n-> extract '68'", color="weights",
        fontsize=8.5)
    box(ax, 10.2, 1.1, 2.0, 1.1, "exact match\nwith gold", color="mlp", fontsize=8.5)
    # verdict and statistics
    box(ax, 12.8, 3.05, 2.0, 1.3, "1 or 0\nper item", color="output", fontsize=9)
    box(ax, 10.0, 3.05, 2.3, 1.3, "mean = accuracy\nbootstrap -> 95% CI", color="highlight", fontsize=8.5)

    arrow(ax, (2.4, 3.7), (3.0, 3.7))
    arrow(ax, (5.6, 4.1), (6.3, 5.6), text="multiple choice")
    arrow(ax, (5.6, 3.3), (6.3, 1.8), text="free answer")
    arrow(ax, (9.6, 5.75), (10.2, 5.75))
    arrow(ax, (9.6, 1.65), (10.2, 1.65))
    arrow(ax, (12.2, 5.6), (13.5, 4.35))
    arrow(ax, (12.2, 1.7), (13.5, 3.05))
    arrow(ax, (12.8, 3.7), (12.3, 3.7))
    note(ax, 11.15, 2.75, "same items, two models:\npaired bootstrap / McNemar", fontsize=8)
    note(ax, 1.3, 2.55, "chance: 1 / options", fontsize=8)
    return finish(fig)
