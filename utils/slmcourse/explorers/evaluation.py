"""Lesson 10's evaluation explorer: task, model, shots, chat template -> accuracy with its interval,
and examples the model got right and wrong.

It reads the precomputed per-item results (data/eval/scores.json, written by
utils/precompute_eval_scores.py): 200 test items per run are too many to score live on 2 CPU cores.
`evaluation_summary` is the logic (plain, tested); `plot_evaluation` draws it; `evaluation_explorer` wires it.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets as widgets

from .. import evaluate as ev
from ..errors import CourseError
from ._common import explorer, refuses_bad_arguments, style_wide, tooltip


@dataclass(frozen=True)
class EvaluationSummary:
    task: str
    model: str
    shots: int
    chat: bool
    n: int
    accuracy: float
    low: float
    high: float
    chance: float
    right: list  # (question, model's output, gold) for a few items it got right
    wrong: list  # the same for a few it got wrong

    def text(self) -> str:
        setting = f"{self.shots}-shot" + (", chat template" if self.chat else "")
        chance = f"chance {self.chance:.0%}" if self.chance else "chance ~0% (a free-form number)"
        return (f"{self.model} on {self.task} ({setting}, {self.n} test items): {self.accuracy:.1%}, "
                f"95% bootstrap interval [{self.low:.1%}, {self.high:.1%}]; {chance}")


def available_runs() -> list[tuple[str, str, int, bool]]:
    """(model, task, shots, chat) of every precomputed run."""
    return [(r["model"], r["task"], r["shots"], r["chat"]) for r in ev.load_scores()["runs"]]


def evaluation_summary(task: str = "sentiment", model: str = "smollm2-135m", shots: int = 0, chat: bool = False,
                       examples: int = 3) -> EvaluationSummary:
    """Accuracy, its 95% interval, chance, and a few right and wrong examples of one precomputed run."""
    r = ev.run_result(model, task, shots, chat)
    items = {it["id"]: it for it in ev.load_items(task, "test")}
    right, wrong = [], []
    for item_id, ok, out in zip(r.ids, r.correct, r.outputs or [""] * len(r.ids)):
        it = items[item_id]
        (right if ok else wrong).append((it["question"], out, ev.gold_text(it)))
    lo, hi = r.interval()
    return EvaluationSummary(task, model, shots, chat, len(r.correct), r.accuracy, lo, hi, ev.TASKS[task].chance,
                             right[:examples], wrong[:examples])


def plot_evaluation(summary: EvaluationSummary):
    """One bar with its 95% interval, and the chance level as a dashed line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 2.2))
    ax.barh([0], [summary.accuracy], xerr=[[summary.accuracy - summary.low], [summary.high - summary.accuracy]],
            color="#4c72b0", capsize=6)
    if summary.chance:
        ax.axvline(summary.chance, color="#c44e52", ls="--", label=f"chance {summary.chance:.0%}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_yticks([0], [f"{summary.model}\n{summary.shots}-shot{' chat' if summary.chat else ''}"])
    ax.set_xlabel(f"accuracy on {summary.task} (95% bootstrap interval)")
    fig.tight_layout()
    return fig


def _examples_html(title: str, rows: list) -> str:
    if not rows:
        return f"<p><b>{title}:</b> none</p>"
    body = "".join(f"<li>{html.escape(q)} &rarr; model: <code>{html.escape(str(o))}</code>, gold: "
                   f"<code>{html.escape(g)}</code></li>" for q, o, g in rows)
    return f"<p><b>{title}:</b></p><ul>{body}</ul>"


@refuses_bad_arguments
def evaluation_explorer(task: str = "sentiment", model: str = "smollm2-135m") -> widgets.VBox:
    """Build the explorer over the precomputed runs. The VBox has `.controls`, `.result` and `.figure`."""
    runs = available_runs()
    models = sorted({r[0] for r in runs})
    from .. import checks

    task = checks.one_of("task", task, list(ev.TASKS))
    model = checks.one_of("model", model, models, label="model with precomputed runs")
    controls = {
        "task": widgets.Dropdown(options=list(ev.TASKS), value=task, description="Task", style=style_wide()),
        "model": widgets.Dropdown(options=models, value=model, description="Model", style=style_wide()),
        "shots": widgets.Dropdown(options=sorted({r[2] for r in runs}), value=0, description="Shots",
                                  style=style_wide()),
        "chat": widgets.Checkbox(value=False, description="chat template"),
    }
    tooltip(controls["chat"], "Only the instruct model (SmolLM2-135M-Instruct) has runs with its chat template")

    def render(task, model, shots, chat):
        if (model, task, shots, chat) not in runs:
            raise CourseError(f"no precomputed run for {model} on {task} with {shots} shots"
                              f"{' and the chat template' if chat else ''}: try another combination")
        s = evaluation_summary(task, model, shots, chat)
        text = (f'<div style="font-size:14px">{html.escape(s.text())}</div>'
                + _examples_html("right", s.right) + _examples_html("wrong", s.wrong))
        return text, plot_evaluation(s)

    return explorer(controls, render, width="560px")
