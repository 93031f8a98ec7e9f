"""Lessons 12 and 14's explorers: the deployment planner and the model chooser.

The logic lives in plain, tested functions (`slmcourse.planner.plan_deployment` and `plan_targets`,
`slmcourse.choose.choose`); the widgets only wire controls to them and show a message, not a
traceback, for input that makes no sense.
"""
from __future__ import annotations

import html

import ipywidgets as widgets
import matplotlib.pyplot as plt

from .. import catalogue
from .. import planner
from ..memory import FORMATS, KV_PRECISIONS
from ..planner import FRAMEWORKS, TARGETS, Measured, Plan, plan_deployment
from ._common import explorer, style_wide, tooltip, under_grader, refuses_bad_arguments


def generating_models() -> list[str]:
    """Catalogue keys of the models that generate token by token (decoders and encoder-decoders)."""
    return [k for k in catalogue.names() if catalogue.get(k).family != "encoder"]


def plan_targets(model: str, precision: str = "bf16", latency_budget_ms: float = 100.0,
                 efficiency: float | None = None, measured: Measured | None = None,
                 context: int = 2048, batch: int = 1, kv_precision: str | None = None,
                 runtime: str = "eager") -> list[Plan]:
    """`plan_deployment` of one model on every target, in the order of planner.TARGETS."""
    return planner.plan_targets(model, precision, latency_budget_ms, efficiency, measured, context, batch,
                                kv_precision, runtime)


def format_options() -> list[tuple[str, str]]:
    """(label, value) pairs of the weight formats; the bare bit widths are marked as ideal bounds."""
    return [(f"{name} (ideal)" if f.ideal else name, name) for name, f in FORMATS.items()]


def plot_plans(plans: list[Plan], highlight: str | None = None, ax=None):
    """Expected decode speed on each target (bars), the latency budget as a line; hatched = does not fit."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3.2))
    else:
        fig = ax.figure
    names = [p.target for p in plans]
    speeds = [p.tokens_per_s for p in plans]
    colours = ["#1e8449" if p.meets_budget else ("#e67e22" if p.fits else "#c0392b") for p in plans]
    bars = ax.barh(names, speeds, color=colours)
    for bar, plan in zip(bars, plans):
        if not plan.fits:
            bar.set_hatch("//")
        if plan.target == highlight:
            bar.set_edgecolor("black")
            bar.set_linewidth(2)
    budget = 1000.0 / plans[0].latency_budget_ms
    ax.axvline(budget, color="black", linestyle="--", linewidth=1)
    ax.text(budget, -0.6, f" budget: {budget:g} tokens/s", va="top", fontsize=8)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel(f"expected decode speed per sequence at batch {plans[0].batch}, {plans[0].runtime} "
                  f"(tokens per second, log scale)")
    ax.set_title(f"{plans[0].model} at {plans[0].precision}: green meets the budget, orange too slow, "
                 f"red hatched does not fit", fontsize=9)
    fig.tight_layout()
    return fig


def _plan_html(plan: Plan) -> str:
    colour = "#1e8449" if plan.meets_budget else ("#e67e22" if plan.fits else "#c0392b")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in plan.notes)
    return (f'<div style="font-size:14px"><b style="color:{colour}">{html.escape(plan.verdict.capitalize())}</b>: '
            f'{html.escape(plan.summary())}{"<ul>" + notes + "</ul>" if notes else ""}</div>')


@refuses_bad_arguments
def planner_explorer(model: str = "smollm2-135m", target: str = "Raspberry Pi 5 (8 GB)", precision: str = "bf16",
                     latency_budget_ms: float = 100.0, efficiency: float = 0.7, context: int = 2048,
                     batch: int = 1, runtime: str = "eager", kv_precision: str = "fp16") -> widgets.VBox:
    """Target, latency budget, model, precision, context, batch, runtime (and the efficiency measured in
    lesson 12) -> the plan.

    The returned VBox has `.controls` (name -> widget), `.result` (HTML) and `.figure` (Image).
    """
    controls = {
        "model": widgets.Dropdown(options=[(catalogue.get(k).name, k) for k in generating_models()],
                                  value=catalogue.get(model).key, description="Model", style=style_wide()),
        "target": widgets.Dropdown(options=list(TARGETS), value=target, description="Target", style=style_wide()),
        "precision": widgets.Dropdown(options=format_options(), value=precision, description="Weights",
                                      style=style_wide()),
        "kv_precision": widgets.Dropdown(options=list(KV_PRECISIONS), value=kv_precision, description="KV cache",
                                         style=style_wide()),
        "runtime": widgets.ToggleButtons(options=list(FRAMEWORKS), value=runtime, description="Runtime",
                                         style=style_wide()),
        "context": widgets.IntText(value=context, description="Context (tokens)", style=style_wide()),
        "batch": widgets.IntSlider(value=batch, min=1, max=64, description="Batch", continuous_update=False,
                                   style=style_wide()),
        "latency_budget_ms": widgets.FloatLogSlider(value=latency_budget_ms, base=10, min=0, max=3, step=0.1,
                                                    description="Budget (ms/token)", continuous_update=False,
                                                    style=style_wide()),
        "efficiency": widgets.FloatSlider(value=efficiency, min=0.05, max=1.0, step=0.05,
                                          description="Efficiency", continuous_update=False, style=style_wide()),
    }
    tooltip(controls["latency_budget_ms"], "Longest acceptable time per generated token; ~50-100 ms reads as fluent")
    tooltip(controls["efficiency"], "Share of the memory-bandwidth limit reached; lesson 12 measures it on your machine")
    tooltip(controls["runtime"], "eager: PyTorch/transformers, one launch per operation; compiled: llama.cpp, "
                                 "CUDA graphs, ONNX Runtime (see planner.FRAMEWORKS)")
    def render(model, target, precision, kv_precision, runtime, context, batch, latency_budget_ms, efficiency):
        kwargs = dict(efficiency=efficiency, context=context, batch=batch, kv_precision=kv_precision,
                      runtime=runtime)
        plan = plan_deployment(model, target, precision, latency_budget_ms, **kwargs)
        plans = plan_targets(model, precision, latency_budget_ms, **kwargs)
        return _plan_html(plan), plot_plans(plans, highlight=target)

    return explorer(controls, render, width="680px")


def show_planner(**kwargs) -> widgets.VBox | None:
    """Display `planner_explorer(**kwargs)` in a notebook (nothing while nbgrader executes it); returns it."""
    if under_grader():
        return None
    from IPython.display import display

    box = planner_explorer(**kwargs)
    display(box)
    return box


# Lesson 14's chooser lives in its own module; these names stay importable from here.
from .chooser import candidates_html, chooser_explorer  # noqa: E402,F401
