"""Lesson 11's ablation explorer: pick a rank, target modules and a number of steps, read the precomputed run
(`slmcourse.ablation`, from utils/finetune_ablation.py) - its in-domain gain against its forgetting."""
from __future__ import annotations

import ipywidgets as widgets

from .. import ablation
from ._common import explorer, refuses_bad_arguments, style_wide


@refuses_bad_arguments
def ablation_explorer(rank: int = 16, targets: str = "all linear", steps: int = 60) -> widgets.VBox:
    """The explorer. The VBox has `.controls`, `.result` (HTML) and `.figure` (Image) for headless tests."""
    from .. import checks

    results = ablation.load()
    grid = results["recipe"]
    rank = checks.one_of("rank", rank, grid["ranks"])
    targets = checks.one_of("targets", targets, list(grid["targets"]))
    steps = checks.one_of("steps", steps, grid["steps"])
    controls = {
        "rank": widgets.Dropdown(options=grid["ranks"], value=rank, description="Rank r", style=style_wide()),
        "targets": widgets.Dropdown(options=list(grid["targets"]), value=targets, description="Targets",
                                    style=style_wide()),
        "steps": widgets.Dropdown(options=grid["steps"], value=steps, description="Steps", style=style_wide()),
    }

    def render(rank, targets, steps):
        row = ablation.find(results, rank, targets, steps)
        html = (f'<div style="font-size:14px">rank {rank} on {targets}, {steps} steps: '
                f'<b>{row["trainable"]:,}</b> trainable parameters; held-out accuracy <b>{row["accuracy"]:.0%}</b> '
                f'(95% interval {row["low"]:.0%}-{row["high"]:.0%}), gain <b>{100 * row["gain"]:+.0f}</b> points; '
                f'general-text perplexity <b>{row["forgetting"]:+.1f} %</b> (forgetting)</div>')
        return html, ablation.plot(results, highlight=(rank, targets, steps))

    return explorer(controls, render, width="620px")
